import BeckonCore
import BeckonSegments
import BeckonStorage
import BeckonTestSupport
import Foundation
import Testing

/// Segment filters compiled to SQL, checked against an independent computation in Swift over the
/// same generated data, on SQLite and PostgreSQL.
@Suite("Segment evaluation")
struct SegmentEvaluationTests {
    static let now = BrazeTime.parse("2025-06-30T15:00:00Z")!
    static let nowMillis = BrazeTime.epochMilliseconds(now)
    static let hour: Int64 = 3_600_000
    static let day: Int64 = 86_400_000

    /// What the test knows about one generated user.
    struct GeneratedUser {
        let externalID: String
        let tier: String?
        let points: Int?
        let brands: [String]
        var views: [(time: Int64, brand: String)] = []
        var carts: [Int64] = []
        var purchases: [(time: Int64, product: String, price: Int, quantity: Int)] = []
    }

    /// Deterministic users with activity spread across window edges (exactly 24 h, 24 h + 1 s, 7 days …).
    static func generate() -> [GeneratedUser] {
        var seed: UInt64 = 42
        func next(_ bound: Int) -> Int {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((seed >> 33) % UInt64(bound))
        }
        let offsets: [Int64] = [0, hour, day - 1000, day, day + 1000, 2 * day, 6 * day, 7 * day, 7 * day + 1, 20 * day, 40 * day]
        let brandNames = ["Jucy Judy", "Kirsh", "Covernat"]
        return (0..<60).map { index in
            var user = GeneratedUser(
                externalID: "u\(index)", tier: index % 4 == 0 ? nil : ["gold", "silver", "basic"][index % 3],
                points: index % 5 == 0 ? nil : index * 10, brands: Array(brandNames.prefix(index % 4)))
            for _ in 0..<next(6) {
                user.views.append((nowMillis - offsets[next(offsets.count)], brandNames[next(3)]))
            }
            for _ in 0..<next(3) { user.carts.append(nowMillis - offsets[next(offsets.count)]) }
            for _ in 0..<next(3) {
                user.purchases.append((nowMillis - offsets[next(offsets.count)], ["coat", "bag"][next(2)], (next(5) + 1) * 10_000, next(2) + 1))
            }
            return user
        }
    }

    static func load(_ users: [GeneratedUser], into store: UserStore, workspaceID: Int64) async throws {
        for user in users {
            var attributes: [String: JSONValue] = ["external_id": .string(user.externalID)]
            if let tier = user.tier { attributes["tier"] = .string(tier) }
            if let points = user.points { attributes["points"] = .int(Int64(points)) }
            if !user.brands.isEmpty { attributes["brands"] = .array(user.brands.map(JSONValue.string)) }
            var events: [JSONValue] = user.views.map { view in
                .object(["external_id": .string(user.externalID), "name": .string("product_viewed"),
                         "time": .string(BrazeTime.format(epochMilliseconds: view.time)), "properties": .object(["brand": .string(view.brand)])])
            }
            events += user.carts.map { time in
                .object(["external_id": .string(user.externalID), "name": .string("added_to_cart"), "time": .string(BrazeTime.format(epochMilliseconds: time))])
            }
            let purchases: [JSONValue] = user.purchases.map { purchase in
                .object(["external_id": .string(user.externalID), "product_id": .string(purchase.product), "currency": .string("KRW"),
                         "price": .int(Int64(purchase.price)), "quantity": .int(Int64(purchase.quantity)),
                         "time": .string(BrazeTime.format(epochMilliseconds: purchase.time))])
            }
            var body: [String: JSONValue] = ["attributes": .array([.object(attributes)])]
            if !events.isEmpty { body["events"] = .array(events) }
            if !purchases.isEmpty { body["purchases"] = .array(purchases) }
            let result = try await store.track(workspaceID: workspaceID, request: try TrackRequest.parse(.object(body), now: now))
            #expect(result.errors.isEmpty)
        }
    }

    /// Each filter with the independent answer: which generated users match.
    static func cases() -> [(String, String, (GeneratedUser) -> Bool)] {
        func within(_ time: Int64, _ window: Int64) -> Bool { time >= nowMillis - window && time <= nowMillis }
        return [
            ("string eq", #"{"attribute": "custom.tier", "op": "eq", "value": "gold"}"#, { $0.tier == "gold" }),
            ("string ne includes missing", #"{"attribute": "custom.tier", "op": "ne", "value": "gold"}"#, { $0.tier != "gold" }),
            ("in", #"{"attribute": "custom.tier", "op": "in", "value": ["gold", "silver"]}"#, { ["gold", "silver"].contains($0.tier ?? "") }),
            ("exists", #"{"attribute": "custom.tier", "op": "exists"}"#, { $0.tier != nil }),
            ("regex", #"{"attribute": "custom.tier", "op": "matches", "value": "^(GOLD|bas)"}"#, { ["gold", "basic"].contains($0.tier ?? "") }),
            ("contains", #"{"attribute": "custom.tier", "op": "contains", "value": "il"}"#, { $0.tier == "silver" }),
            ("number gt", #"{"attribute": "custom.points", "op": "gt", "value": 300}"#, { ($0.points ?? 0) > 300 }),
            ("number between", #"{"attribute": "custom.points", "op": "between", "value": [100, 200]}"#, { (100...200).contains($0.points ?? -1) }),
            ("array includes_any", #"{"attribute": "custom.brands", "op": "includes_any", "value": ["Kirsh"]}"#, { $0.brands.contains("Kirsh") }),
            ("array includes_all", #"{"attribute": "custom.brands", "op": "includes_all", "value": ["Jucy Judy", "Kirsh"]}"#,
             { $0.brands.contains("Jucy Judy") && $0.brands.contains("Kirsh") }),
            ("array includes_none", #"{"attribute": "custom.brands", "op": "includes_none", "value": ["Kirsh"]}"#, { !$0.brands.contains("Kirsh") }),
            ("array size_lt", #"{"attribute": "custom.brands", "op": "size_lt", "value": 2}"#, { $0.brands.count < 2 }),
            ("event all time", #"{"event": "added_to_cart"}"#, { !$0.carts.isEmpty }),
            ("event in last day (exact edges)", #"{"event": "product_viewed", "within_last": {"days": 1}}"#,
             { $0.views.contains { within($0.time, day) } }),
            ("event where brand in last day", #"{"event": "product_viewed", "where": {"brand": "Jucy Judy"}, "within_last": {"days": 1}}"#,
             { $0.views.contains { within($0.time, day) && $0.brand == "Jucy Judy" } }),
            ("event count gte 2 in 7 days", #"{"event": "product_viewed", "count": {"op": "gte", "value": 2}, "within_last": {"days": 7}}"#,
             { $0.views.filter { within($0.time, 7 * day) }.count >= 2 }),
            ("event count lt 2 in 7 days includes none", #"{"event": "product_viewed", "count": {"op": "lt", "value": 2}, "within_last": {"days": 7}}"#,
             { $0.views.filter { within($0.time, 7 * day) }.count < 2 }),
            ("event count eq 0 in 30 hours", #"{"event": "product_viewed", "count": {"op": "eq", "value": 0}, "within_last": {"hours": 30}}"#,
             { !$0.views.contains { within($0.time, 30 * hour) } }),
            ("first did before", #"{"event": "product_viewed", "first": {"op": "more_than_ago", "value": {"days": 7}}}"#,
             { ($0.views.map(\.time).min() ?? Int64.max) < nowMillis - 7 * day }),
            ("last did within", #"{"event": "product_viewed", "last": {"op": "within_last", "value": {"days": 2}}}"#,
             { ($0.views.map(\.time).max() ?? Int64.min) >= nowMillis - 2 * day }),
            ("purchase any in 7 days", #"{"purchase": "*", "within_last": {"days": 7}}"#, { $0.purchases.contains { within($0.time, 7 * day) } }),
            ("purchase coat count >= 2", #"{"purchase": "coat", "count": {"op": "gte", "value": 2}}"#,
             { $0.purchases.filter { $0.product == "coat" }.reduce(0) { $0 + $1.quantity } >= 2 }),
            ("revenue > 50000 in 30 days", #"{"revenue": {"op": "gt", "value": 50000}, "within_last": {"days": 30}}"#,
             { $0.purchases.filter { within($0.time, 30 * day) }.reduce(0) { $0 + $1.price * $1.quantity } > 50_000 }),
            ("Q3 shape: carted in 7 days and no purchase in 7 days",
             #"{"all": [{"event": "added_to_cart", "within_last": {"days": 7}}, {"not": {"purchase": "*", "within_last": {"days": 7}}}]}"#,
             { user in user.carts.contains { within($0, 7 * day) } && !user.purchases.contains { within($0.time, 7 * day) } }),
            ("any of", #"{"any": [{"attribute": "custom.tier", "op": "eq", "value": "gold"}, {"event": "added_to_cart"}]}"#,
             { $0.tier == "gold" || !$0.carts.isEmpty }),
        ]
    }

    @Test("compiled SQL matches an independent computation", arguments: TestDatabases.all())
    func matchesIndependentComputation(kind: TestDatabaseKind) async throws {
        try await kind.withDatabase { database in
            try await Migrator.migrate(database)
            let clock = FixedClock(Self.now)
            let workspace = try await WorkspaceStore(database: database, clock: clock).createWorkspace(name: "shop")
            let store = UserStore(database: database, clock: clock)
            let generated = Self.generate()
            try await Self.load(generated, into: store, workspaceID: workspace.id)
            let segments = SegmentService(database: database, clock: clock, users: store)
            for (name, json, expected) in Self.cases() {
                let filter = try SegmentFilter.parse(try JSONValue.parse(Array(json.utf8)))
                let want = Set(generated.filter(expected).map(\.externalID))
                let members = try await segments.members(workspaceID: workspace.id, filter: filter, after: nil, limit: 1000)
                #expect(Set(members.externalIDs) == want, "\(name)")
                #expect(try await segments.count(workspaceID: workspace.id, filter: filter) == Int64(want.count), "\(name) count")
                for user in generated.prefix(12) {
                    let member = try await segments.contains(workspaceID: workspace.id, filter: filter, externalID: user.externalID)
                    #expect(member == want.contains(user.externalID), "\(name) contains \(user.externalID)")
                }
            }
        }
    }

    @Test("segmentable properties answer from aggregates the same as from the log", arguments: TestDatabases.all())
    func segmentableMatchesLog(kind: TestDatabaseKind) async throws {
        try await kind.withDatabase { database in
            try await Migrator.migrate(database)
            let clock = FixedClock(Self.now)
            let workspace = try await WorkspaceStore(database: database, clock: clock).createWorkspace(name: "shop")
            let store = UserStore(database: database, clock: clock)
            try await store.markSegmentable(workspaceID: workspace.id, eventName: "product_viewed", property: "brand")
            let generated = Self.generate()
            try await Self.load(generated, into: store, workspaceID: workspace.id)
            let segments = SegmentService(database: database, clock: clock, users: store)
            for window in [1, 2, 7, 30] {
                let filter = try SegmentFilter.parse(try JSONValue.parse(Array(
                    #"{"event": "product_viewed", "where": {"brand": "Kirsh"}, "within_last": {"days": \#(window)}}"#.utf8)))
                let want = generated.filter { user in
                    user.views.contains { $0.brand == "Kirsh" && $0.time >= Self.nowMillis - Int64(window) * Self.day }
                }.count
                #expect(try await segments.count(workspaceID: workspace.id, filter: filter) == Int64(want), "window \(window) days")
            }
        }
    }
}
