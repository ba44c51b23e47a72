import BeckonTestSupport
import BeckonCore
import BeckonStorage
import Foundation
import Testing

/// The user stores on every backend: what `/users/track` and friends write, read back through export.
@Suite("User store")
struct UserStoreTests {
    static let now = BrazeTime.parse("2025-06-30T15:00:00Z")!

    /// A migrated database with one workspace, handed to `body` with its stores.
    static func withStores(
        _ kind: TestDatabaseKind, _ body: (UserStore, Int64, any SQLDatabase, FixedClock) async throws -> Void
    ) async throws {
        try await kind.withDatabase { database in
            try await Migrator.migrate(database)
            let clock = FixedClock(now)
            let workspace = try await WorkspaceStore(database: database, clock: clock).createWorkspace(name: "shop")
            try await body(UserStore(database: database, clock: clock), workspace.id, database, clock)
        }
    }

    static func track(_ store: UserStore, _ workspaceID: Int64, _ json: String) async throws -> TrackResult {
        let request = try TrackRequest.parse(try JSONValue.parse(Array(json.utf8)), now: now)
        return try await store.track(workspaceID: workspaceID, request: request)
    }

    static func exportOne(_ store: UserStore, _ workspaceID: Int64, externalID: String) async throws -> JSONValue? {
        var query = ExportQuery()
        query.externalIDs = [externalID]
        return try await store.export(workspaceID: workspaceID, query: query).users.first
    }

    @Test("track writes profile, custom attributes, events, purchases and aggregates", arguments: TestDatabases.all())
    func trackAndExport(kind: TestDatabaseKind) async throws {
        try await Self.withStores(kind) { store, ws, database, _ in
            let result = try await Self.track(store, ws, """
                {"attributes": [{"external_id": "u1", "first_name": "지민", "email": "JIMIN@Example.kr", "push_subscribe": "opted_in",
                   "time_zone": "Asia/Seoul", "tier": "gold", "visits": 3, "vip": true, "brands": ["A", "B"],
                   "address": {"city": "서울", "zip": "04524"}, "signup": "2025-06-01T00:00:00Z"}],
                 "events": [
                   {"external_id": "u1", "name": "product_viewed", "time": "2025-06-29T10:00:00Z", "properties": {"brand": "Jucy Judy"}},
                   {"external_id": "u1", "name": "product_viewed", "time": "2025-06-30T01:00:00Z", "properties": {"brand": "Kirsh"}},
                   {"external_id": "u2", "name": "search", "time": "2030-01-01T00:00:00Z", "properties": {"keyword": "패딩"}}],
                 "purchases": [{"external_id": "u1", "product_id": "coat", "currency": "KRW", "price": 129000, "quantity": 2,
                   "time": "2025-06-30T02:00:00Z"}]}
                """)
            #expect(result.attributesProcessed == 1)
            #expect(result.eventsProcessed == 3)
            #expect(result.purchasesProcessed == 1)
            #expect(result.errors.isEmpty)

            let user = try #require(try await Self.exportOne(store, ws, externalID: "u1"))
            #expect(user["first_name"] == .string("지민"))
            #expect(user["email"] == .string("jimin@example.kr"))
            #expect(user["push_subscribe"] == .string("opted_in"))
            #expect(user["push_opted_in_at"] == .string("2025-06-30T15:00:00.000Z"))
            #expect(user["custom_attributes"]?["tier"] == .string("gold"))
            #expect(user["custom_attributes"]?["address"]?["city"] == .string("서울"))
            #expect(user["total_revenue"] == .double(258_000))
            let events = try #require(user["custom_events"]?.arrayValue)
            #expect(events == [.object([
                "name": .string("product_viewed"), "count": .int(2),
                "first": .string("2025-06-29T10:00:00.000Z"), "last": .string("2025-06-30T01:00:00.000Z"),
            ])])
            #expect(user["purchases"]?.arrayValue?.first?["count"] == .int(2))

            let future = try #require(try await Self.exportOne(store, ws, externalID: "u2"))
            #expect(future["custom_events"]?.arrayValue?.first?["last"] == .string("2025-06-30T15:00:00.000Z"), "future times clamp to now")

            let daily = try await database.read { connection in
                try connection.query("SELECT day, count FROM event_daily WHERE name = 'product_viewed' ORDER BY day", [])
            }
            #expect(daily.map { $0[1].int } == [1, 1], "one aggregate row per UTC day")
            let indexed = try await database.read { connection in
                try connection.query(
                    "SELECT path, kind, text_value, number_value FROM user_attribute_values WHERE root IN ('address', 'signup', 'brands') ORDER BY path, position", [])
            }
            #expect(indexed.map { $0[0].string ?? "" } == ["address.city", "address.zip", "brands", "brands", "signup"])
            #expect(indexed.last?[1].string == "t")
            #expect(indexed.last?[3].double == Double(BrazeTime.epochMilliseconds(BrazeTime.parse("2025-06-01T00:00:00Z")!)))
        }
    }

    @Test("array add/remove dedupes and caps, increments add, null removes, objects merge", arguments: TestDatabases.all())
    func customAttributeOperations(kind: TestDatabaseKind) async throws {
        try await Self.withStores(kind) { store, ws, _, _ in
            _ = try await Self.track(store, ws, """
                {"attributes": [{"external_id": "u1", "tags": ["a", "b", "c"], "points": 10, "gone": "x",
                  "pets": [{"id": 1, "type": "dog"}, {"id": 2, "type": "cat"}], "profile": {"size": "M", "color": "red"}}]}
                """)
            _ = try await Self.track(store, ws, """
                {"attributes": [{"external_id": "u1", "_merge_objects": true, "tags": {"add": ["a", "d"], "remove": ["b"]},
                  "points": {"inc": -3}, "gone": null, "new_counter": {"inc": 5},
                  "pets": {"$add": [{"id": 3, "type": "fish"}], "$remove": [{"$identifier_key": "type", "$identifier_value": "dog"}],
                           "$update": [{"$identifier_key": "id", "$identifier_value": 2, "$new_object": {"name": "나비"}}]},
                  "profile": {"color": "blue"}}]}
                """)
            let attributes = try #require(try await Self.exportOne(store, ws, externalID: "u1")?["custom_attributes"])
            #expect(attributes["tags"] == .array([.string("c"), .string("a"), .string("d")]))
            #expect(attributes["points"] == .int(7))
            #expect(attributes["new_counter"] == .int(5))
            #expect(attributes["gone"] == nil)
            #expect(attributes["profile"] == .object(["size": .string("M"), "color": .string("blue")]))
            #expect(attributes["pets"] == .array([
                .object(["id": .int(2), "type": .string("cat"), "name": .string("나비")]),
                .object(["id": .int(3), "type": .string("fish")]),
            ]))
            let many = (0..<30).map { "\"v\($0)\"" }.joined(separator: ",")
            _ = try await Self.track(store, ws, #"{"attributes": [{"external_id": "u1", "tags": {"add": [\#(many)]}}]}"#)
            let tags = try #require(try await Self.exportOne(store, ws, externalID: "u1")?["custom_attributes"]?["tags"]?.arrayValue)
            #expect(tags.count == 25, "arrays keep the newest 25 values")
            #expect(tags.last == .string("v29"))
        }
    }

    @Test("update-only objects for unknown users are reported, aliases need an explicit upsert", arguments: TestDatabases.all())
    func updateExistingOnly(kind: TestDatabaseKind) async throws {
        try await Self.withStores(kind) { store, ws, _, _ in
            let result = try await Self.track(store, ws, """
                {"attributes": [
                   {"external_id": "ghost", "_update_existing_only": true, "first_name": "X"},
                   {"user_alias": {"alias_name": "anon-1", "alias_label": "device"}, "first_name": "익명"},
                   {"user_alias": {"alias_name": "anon-2", "alias_label": "device"}, "_update_existing_only": false, "first_name": "둘"}],
                 "events": [{"user_alias": {"alias_name": "anon-2", "alias_label": "device"}, "name": "open", "time": "2025-06-30T00:00:00Z"}]}
                """)
            #expect(result.attributesProcessed == 1)
            #expect(result.eventsProcessed == 1)
            #expect(result.errors.map(\.index) == [0, 1])
            #expect(result.errors.allSatisfy { $0.type.contains("_update_existing_only") })
            var query = ExportQuery()
            query.aliases = [UserAlias(name: "anon-2", label: "device")]
            let exported = try await store.export(workspaceID: ws, query: query)
            #expect(exported.users.first?["first_name"] == .string("둘"))
            #expect(try await Self.exportOne(store, ws, externalID: "ghost") == nil)
        }
    }

    @Test("email identifies only without external_id, alias or braze_id", arguments: TestDatabases.all())
    func emailAsIdentifier(kind: TestDatabaseKind) async throws {
        try await Self.withStores(kind) { store, ws, _, _ in
            _ = try await Self.track(store, ws, """
                {"attributes": [{"external_id": "u1", "email": "shared@example.kr"},
                                {"email": "only@example.kr", "first_name": "이메일"}]}
                """)
            _ = try await Self.track(store, ws, #"{"attributes": [{"email": "shared@example.kr", "last_name": "김"}]}"#)
            let u1 = try #require(try await Self.exportOne(store, ws, externalID: "u1"))
            #expect(u1["last_name"] == .string("김"), "email picks the profile with an external id")
            var query = ExportQuery()
            query.email = "ONLY@example.kr"
            let emailOnly = try await store.export(workspaceID: ws, query: query).users
            #expect(emailOnly.count == 1)
            #expect(emailOnly.first?["first_name"] == .string("이메일"))
            #expect(emailOnly.first?["external_id"] == nil)
        }
    }

    @Test("identify merges an alias profile into an identified one", arguments: TestDatabases.all())
    func identifyMerges(kind: TestDatabaseKind) async throws {
        try await Self.withStores(kind) { store, ws, database, _ in
            _ = try await Self.track(store, ws, """
                {"attributes": [{"user_alias": {"alias_name": "d1", "alias_label": "device"}, "_update_existing_only": false,
                                 "first_name": "익명", "coupon": "WELCOME"},
                                {"external_id": "u1", "last_name": "박", "coupon": "KEEP"}],
                 "events": [{"user_alias": {"alias_name": "d1", "alias_label": "device"}, "name": "viewed", "time": "2025-06-29T00:00:00Z"},
                            {"external_id": "u1", "name": "viewed", "time": "2025-06-30T00:00:00Z"}]}
                """)
            let result = try await store.identify(
                workspaceID: ws, items: [IdentifyRequestItem(externalID: "u1", identifier: .alias(UserAlias(name: "d1", label: "device")))])
            #expect(result.processed == 1)
            let user = try #require(try await Self.exportOne(store, ws, externalID: "u1"))
            #expect(user["first_name"] == .string("익명"), "fields only the alias profile had are copied")
            #expect(user["last_name"] == .string("박"))
            #expect(user["custom_attributes"]?["coupon"] == .string("KEEP"), "the identified profile's values win")
            #expect(user["custom_events"]?.arrayValue?.first?["count"] == .int(2), "event counts are summed")
            #expect(user["custom_events"]?.arrayValue?.first?["first"] == .string("2025-06-29T00:00:00.000Z"))
            #expect(user["user_aliases"] == .array([.object(["alias_name": .string("d1"), "alias_label": .string("device")])]))
            let users = try await database.read { try $0.first("SELECT COUNT(*) FROM users", [])?[0].int }
            #expect(users == 1)

            _ = try await Self.track(store, ws, #"{"attributes": [{"user_alias": {"alias_name": "d9", "alias_label": "device"}, "_update_existing_only": false}]}"#)
            let renamed = try await store.identify(
                workspaceID: ws, items: [IdentifyRequestItem(externalID: "u9", identifier: .alias(UserAlias(name: "d9", label: "device")))])
            #expect(renamed.processed == 1)
            #expect(try await Self.exportOne(store, ws, externalID: "u9") != nil, "an alias without an identified twin simply gets the id")
        }
    }

    @Test("delete removes the profile and everything derived from it", arguments: TestDatabases.all())
    func deleteRemovesEverything(kind: TestDatabaseKind) async throws {
        try await Self.withStores(kind) { store, ws, database, _ in
            _ = try await Self.track(store, ws, """
                {"attributes": [{"external_id": "u1", "tags": ["a"], "push_tokens": [{"app_id": "ios", "token": "tok-1"}],
                                 "subscription_groups": [{"subscription_group_id": "night", "subscription_state": "subscribed"}]},
                                {"external_id": "u2", "first_name": "남음"}],
                 "events": [{"external_id": "u1", "name": "viewed", "time": "2025-06-29T00:00:00Z"}],
                 "purchases": [{"external_id": "u1", "product_id": "p", "currency": "KRW", "price": 1, "time": "2025-06-29T00:00:00Z"}]}
                """)
            let deleted = try await store.delete(workspaceID: ws, items: [DeleteRequestItem(identifier: .externalID("u1"))])
            #expect(deleted == 1)
            for table in ["users", "events", "event_daily", "purchases", "purchase_daily", "push_tokens", "user_attribute_values",
                          "subscription_group_states"] {
                let count = try await database.read { try $0.first("SELECT COUNT(*) FROM \(table) WHERE \(table == "users" ? "external_id" : "user_id") = \(table == "users" ? "'u1'" : "1")", [])?[0].int }
                #expect(count == 0, "\(table) still has rows of the deleted user")
            }
            #expect(try await Self.exportOne(store, ws, externalID: "u2") != nil)
        }
    }

    @Test("segmentable properties are counted per value per day", arguments: TestDatabases.all())
    func segmentableProperties(kind: TestDatabaseKind) async throws {
        try await Self.withStores(kind) { store, ws, database, _ in
            try await store.markSegmentable(workspaceID: ws, eventName: "product_viewed", property: "brand")
            _ = try await Self.track(store, ws, """
                {"events": [
                  {"external_id": "u1", "name": "product_viewed", "time": "2025-06-30T01:00:00Z", "properties": {"brand": "Jucy Judy"}},
                  {"external_id": "u1", "name": "product_viewed", "time": "2025-06-30T02:00:00Z", "properties": {"brand": "Jucy Judy"}},
                  {"external_id": "u1", "name": "product_viewed", "time": "2025-06-30T03:00:00Z", "properties": {"brand": "Kirsh"}},
                  {"external_id": "u1", "name": "search", "time": "2025-06-30T03:00:00Z", "properties": {"brand": "Kirsh"}}]}
                """)
            let rows = try await database.read { connection in
                try connection.query("SELECT value, count, first_time, last_time FROM event_property_daily ORDER BY value", [])
            }
            #expect(rows.map { $0[0].string } == ["Jucy Judy", "Kirsh"])
            #expect(rows.map { $0[1].int } == [2, 1])
            #expect(rows[0][3].int == BrazeTime.epochMilliseconds(BrazeTime.parse("2025-06-30T02:00:00Z")!))
        }
    }

    @Test("concurrent requests group-commit and every one lands", arguments: TestDatabases.all())
    func groupCommitUnderConcurrency(kind: TestDatabaseKind) async throws {
        try await Self.withStores(kind) { store, ws, database, _ in
            try await withThrowingTaskGroup(of: TrackResult.self) { group in
                for request in 0..<40 {
                    group.addTask {
                        let events = (0..<75).map { index in
                            #"{"external_id": "u\#((request * 75 + index) % 97)", "name": "tick", "time": "2025-06-30T0\#(index % 10):00:00Z"}"#
                        }.joined(separator: ",")
                        return try await Self.track(store, ws, #"{"events": [\#(events)]}"#)
                    }
                }
                var processed = 0
                for try await result in group { processed += result.eventsProcessed }
                #expect(processed == 3000)
            }
            let (logged, aggregated) = try await database.read { connection in
                (try connection.first("SELECT COUNT(*) FROM events", [])?[0].int,
                 try connection.first("SELECT SUM(count) FROM event_daily", [])?[0].int)
            }
            #expect(logged == 3000)
            #expect(aggregated == 3000, "aggregates match the log exactly")
        }
    }

    @Test("SDK batches create the device profile, then merge it on identification", arguments: TestDatabases.all())
    func sdkIngestion(kind: TestDatabaseKind) async throws {
        try await Self.withStores(kind) { store, ws, _, _ in
            let anonymous = try SDKBatch.parse(try JSONValue.parse(Array("""
                {"device_id": "dev-1", "platform": "ios", "app_version": "5.1.0",
                 "sessions": [{"session_id": "s1", "start": "2025-06-30T09:00:00Z", "end": "2025-06-30T09:05:00Z"}],
                 "events": [{"name": "product_viewed", "time": "2025-06-30T09:01:00Z", "properties": {"brand": "Kirsh"}}],
                 "push_token": {"token": "\(String(repeating: "ab", count: 32))", "authorization": "provisional"}}
                """.utf8)), appID: "ios-app", now: Self.now)
            #expect(try await store.ingest(workspaceID: ws, batch: anonymous).eventsProcessed == 1)
            let identified = try SDKBatch.parse(try JSONValue.parse(Array("""
                {"device_id": "dev-1", "external_id": "u1", "platform": "ios",
                 "attributes": {"first_name": "서연"},
                 "events": [{"name": "product_viewed", "time": "2025-06-30T10:00:00Z"}]}
                """.utf8)), appID: "ios-app", now: Self.now)
            _ = try await store.ingest(workspaceID: ws, batch: identified)
            let user = try #require(try await Self.exportOne(store, ws, externalID: "u1"))
            #expect(user["first_name"] == .string("서연"))
            #expect(user["custom_events"]?.arrayValue?.first?["count"] == .int(2), "the anonymous history was merged")
            #expect(user["push_tokens"]?.arrayValue?.first?["authorization"] == .string("provisional"))
            #expect(user["apps"]?.arrayValue?.first?["sessions"] == .int(1))
        }
    }

    @Test("API keys: hashed, permission-checked, revocable", arguments: TestDatabases.all())
    func apiKeys(kind: TestDatabaseKind) async throws {
        try await kind.withDatabase { database in
            try await Migrator.migrate(database)
            let store = WorkspaceStore(database: database, clock: FixedClock(Self.now))
            let workspace = try await store.createWorkspace(name: "shop")
            let (record, key) = try await store.createAPIKey(
                workspaceID: workspace.id, name: "ingest", permissions: ["users.track", "campaign.details"])
            #expect(record.permissions == ["users.track", "campaigns.details"])
            let stored = try await database.read { try $0.first("SELECT key_hash FROM api_keys", [])?[0].string }
            #expect(stored != key, "the key itself is never stored")
            #expect(try await store.authenticate(key: key)?.id == record.id)
            await #expect(throws: AdminError.self) {
                _ = try await store.createAPIKey(workspaceID: workspace.id, name: "bad", permissions: ["users.trak"])
            }
            try await store.revokeAPIKey(id: record.id)
            #expect(try await store.authenticate(key: key) == nil)
        }
    }

    @Test("migrations are idempotent", arguments: TestDatabases.all())
    func migrationsRunOnce(kind: TestDatabaseKind) async throws {
        try await kind.withDatabase { database in
            let first = try await Migrator.migrate(database)
            let second = try await Migrator.migrate(database)
            #expect(first == Schema.migrations.map(\.version))
            #expect(second.isEmpty)
        }
    }
}
