import BeckonCore
import BeckonStorage
import Foundation

/// Loads a realistic synthetic dataset — a Korean fashion shop — through the ingestion code path.
///
/// Users with Korean names in Asia/Seoul, product views by brand and category, searches, carts
/// and purchases in KRW over the 30 days before now, email/push states including iOS provisional
/// push. Attributes, events and purchases go through `/users/track` validation and the same
/// store calls; sessions and push tokens through SDK ingestion. Deterministic for a given size.
public struct DemoLoader: Sendable {
    let users: UserStore
    let clock: any BeckonClock

    public init(users: UserStore, clock: any BeckonClock) {
        self.users = users
        self.clock = clock
    }

    static let lastNames = ["김", "이", "박", "최", "정", "강", "조", "윤", "장", "임", "한", "오", "서", "신", "권", "황", "안", "송"]
    static let firstNames = [
        "민준", "서연", "도윤", "서윤", "예준", "지우", "시우", "하윤", "주원", "지유", "하준", "수아", "지호", "지아", "준서",
        "서아", "현우", "하은", "지훈", "윤서", "건우", "민서", "우진", "채원", "선우", "수빈", "연우", "지민", "유준", "다은",
    ]
    static let cities = ["서울", "서울", "서울", "부산", "인천", "대구", "대전", "광주", "수원", "성남", "고양", "제주"]
    static let brands = [
        "Jucy Judy", "Mardi Mercredi", "Thisisneverthat", "Covernat", "Kirsh", "Matin Kim", "Ader Error", "Andersson Bell",
        "Low Classic", "Sculptor", "Emis", "Wooyoungmi",
    ]
    static let categories = [
        ("A0010", "아우터"), ("A0020", "니트"), ("A0030", "티셔츠"), ("A0040", "원피스"), ("A0050", "팬츠"), ("A0060", "스커트"),
        ("A0070", "가방"), ("A0080", "신발"), ("A0090", "액세서리"), ("A0100", "모자"),
    ]
    static let keywords = ["패딩", "코트", "가디건", "청바지", "원피스", "스니커즈", "에코백", "볼캡", "니트", "머플러", "후드티", "슬랙스"]

    /// Loads `count` users into workspace `workspaceID`, reporting progress through `progress`.
    ///
    /// - Returns: a one-line summary of what was loaded.
    public func load(workspaceID: Int64, users count: Int, progress: @Sendable (String) -> Void = { _ in }) async throws -> String {
        try await users.markSegmentable(workspaceID: workspaceID, eventName: "product_viewed", property: "brand")
        try await users.markSegmentable(workspaceID: workspaceID, eventName: "product_viewed", property: "category")
        var random = SeededRandom(seed: 20_251_122)
        let now = clock.now()
        var totals = (attributes: 0, events: 0, purchases: 0)
        let started = Date()
        var userIndex = 0
        while userIndex < count {
            let chunk = min(75, count - userIndex)
            var attributes: [JSONValue] = []
            var events: [JSONValue] = []
            var purchases: [JSONValue] = []
            var batches: [SDKBatch] = []
            for offset in 0..<chunk {
                let user = makeUser(number: userIndex + offset + 1, random: &random, now: now)
                attributes.append(user.attributes)
                events.append(contentsOf: user.events)
                purchases.append(contentsOf: user.purchases)
                batches.append(user.sdk)
            }
            let result = try await track(["attributes": .array(attributes)], workspaceID: workspaceID, now: now)
            totals.attributes += result.attributesProcessed
            for start in stride(from: 0, to: events.count, by: 75) {
                let slice = Array(events[start..<min(start + 75, events.count)])
                totals.events += try await track(["events": .array(slice)], workspaceID: workspaceID, now: now).eventsProcessed
            }
            for start in stride(from: 0, to: purchases.count, by: 75) {
                let slice = Array(purchases[start..<min(start + 75, purchases.count)])
                totals.purchases += try await track(["purchases": .array(slice)], workspaceID: workspaceID, now: now).purchasesProcessed
            }
            for batch in batches { _ = try await users.ingest(workspaceID: workspaceID, batch: batch) }
            userIndex += chunk
            if userIndex % 1000 < 75 || userIndex == count { progress("demo: \(userIndex)/\(count) users loaded") }
        }
        let seconds = Date().timeIntervalSince(started)
        return "demo: loaded \(totals.attributes) users, \(totals.events) events and \(totals.purchases) purchases in \(String(format: "%.1f", seconds)) s"
    }

    private func track(_ body: [String: JSONValue], workspaceID: Int64, now: Date) async throws -> TrackResult {
        let request = try TrackRequest.parse(.object(body), now: now)
        let result = try await users.track(workspaceID: workspaceID, request: request)
        if let error = result.errors.first { throw RequestError("demo data rejected", [error.type]) }
        return result
    }

    private struct DemoUser {
        var attributes: JSONValue
        var events: [JSONValue]
        var purchases: [JSONValue]
        var sdk: SDKBatch
    }

    private func makeUser(number: Int, random: inout SeededRandom, now: Date) -> DemoUser {
        let externalID = String(format: "user-%07d", number)
        let lastName = random.pick(Self.lastNames)
        let firstName = random.pick(Self.firstNames)
        let phone = String(format: "+8210%08d", random.int(0...99_999_999))
        let pushState = random.weighted([("opted_in", 55), ("subscribed", 35), ("unsubscribed", 10)])
        let emailState = random.weighted([("opted_in", 40), ("subscribed", 45), ("unsubscribed", 15)])
        let favoriteBrands = (0..<random.int(1...3)).map { _ in JSONValue.string(random.pick(Self.brands)) }
        let category = random.pick(Self.categories)
        let day = 86_400.0
        var events: [JSONValue] = []
        var purchases: [JSONValue] = []
        var lifetimeSpend: Int64 = 0
        let activity = random.weighted([(0, 10), (3, 40), (12, 35), (40, 15)])
        for _ in 0..<activity {
            let when = now.addingTimeInterval(-random.double(0..<(30 * day)))
            let brand = random.chance(0.6) ? favoriteBrands[0].stringValue ?? random.pick(Self.brands) : random.pick(Self.brands)
            let viewed = random.chance(0.7) ? category : random.pick(Self.categories)
            let productID = "P\(viewed.0.dropFirst())-\(random.int(100...999))"
            let price = Int64(random.int(19...399)) * 1000
            let time = JSONValue.string(BrazeTime.format(when))
            events.append(.object([
                "external_id": .string(externalID), "name": .string("product_viewed"), "time": time,
                "properties": .object(["brand": .string(brand), "product_id": .string(productID), "category": .string(viewed.0),
                                       "category_name": .string(viewed.1), "price": .int(price)]),
            ]))
            if random.chance(0.2) {
                events.append(.object([
                    "external_id": .string(externalID), "name": .string("search"), "time": time,
                    "properties": .object(["keyword": .string(random.pick(Self.keywords))]),
                ]))
            }
            if random.chance(0.15) {
                events.append(.object([
                    "external_id": .string(externalID), "name": .string("added_to_cart"), "time": time,
                    "properties": .object(["brand": .string(brand), "product_id": .string(productID), "price": .int(price)]),
                ]))
                if random.chance(0.45) {
                    let quantity = random.int(1...2)
                    lifetimeSpend += price * Int64(quantity)
                    purchases.append(.object([
                        "external_id": .string(externalID), "product_id": .string(productID), "currency": .string("KRW"),
                        "price": .int(price), "quantity": .int(Int64(quantity)),
                        "time": .string(BrazeTime.format(min(when.addingTimeInterval(random.double(60..<7200)), now))),
                        "properties": .object(["brand": .string(brand), "category": .string(viewed.0)]),
                    ]))
                }
            }
        }
        let attributes: JSONValue = .object([
            "external_id": .string(externalID), "first_name": .string(firstName), "last_name": .string(lastName),
            "email": .string("\(externalID)@example.kr"), "phone": .string(phone), "country": .string("KR"),
            "language": .string("ko"), "time_zone": .string("Asia/Seoul"), "gender": .string(random.pick(["M", "F", "F"])),
            "dob": .string(String(format: "%04d-%02d-%02d", random.int(1965...2006), random.int(1...12), random.int(1...28))),
            "home_city": .string(random.pick(Self.cities)), "email_subscribe": .string(emailState),
            "push_subscribe": .string(pushState),
            "last_view_category": .string(category.0), "favorite_brands": .array(favoriteBrands),
            "lifetime_spend": .int(lifetimeSpend), "membership_tier": .string(random.pick(["basic", "basic", "silver", "gold", "vip"])),
            "marketing_night_consent": .bool(random.chance(0.2)),
        ])
        let platform = random.weighted([("ios", 45), ("android", 50), ("web", 5)])
        let authorization = platform == "ios" ? random.weighted([("authorized", 60), ("provisional", 25), ("denied", 15)]) : "authorized"
        let deviceID = String(format: "device-%07d", number)
        let token = platform == "ios"
            ? (0..<32).map { _ in String(format: "%02x", random.int(0...255)) }.joined()
            : "fcm-\(deviceID)-\(random.int(100_000...999_999))"
        var sdk = SDKBatch(appID: "demo-\(platform)", deviceID: deviceID, externalID: externalID, platform: platform)
        sdk.appVersion = "5.\(random.int(0...9)).\(random.int(0...9))"
        let sessionStart = now.addingTimeInterval(-random.double(0..<(30 * day)))
        sdk.sessions = [SessionRecord(
            sessionID: "s-\(number)", startMillis: BrazeTime.epochMilliseconds(sessionStart),
            endMillis: BrazeTime.epochMilliseconds(sessionStart.addingTimeInterval(random.double(30..<900))))]
        if platform != "web" {
            sdk.pushToken = PushTokenRegistration(
                appID: sdk.appID, token: token, deviceID: deviceID, platform: platform, authorization: authorization)
        }
        return DemoUser(attributes: attributes, events: events, purchases: purchases, sdk: sdk)
    }
}

/// A small deterministic generator (SplitMix64), so the demo dataset is the same on every machine.
struct SeededRandom {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.upperBound - range.lowerBound + 1))
    }

    mutating func double(_ range: Range<Double>) -> Double {
        range.lowerBound + Double(next() >> 11) / Double(1 << 53) * (range.upperBound - range.lowerBound)
    }

    mutating func chance(_ probability: Double) -> Bool { double(0..<1) < probability }

    mutating func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }

    mutating func weighted<T>(_ items: [(T, Int)]) -> T {
        var roll = int(0...(items.reduce(0) { $0 + $1.1 } - 1))
        for (item, weight) in items {
            if roll < weight { return item }
            roll -= weight
        }
        return items[items.count - 1].0
    }
}
