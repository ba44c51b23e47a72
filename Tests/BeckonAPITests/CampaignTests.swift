import BeckonAPI
import BeckonMessaging
import BeckonConnectedContent
import BeckonCore
import BeckonOutboundHTTP
import BeckonStorage
import BeckonTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import Synchronization
import Testing

/// What a local webhook receiver got: one entry per request, and how often each idempotency key came.
final class WebhookInbox: Sendable {
    struct Delivery: Sendable {
        let path: String
        let idempotencyKey: String
        let contentType: String
        let authorization: String
        let body: JSONValue
    }

    private let deliveries = Mutex<[Delivery]>([])
    private let inFlight = Mutex<(now: Int, most: Int)>((0, 0))
    /// The most requests this receiver had open at once.
    var mostInFlight: Int { inFlight.withLock { $0.most } }
    /// Answers per path: how many times to fail with `status` before answering 200.
    private let failures = Mutex<[String: (count: Int, status: Int)]>([:])

    var all: [Delivery] { deliveries.withLock { $0 } }
    func failNext(_ count: Int, path: String, status: Int) { failures.withLock { $0[path] = (count, status) } }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/hook/{name}") { request, context -> Response in
            self.inFlight.withLock { state in
                state.now += 1
                state.most = max(state.most, state.now)
            }
            defer { self.inFlight.withLock { $0.now -= 1 } }
            if request.headers[HTTPField.Name("X-Slow")!] != nil { try await Task.sleep(for: .milliseconds(30)) }
            let bytes = try await request.body.collect(upTo: 1 << 20)
            let path = "/hook/" + (context.parameters.get("name") ?? "")
            let status: Int = self.failures.withLock { failures in
                guard let failure = failures[path], failure.count > 0 else { return 200 }
                failures[path] = (failure.count - 1, failure.status)
                return failure.status
            }
            self.deliveries.withLock {
                $0.append(Delivery(
                    path: path, idempotencyKey: request.headers[HTTPField.Name("Idempotency-Key")!] ?? "",
                    contentType: request.headers[.contentType] ?? "", authorization: request.headers[.authorization] ?? "",
                    body: (try? JSONValue.parse(Array(String(buffer: bytes).utf8))) ?? .null))
            }
            return Response(status: HTTPResponse.Status(code: status), body: .init(byteBuffer: ByteBuffer(string: status == 200 ? "ok" : "vendor says no")))
        }
        router.get("/best") { request, _ -> Response in
            let category = request.uri.queryParameters["category"].map(String.init) ?? "all"
            let body = #"{"projects": [{"title": "Best of \#(category)", "url": "https://shop.example/p/\#(category)"}]}"#
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        return router
    }
}

/// Campaigns end to end through the router and the send pipeline, to a real local webhook receiver.
@Suite("Campaigns")
struct CampaignTests {
    static func connectedContent() throws -> ConnectedContentConfiguration {
        var configuration = ConnectedContentConfiguration()
        configuration.allowedHosts = try HostAllowlist(parsing: ["127.0.0.1"])
        return configuration
    }

    static func track(_ api: APIHarness, users: [(String, String)]) async throws {
        let attributes = users.map { #"{"external_id": "\#($0.0)", "first_name": "\#($0.1)", "tier": "gold"}"# }
        for chunk in stride(from: 0, to: attributes.count, by: 75) {
            let reply = try await api.post("/users/track", #"{"attributes": [\#(attributes[chunk..<min(chunk + 75, attributes.count)].joined(separator: ","))]}"#)
            #expect(reply.status == .created)
        }
    }

    static func create(_ api: APIHarness, _ body: String) async throws -> String {
        let created = try await api.post("/beckon/v1/campaigns", body)
        #expect(created.status == .created, "\(created.text)")
        let id = try #require(created.json["campaign_id"]?.stringValue)
        let launched = try await api.post("/beckon/v1/campaigns/\(id)/launch", "{}")
        #expect(launched.status == .ok, "\(launched.text)")
        return id
    }

    /// Case (e): an API-triggered campaign with per-recipient trigger properties.
    @Test(arguments: TestDatabases.all())
    func apiTriggeredWithPerRecipientProperties(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind, connectedContent: try Self.connectedContent()) { api in
            let inbox = WebhookInbox()
            try await LocalHTTPServer.run(inbox.router()) { port in
                try await Self.track(api, users: [("u1", "지민"), ("u2", "Alex"), ("u3", "Sam")])
                let id = try await Self.create(api, #"""
                    {"name": "Price drop", "tags": ["price"], "delivery": {"type": "api_triggered"},
                     "messages": {"webhook": {"url": "http://127.0.0.1:\#(port)/hook/price", "method": "POST",
                       "body": "{\"to\": \"{{${user_id}}}\", \"text\": \"{{${first_name}}}, {{api_trigger_properties.${product}}} is now {{api_trigger_properties.${price}}}\"}"}}}
                    """#)
                let trigger = try await api.post("/campaigns/trigger/send", #"""
                    {"campaign_id": "\#(id)", "trigger_properties": {"product": "shoes", "price": "39,000원"},
                     "recipients": [{"external_user_id": "u1", "trigger_properties": {"product": "boots"}}, {"external_user_id": "u2"},
                                    {"external_user_id": "u1", "trigger_properties": {"product": "hat"}}, {"external_user_id": "ghost"}]}
                    """#)
                #expect(trigger.status == .created, "\(trigger.text)")
                #expect(trigger.json["dispatch_id"]?.stringValue?.hasPrefix("dsp_") == true)
                #expect(inbox.all.isEmpty, "the trigger endpoint only enqueues")
                try await api.campaigns.pipeline.drain()
                let bodies = inbox.all.map(\.body).sorted { ($0["to"]?.stringValue ?? "") < ($1["to"]?.stringValue ?? "") }
                #expect(bodies == [
                    .object(["to": .string("u1"), "text": .string("지민, boots is now 39,000원")]),
                    .object(["to": .string("u2"), "text": .string("Alex, shoes is now 39,000원")]),
                ])
                #expect(Set(inbox.all.map(\.idempotencyKey)).count == 2)
                #expect(inbox.all.allSatisfy { $0.idempotencyKey.hasPrefix("msg_") && $0.contentType == "application/json" })
                let details = try await api.get("/beckon/v1/campaigns/\(id)")
                #expect(details.json["messages_by_state"] == .object(["delivered": .int(2)]))
                let missingAttributes = try await api.post("/campaigns/trigger/send", #"{"campaign_id": "\#(id)", "recipients": [{"external_user_id": "z", "send_to_existing_only": false}]}"#)
                #expect(missingAttributes.json["errors"] == .array([.string("recipients[0].attributes: is required when send_to_existing_only is false")]))
                let skipped = try await api.get("/beckon/v1/activity_log?type=skipped")
                #expect(skipped.json["entries"]?.arrayValue?.first?["reason"]?.stringValue?.contains("ghost") == true)

                let created = try await api.post("/campaigns/trigger/send", #"""
                    {"campaign_id": "\#(id)", "trigger_properties": {"product": "cap", "price": "9,900원"},
                     "recipients": [{"external_user_id": "new1", "send_to_existing_only": false, "attributes": {"first_name": "Neo"}},
                                    {"external_user_id": "u3", "attributes": {"first_name": "Samuel"}}]}
                    """#)
                #expect(created.status == .created, "\(created.text)")
                try await api.campaigns.pipeline.drain()
                let texts = Set(inbox.all.compactMap { $0.body["text"]?.stringValue })
                #expect(texts.contains("Neo, cap is now 9,900원"), "the user was created before the send")
                #expect(texts.contains("Samuel, cap is now 9,900원"), "attributes were applied before the send")
                let bad = try await api.post("/campaigns/trigger/send", #"{"campaign_id": "\#(id)", "broadcast": true, "recipients": [{"braze_id": "x", "external_user_id": "y"}], "trigger_properties": []}"#)
                #expect(bad.status == .badRequest)
                #expect(bad.json["errors"]?.arrayValue?.count == 3, "\(bad.text)")
                let list = try await api.get("/campaigns/list")
                #expect(list.json["campaigns"]?.arrayValue?.first?["is_api_campaign"] == .bool(true))
                let braze = try await api.get("/campaigns/details?campaign_id=\(id)")
                #expect(braze.json["channels"] == .array([.string("webhook")]))
                #expect(braze.json["enabled"] == .bool(true))
            }
        }
    }

    @Test(arguments: TestDatabases.all())
    func scheduledWithVariantsControlAndRateLimit(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind, connectedContent: try Self.connectedContent()) { api in
            let inbox = WebhookInbox()
            try await LocalHTTPServer.run(inbox.router()) { port in
                try await Self.track(api, users: (0..<40).map { ("user\($0)", "N\($0)") })
                let at = BrazeTime.format(APIHarness.now.addingTimeInterval(3_600))
                let webhook = { (name: String) in
                    #"{"webhook": {"url": "http://127.0.0.1:\#(port)/hook/\#(name)", "body": "{\"to\": \"{{${user_id}}}\", \"variant\": \"{{campaign.variant_name}}\"}"}}"#
                }
                let id = try await Self.create(api, #"""
                    {"name": "Weekend sale", "audience": {"filter": {"attribute": "custom.tier", "op": "eq", "value": "gold"}},
                     "control_percent": 20, "variants": [{"name": "A", "percent": 50, "messages": \#(webhook("a"))},
                                                         {"name": "B", "percent": 30, "messages": \#(webhook("b"))}],
                     "delivery": {"type": "scheduled", "at": "\#(at)"}, "rate_limit_per_minute": 600}
                    """#)
                try await api.campaigns.pipeline.drain()
                #expect(inbox.all.isEmpty, "not due yet")
                api.clock.advance(by: 3_600)
                try await api.campaigns.pipeline.drain()
                #expect(inbox.all.count == 1, "600/min puts the next message 100 ms later")
                api.clock.advance(by: 10)
                try await api.campaigns.pipeline.drain()
                let details = try await api.get("/beckon/v1/campaigns/\(id)")
                let states = details.json["messages_by_state"]?.objectValue ?? [:]
                let control = Int(states["control"]?.numberValue ?? 0)
                #expect(inbox.all.count + control == 40)
                #expect(states["delivered"] == .int(Int64(inbox.all.count)))
                #expect(control > 0 && control < 16, "about 20 % in control, got \(control)")
                #expect(inbox.all.allSatisfy { $0.path == "/hook/\(($0.body["variant"]?.stringValue ?? "").lowercased())" })
                #expect(Set(inbox.all.compactMap { $0.body["to"]?.stringValue }).count == inbox.all.count, "one message per user")
                let listed = try await api.get("/campaigns/details?campaign_id=\(id)")
                #expect(listed.json["messages"]?.objectValue?.keys.sorted() == ["\(id)_A", "\(id)_B", "\(id)_control"])
            }
        }
    }

    @Test(arguments: TestDatabases.all())
    func retriesFailuresAbortsAndRenderErrors(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind, connectedContent: try Self.connectedContent()) { api in
            let inbox = WebhookInbox()
            try await LocalHTTPServer.run(inbox.router()) { port in
                try await Self.track(api, users: [("u1", "Ana"), ("u2", "Bo"), ("u3", "Cy"), ("u4", "Di")])
                let body = #"{% if ${user_id} == 'u3' %}{% abort_message('u3 opted out of this vendor') %}{% endif %}{% if ${user_id} == 'u4' %}{ broken{% else %}{"to": "{{${user_id}}}"}{% endif %}"#
                let campaign = JSONValue.object([
                    "name": .string("Vendor"), "delivery": .object(["type": .string("api_triggered")]),
                    "messages": .object(["webhook": .object([
                        "url": .string("http://127.0.0.1:\(port)/hook/{{${user_id}}}"), "body": .string(body),
                    ])]),
                ])
                let id = try await Self.create(api, campaign.serialized())
                inbox.failNext(2, path: "/hook/u1", status: 503)
                inbox.failNext(1, path: "/hook/u2", status: 400)
                let trigger = try await api.post("/campaigns/trigger/send", #"""
                    {"campaign_id": "\#(id)", "recipients": [{"external_user_id": "u1"}, {"external_user_id": "u2"}, {"external_user_id": "u3"}, {"external_user_id": "u4"}]}
                    """#)
                #expect(trigger.status == .created)
                try await api.campaigns.pipeline.drain()
                api.clock.advance(by: 1)
                try await api.campaigns.pipeline.drain()
                api.clock.advance(by: 2)
                try await api.campaigns.pipeline.drain()
                let u1 = inbox.all.filter { $0.path == "/hook/u1" }
                #expect(u1.count == 3, "two 503s, then delivered")
                #expect(Set(u1.map(\.idempotencyKey)).count == 1, "every attempt carries the same Idempotency-Key")
                let details = try await api.get("/beckon/v1/campaigns/\(id)")
                #expect(details.json["messages_by_state"] == .object(["delivered": .int(1), "failed": .int(2), "aborted": .int(1)]))
                let log = try await api.get("/beckon/v1/activity_log?campaign_id=\(id)")
                let entries = log.json["entries"]?.arrayValue ?? []
                let byUser = Dictionary(entries.map { ($0["external_id"]?.stringValue ?? "", $0) }) { first, _ in first }
                #expect(byUser["u2"]?["type"] == .string("webhook_failure"))
                #expect(byUser["u2"]?["status"] == .int(400))
                #expect(byUser["u2"]?["reason"]?.stringValue?.contains("vendor says no") == true)
                #expect(byUser["u3"]?["type"] == .string("abort"))
                #expect(byUser["u3"]?["reason"] == .string("u3 opted out of this vendor"))
                #expect(byUser["u4"]?["type"] == .string("render_error"))
                #expect(byUser["u4"]?["reason"]?.stringValue?.contains("not valid JSON") == true)
            }
        }
    }

    @Test(arguments: TestDatabases.all())
    func validationReportsEveryProblem(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            let bad = try await api.post("/beckon/v1/campaigns", #"""
                {"name": "", "messages": {"webhook": {"url": "http://x/{{ user.", "method": "FETCH"}, "email": {}},
                 "delivery": {"type": "scheduled"}, "control_percent": 120, "colour": "red"}
                """#)
            #expect(bad.status == .badRequest)
            let errors = bad.json["errors"]?.arrayValue?.compactMap(\.stringValue) ?? []
            for prefix in ["colour:", "name:", "messages.email:", "messages.webhook.url: Liquid syntax error", "messages.webhook.method:",
                           "delivery.at:", "control_percent:"] {
                #expect(errors.contains { $0.hasPrefix(prefix) }, "\(prefix) in \(errors)")
            }
            let draft = try await api.post("/beckon/v1/campaigns", #"""
                {"name": "Old", "audience": {"segment_ids": ["seg_missing"]}, "delivery": {"type": "scheduled", "at": "2020-01-01T00:00:00Z"},
                 "messages": {"webhook": {"url": "https://vendor.example/send", "body": "hi"}}}
                """#)
            let id = try #require(draft.json["campaign_id"]?.stringValue)
            let launch = try await api.post("/beckon/v1/campaigns/\(id)/launch", "{}")
            #expect(launch.status == .badRequest)
            #expect(launch.json["errors"] == .array([
                .string("audience.segment_ids: no segment with id 'seg_missing'"), .string("delivery.at: 2020-01-01T00:00:00.000Z is in the past"),
            ]))
            #expect(try await api.post("/beckon/v1/campaigns/\(id)/pause", "{}").status == .conflict)
            #expect(try await api.delete("/beckon/v1/campaigns/\(id)").status == .ok)
            #expect(try await api.get("/beckon/v1/campaigns/\(id)").status == .notFound)
        }
    }

    static func engagement(_ api: APIHarness, _ id: String) async throws -> JSONValue {
        try await api.get("/beckon/v1/campaigns/\(id)").json["engagement"] ?? .null
    }

    /// Case (c): add-to-cart schedules a reminder a day later; a purchase in between cancels it;
    /// the user is not re-eligible; a purchase after the send is a conversion.
    @Test(arguments: TestDatabases.all())
    func abandonedCart(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind, connectedContent: try Self.connectedContent()) { api in
            let inbox = WebhookInbox()
            try await LocalHTTPServer.run(inbox.router()) { port in
                try await Self.track(api, users: [("cart1", "Ana"), ("cart2", "Bo")])
                let campaign = JSONValue.object([
                    "name": .string("Abandoned cart"),
                    "delivery": .object([
                        "type": .string("action_based"), "trigger": .object(["event": .string("add_to_cart")]),
                        "delay": .object(["seconds": .int(86_400)]), "cancel_if": .array([.object(["purchase": .object([:])])]),
                    ]),
                    "conversion_events": .array([.object(["purchase": .object([:]), "window_hours": .int(72)])]),
                    "messages": .object(["webhook": .object([
                        "url": .string("http://127.0.0.1:\(port)/hook/cart"),
                        "body": .string(#"{"to": "{{${user_id}}}", "text": "{{event_properties.${product}}} is still in your cart"}"#),
                    ])]),
                ])
                let id = try await Self.create(api, campaign.serialized())
                let added = try await api.post("/users/track", #"""
                    {"events": [{"external_id": "cart1", "name": "add_to_cart", "time": "2025-06-30T15:00:00Z", "properties": {"product": "코트"}},
                                {"external_id": "cart2", "name": "add_to_cart", "time": "2025-06-30T15:00:00Z", "properties": {"product": "모자"}}]}
                    """#)
                #expect(added.status == .created)
                try await api.campaigns.pipeline.drain()
                #expect(inbox.all.isEmpty, "a day's delay")
                api.clock.advance(by: 7_200)
                _ = try await api.post("/users/track", #"{"purchases": [{"external_id": "cart2", "product_id": "hat", "currency": "KRW", "price": 39000, "time": "2025-06-30T17:00:00Z"}]}"#)
                api.clock.advance(by: 86_400)
                try await api.campaigns.pipeline.drain()
                #expect(inbox.all.map(\.body) == [.object(["to": .string("cart1"), "text": .string("코트 is still in your cart")])])
                _ = try await api.post("/users/track", #"{"events": [{"external_id": "cart1", "name": "add_to_cart", "time": "2025-07-01T18:00:00Z", "properties": {"product": "신발"}}]}"#)
                api.clock.advance(by: 2 * 86_400)
                try await api.campaigns.pipeline.drain()
                #expect(inbox.all.count == 1, "not re-eligible (reeligible_after is null)")
                _ = try await api.post("/users/track", #"{"purchases": [{"external_id": "cart1", "product_id": "coat", "currency": "KRW", "price": 129000, "time": "2025-07-03T18:00:00Z"}]}"#)
                try await api.campaigns.pipeline.drain()
                let engagement = try await Self.engagement(api, id)
                #expect(engagement["send"] == .int(1))
                #expect(engagement["delivery"] == .int(1))
                #expect(engagement["conversion"] == .int(1))
                let series = try await api.get("/campaigns/data_series?campaign_id=\(id)&length=5")
                let points = Dictionary((series.json["data"]?.arrayValue ?? []).map { ($0["time"]?.stringValue ?? "", $0) }) { first, _ in first }
                #expect(points.count == 5, "\(series.text)")
                #expect(points["2025-07-02"]?["messages"]?["webhook"]?.arrayValue?.first?["sent"] == .int(1))
                #expect(points["2025-07-02"]?["unique_recipients"] == .int(1))
                #expect(points["2025-07-02"]?["conversions_by_send_time"] == .int(1))
                #expect(points["2025-07-04"]?["conversions"] == .int(1))
                let details = try await api.get("/beckon/v1/campaigns/\(id)")
                #expect(details.json["messages_by_state"]?["cancelled"] == nil, "cart2's reminder was cancelled before it was expanded")
            }
        }
    }

    /// Case (d): the frequency cap holds (an exempt campaign still sends), and advertising gets the
    /// (광고) prefix and opt-out footer and waits for 08:00 unless the user consented to night ads.
    @Test(arguments: TestDatabases.all())
    func frequencyCapAndNightAdvertising(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind, connectedContent: try Self.connectedContent()) { api in
            let inbox = WebhookInbox()
            try await LocalHTTPServer.run(inbox.router()) { port in
                let reply = try await api.post("/users/track", #"""
                    {"attributes": [
                      {"external_id": "night", "first_name": "Owl", "time_zone": "Asia/Seoul",
                       "subscription_groups": [{"subscription_group_id": "night_ads", "subscription_state": "subscribed"}]},
                      {"external_id": "day", "first_name": "Lark", "time_zone": "Asia/Seoul"}]}
                    """#)
                #expect(reply.status == .created, "\(reply.text)")
                let settings = try await api.put("/beckon/v1/delivery_settings", #"""
                    {"frequency_caps": [{"channel": "any", "max": 1, "days": 7}],
                     "advertising": {"opt_out_text": "무료거부 080-123-4567", "night_consent_group": "night_ads"}}
                    """#)
                #expect(settings.status == .ok, "\(settings.text)")
                func campaign(_ name: String, extra: [String: JSONValue]) -> String {
                    var object: [String: JSONValue] = [
                        "name": .string(name), "delivery": .object(["type": .string("api_triggered")]),
                        "messages": .object(["webhook": .object([
                            "url": .string("http://127.0.0.1:\(port)/hook/\(name)"), "ad_text_field": .string("message.content"),
                            "body": .string(#"{"to": "{{${user_id}}}", "message": {"content": "{{${first_name}}}님, 여름 세일"}}"#),
                        ])]),
                    ]
                    for (key, value) in extra { object[key] = value }
                    return JSONValue.object(object).serialized()
                }
                let ad = try await Self.create(api, campaign("ad", extra: ["advertising": .bool(true)]))
                let recipients = #"[{"external_user_id": "night"}, {"external_user_id": "day"}]"#
                _ = try await api.post("/campaigns/trigger/send", #"{"campaign_id": "\#(ad)", "recipients": \#(recipients)}"#)
                try await api.campaigns.pipeline.drain()
                #expect(inbox.all.map { $0.body["to"] } == [.string("night")], "00:00 in Seoul: only the consenting user")
                #expect(inbox.all.first?.body["message"]?["content"] == .string("(광고) Owl님, 여름 세일\n무료거부 080-123-4567"))
                api.clock.advance(by: 8 * 3_600)
                try await api.campaigns.pipeline.drain()
                #expect(inbox.all.map { $0.body["to"] } == [.string("night"), .string("day")], "08:00 in Seoul: the rest")

                let capped = try await Self.create(api, campaign("capped", extra: [:]))
                _ = try await api.post("/campaigns/trigger/send", #"{"campaign_id": "\#(capped)", "recipients": \#(recipients)}"#)
                let exempt = try await Self.create(api, campaign("exempt", extra: ["frequency_capped": .bool(false)]))
                _ = try await api.post("/campaigns/trigger/send", #"{"campaign_id": "\#(exempt)", "recipients": [{"external_user_id": "day"}]}"#)
                try await api.campaigns.pipeline.drain()
                #expect(inbox.all.filter { $0.path == "/hook/capped" }.isEmpty, "both users already got a message this week")
                #expect(inbox.all.filter { $0.path == "/hook/exempt" }.count == 1)
                let skipped = try await api.get("/beckon/v1/activity_log?campaign_id=\(capped)&type=skipped")
                #expect(skipped.json["entries"]?.arrayValue?.count == 2)
                #expect(skipped.json["entries"]?.arrayValue?.first?["reason"] == .string("frequency cap: at most 1 messages per 7 days"))
                let bad = try await api.put("/beckon/v1/delivery_settings", #"{"frequency_caps": [{"max": 0}], "quiet_hours": {"start": "25:00", "end": "08:00"}}"#)
                #expect(bad.json["errors"]?.arrayValue?.count == 2)
            }
        }
    }

    /// Cases (a) and (b) as campaigns: the social-proof webhook reads Beckon's own segment size
    /// (aborting below the threshold, logged), and the best-seller webhook reads the shop's API.
    @Test(arguments: TestDatabases.all())
    func socialProofAndBestSellerCampaigns(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind, connectedContent: try Self.connectedContent()) { api in
            let inbox = WebhookInbox()
            try await LocalHTTPServer.run(inbox.router()) { port in
                try await LocalHTTPServer.run(api.api.makeRouter()) { beckonPort in
                    var events: [String] = []
                    for index in 0..<5 {
                        events.append(#"{"external_id": "v\#(index)", "name": "product_viewed", "time": "2025-06-30T10:00:00Z", "properties": {"brand": "Jucy Judy"}}"#)
                    }
                    _ = try await api.post("/users/track", #"{"events": [\#(events.joined(separator: ","))], "attributes": [{"external_id": "v0", "last_viewed_category": "tech"}]}"#)
                    let segment = try await api.post("/beckon/v1/segments", #"{"name": "Viewed JJ", "filter": {"event": "product_viewed", "where": {"brand": "Jucy Judy"}, "within_last": {"days": 1}}}"#)
                    let segmentID = try #require(segment.json["segment_id"]?.stringValue)
                    func social(threshold: Int) -> String {
                        JSONValue.object([
                            "name": .string("Social proof \(threshold)"), "audience": .object(["segment_ids": .array([.string(segmentID)])]),
                            "delivery": .object(["type": .string("api_triggered")]),
                            "messages": .object(["webhook": .object([
                                "url": .string("http://127.0.0.1:\(port)/hook/social"),
                                "body": .string("""
                                    {% connected_content http://127.0.0.1:\(beckonPort)/segments/data_series?segment_id=\(segmentID)&length=1 :headers {"Authorization": "Bearer \(api.adminKey)"} :save series %}
                                    {%- assign viewers = series.data[0].size -%}
                                    {%- if viewers == nil or viewers < \(threshold) -%}{% abort_message('too few viewers for social proof') %}{%- endif -%}
                                    {"to": "{{${user_id}}}", "text": "{{ viewers | number_with_delimiter }} people viewed this brand yesterday"}
                                    """),
                            ])]),
                        ]).serialized()
                    }
                    let popular = try await Self.create(api, social(threshold: 3))
                    let quiet = try await Self.create(api, social(threshold: 100))
                    let best = try await Self.create(api, JSONValue.object([
                        "name": .string("Best seller"), "delivery": .object(["type": .string("api_triggered")]),
                        "messages": .object(["webhook": .object([
                            "url": .string("http://127.0.0.1:\(port)/hook/best"),
                            "body": .string(#"""
                                {%- assign category = custom_attribute.${last_viewed_category} | default: 'all' -%}
                                {%- connected_content http://127.0.0.1:\#(port)/best?category={{ category | url_param_escape }} :cache_max_age 3600 :save best -%}
                                {"to": "{{${user_id}}}", "title": "{{ best.projects[0].title }}", "name": "{{ ${first_name} | default: '서포터' }}"}
                                """#),
                        ])]),
                    ]).serialized())
                    for id in [popular, quiet] {
                        _ = try await api.post("/campaigns/trigger/send", #"{"campaign_id": "\#(id)", "broadcast": true}"#)
                    }
                    _ = try await api.post("/campaigns/trigger/send", #"{"campaign_id": "\#(best)", "recipients": [{"external_user_id": "v0"}, {"external_user_id": "v1"}]}"#)
                    try await api.campaigns.pipeline.drain()
                    let social = inbox.all.filter { $0.path == "/hook/social" }
                    #expect(social.count == 5)
                    #expect(social.allSatisfy { $0.body["text"] == .string("5 people viewed this brand yesterday") })
                    let aborted = try await api.get("/beckon/v1/activity_log?campaign_id=\(quiet)&type=abort")
                    #expect(aborted.json["entries"]?.arrayValue?.count == 5)
                    #expect(aborted.json["entries"]?.arrayValue?.first?["reason"] == .string("too few viewers for social proof"))
                    let bodies = inbox.all.filter { $0.path == "/hook/best" }.map(\.body).sorted { ($0["to"]?.stringValue ?? "") < ($1["to"]?.stringValue ?? "") }
                    #expect(bodies == [
                        .object(["to": .string("v0"), "title": .string("Best of tech"), "name": .string("서포터")]),
                        .object(["to": .string("v1"), "title": .string("Best of all"), "name": .string("서포터")]),
                    ])
                }
            }
        }
    }

    @Test(arguments: TestDatabases.all())
    func messagesSendAndTriggerSchedules(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind, connectedContent: try Self.connectedContent()) { api in
            let inbox = WebhookInbox()
            try await LocalHTTPServer.run(inbox.router()) { port in
                try await Self.track(api, users: [("m1", "Mo"), ("m2", "Ny")])
                let send = try await api.post("/messages/send", #"""
                    {"external_user_ids": ["m1"], "messages": {"webhook": {"url": "http://127.0.0.1:\#(port)/hook/adhoc",
                     "request_method": "POST", "request_headers": {"X-Vendor": "kakao"}, "body": "{\"to\": \"{{${user_id}}}\"}"}}}
                    """#)
                #expect(send.status == .created, "\(send.text)")
                try await api.campaigns.pipeline.drain()
                #expect(inbox.all.map { $0.path } == ["/hook/adhoc"])
                let bad = try await api.post("/messages/send", #"{"segment_id": "seg_x", "messages": {"email": {}}}"#)
                #expect(bad.status == .badRequest)
                #expect(bad.json["errors"]?.arrayValue?.count == 3, "\(bad.text)")

                let id = try await Self.create(api, JSONValue.object([
                    "name": .string("Later"), "delivery": .object(["type": .string("api_triggered")]),
                    "messages": .object(["webhook": .object([
                        "url": .string("http://127.0.0.1:\(port)/hook/later"),
                        "body": .string(#"{"to": "{{${user_id}}}", "p": "{{api_trigger_properties.${p}}}"}"#),
                    ])]),
                ]).serialized())
                let inOneHour = BrazeTime.format(APIHarness.now.addingTimeInterval(3_600))
                let created = try await api.post("/campaigns/trigger/schedule/create", #"""
                    {"campaign_id": "\#(id)", "recipients": [{"external_user_id": "m2"}], "trigger_properties": {"p": "v1"}, "schedule": {"time": "\#(inOneHour)"}}
                    """#)
                #expect(created.status == .created, "\(created.text)")
                let scheduleID = try #require(created.json["schedule_id"]?.stringValue)
                let inTwoHours = BrazeTime.format(APIHarness.now.addingTimeInterval(7_200))
                let updated = try await api.post("/campaigns/trigger/schedule/update", #"""
                    {"campaign_id": "\#(id)", "schedule_id": "\#(scheduleID)", "trigger_properties": {"p": "v2"}, "schedule": {"time": "\#(inTwoHours)"}}
                    """#)
                #expect(updated.status == .ok, "\(updated.text)")
                let doomed = try await api.post("/campaigns/trigger/schedule/create", #"""
                    {"campaign_id": "\#(id)", "recipients": [{"external_user_id": "m1"}], "schedule": {"time": "\#(inOneHour)"}}
                    """#)
                let doomedID = try #require(doomed.json["schedule_id"]?.stringValue)
                #expect(try await api.post("/campaigns/trigger/schedule/delete", #"{"campaign_id": "\#(id)", "schedule_id": "\#(doomedID)"}"#).status == .ok)
                #expect(try await api.post("/campaigns/trigger/schedule/delete", #"{"campaign_id": "\#(id)", "schedule_id": "\#(doomedID)"}"#).status == .notFound)
                api.clock.advance(by: 3_600)
                try await api.campaigns.pipeline.drain()
                #expect(inbox.all.filter { $0.path == "/hook/later" }.isEmpty, "moved to two hours; the other was deleted")
                api.clock.advance(by: 3_600)
                try await api.campaigns.pipeline.drain()
                #expect(inbox.all.filter { $0.path == "/hook/later" }.map(\.body) == [.object(["to": .string("m2"), "p": .string("v2")])])
                let past = try await api.post("/campaigns/trigger/schedule/create", #"{"campaign_id": "\#(id)", "broadcast": true, "schedule": {"time": "2020-01-01T00:00:00Z"}}"#)
                #expect(past.status == .badRequest)
            }
        }
    }

    @Test(arguments: TestDatabases.all())
    func quietHoursDelayOrSkip(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind, connectedContent: try Self.connectedContent()) { api in
            let inbox = WebhookInbox()
            try await LocalHTTPServer.run(inbox.router()) { port in
                _ = try await api.post("/users/track", #"{"attributes": [{"external_id": "seoul", "time_zone": "Asia/Seoul"}, {"external_id": "paris", "time_zone": "Europe/Paris"}]}"#)
                _ = try await api.put("/beckon/v1/delivery_settings", #"{"quiet_hours": {"start": "22:00", "end": "09:00", "action": "delay"}}"#)
                let id = try await Self.create(api, JSONValue.object([
                    "name": .string("Quiet"), "delivery": .object(["type": .string("api_triggered")]),
                    "messages": .object(["webhook": .object([
                        "url": .string("http://127.0.0.1:\(port)/hook/quiet"), "body": .string(#"{"to": "{{${user_id}}}"}"#),
                    ])]),
                ]).serialized())
                _ = try await api.post("/campaigns/trigger/send", #"{"campaign_id": "\#(id)", "broadcast": true}"#)
                try await api.campaigns.pipeline.drain()
                #expect(inbox.all.map { $0.body["to"] } == [.string("paris")], "00:00 in Seoul is quiet; 17:00 in Paris is not")
                api.clock.advance(by: 9 * 3_600)
                try await api.campaigns.pipeline.drain()
                #expect(inbox.all.map { $0.body["to"] } == [.string("paris"), .string("seoul")], "held until 09:00 in Seoul")
                _ = try await api.put("/beckon/v1/delivery_settings", #"{"quiet_hours": {"start": "08:00", "end": "10:00", "action": "skip"}}"#)
                _ = try await api.post("/campaigns/trigger/send", #"{"campaign_id": "\#(id)", "recipients": [{"external_user_id": "seoul"}]}"#)
                try await api.campaigns.pipeline.drain()
                let skipped = try await api.get("/beckon/v1/activity_log?campaign_id=\(id)&type=skipped")
                #expect(skipped.json["entries"]?.arrayValue?.first?["reason"] == .string("quiet hours 08:00–10:00 in Asia/Seoul"))
                #expect(inbox.all.count == 2)
            }
        }
    }

    @Test(arguments: TestDatabases.all())
    func concurrencyPerCampaignIsBounded(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind, connectedContent: try Self.connectedContent()) { api in
            let inbox = WebhookInbox()
            try await LocalHTTPServer.run(inbox.router()) { port in
                try await Self.track(api, users: (0..<150).map { ("c\($0)", "C") })
                let id = try await Self.create(api, JSONValue.object([
                    "name": .string("Bounded"), "delivery": .object(["type": .string("api_triggered")]),
                    "messages": .object(["webhook": .object([
                        "url": .string("http://127.0.0.1:\(port)/hook/bounded"), "headers": .object(["X-Slow": .string("1")]),
                        "body": .string(#"{"to": "{{${user_id}}}"}"#),
                    ])]),
                ]).serialized())
                _ = try await api.post("/campaigns/trigger/send", #"{"campaign_id": "\#(id)", "broadcast": true}"#)
                try await api.campaigns.pipeline.drain()
                #expect(inbox.all.count == 150)
                #expect(inbox.mostInFlight <= 8, "the harness allows 8 requests per campaign at once; saw \(inbox.mostInFlight)")
                #expect(inbox.mostInFlight >= 2)
            }
        }
    }

    @Test(arguments: TestDatabases.all())
    func recurringDailyAndSessionStartTrigger(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind, connectedContent: try Self.connectedContent()) { api in
            let inbox = WebhookInbox()
            try await LocalHTTPServer.run(inbox.router()) { port in
                try await Self.track(api, users: [("r1", "R"), ("r2", "S")])
                let first = APIHarness.now.addingTimeInterval(600)
                let daily = JSONValue.object([
                    "name": .string("Daily digest"),
                    "messages": .object(["webhook": .object(["url": .string("http://127.0.0.1:\(port)/hook/daily"), "body": .string(#"{"to": "{{${user_id}}}"}"#)])]),
                    "delivery": .object([
                        "type": .string("scheduled"), "at": .string(BrazeTime.format(first)),
                        "recurrence": .object(["every": .string("day"), "until": .string(BrazeTime.format(first.addingTimeInterval(2 * 86_400)))]),
                    ]),
                ])
                let dailyID = try await Self.create(api, daily.serialized())
                for _ in 0..<5 {
                    api.clock.advance(by: 86_400)
                    try await api.campaigns.pipeline.drain()
                }
                #expect(inbox.all.filter { $0.path == "/hook/daily" }.count == 6, "three runs (first, +1 day, +2 days) to two users")
                let details = try await api.get("/beckon/v1/campaigns/\(dailyID)")
                #expect(details.json["next_run_at"] == .null, "no run after 'until'")

                let welcome = JSONValue.object([
                    "name": .string("Welcome back"),
                    "messages": .object(["webhook": .object(["url": .string("http://127.0.0.1:\(port)/hook/session"), "body": .string(#"{"to": "{{${user_id}}}"}"#)])]),
                    "delivery": .object(["type": .string("action_based"), "trigger": .object(["session_start": .object([:])])]),
                ])
                _ = try await Self.create(api, welcome.serialized())
                let sdk = try await api.post("/sdk/v1/data", """
                    {"app_id": "\(api.workspace.appID)", "device_id": "phone-1", "external_id": "r1", "platform": "ios",
                     "sessions": [{"session_id": "s1", "start": "2025-07-05T15:00:00Z"}]}
                    """, key: "")
                #expect(sdk.status == .created, "\(sdk.text)")
                try await api.campaigns.pipeline.drain()
                #expect(inbox.all.filter { $0.path == "/hook/session" }.map { $0.body["to"] } == [.string("r1")])
            }
        }
    }

    @Test(arguments: TestDatabases.all())
    func enteredSegmentTrigger(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind, connectedContent: try Self.connectedContent()) { api in
            let inbox = WebhookInbox()
            try await LocalHTTPServer.run(inbox.router()) { port in
                let segment = try await api.post("/beckon/v1/segments", #"{"name": "VIP", "filter": {"attribute": "custom.tier", "op": "eq", "value": "vip"}}"#)
                let segmentID = try #require(segment.json["segment_id"]?.stringValue)
                _ = try await Self.create(api, JSONValue.object([
                    "name": .string("Welcome to VIP"),
                    "messages": .object(["webhook": .object(["url": .string("http://127.0.0.1:\(port)/hook/vip"), "body": .string(#"{"to": "{{${user_id}}}"}"#)])]),
                    "delivery": .object([
                        "type": .string("action_based"), "trigger": .object(["entered_segment": .string(segmentID)]),
                        "reeligible_after": .object(["days": .int(1)]),
                    ]),
                ]).serialized())
                func tier(_ value: String) async throws {
                    let reply = try await api.post("/users/track", #"{"attributes": [{"external_id": "e1", "tier": "\#(value)"}]}"#)
                    #expect(reply.status == .created)
                    try await api.campaigns.pipeline.drain()
                }
                try await tier("gold")
                #expect(inbox.all.isEmpty)
                try await tier("vip")
                #expect(inbox.all.count == 1, "entered the segment")
                try await tier("vip")
                #expect(inbox.all.count == 1, "still inside: not a new entry")
                try await tier("gold")
                api.clock.advance(by: 2 * 86_400)
                try await tier("vip")
                #expect(inbox.all.count == 2, "left, came back after the re-eligibility period")
            }
        }
    }

    @Test(arguments: TestDatabases.all())
    func globalControlGroupSkipsScheduledButNotAPICampaigns(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind, connectedContent: try Self.connectedContent()) { api in
            let inbox = WebhookInbox()
            try await LocalHTTPServer.run(inbox.router()) { port in
                let ids = (0..<60).map { "g\($0)" }
                try await Self.track(api, users: ids.map { ($0, "G") })
                _ = try await api.put("/beckon/v1/delivery_settings", #"{"global_control_group_percent": 15}"#)
                var query = ExportQuery()
                query.externalIDs = ids
                let profiles = try await api.users.export(workspaceID: api.workspace.id, query: query).users
                let holdout = Set(profiles.filter { ($0["random_bucket"]?.numberValue ?? 0) < 1_500 }.compactMap { $0["external_id"]?.stringValue })
                let webhook = { (name: String) in
                    JSONValue.object(["webhook": .object(["url": .string("http://127.0.0.1:\(port)/hook/\(name)"), "body": .string(#"{"to": "{{${user_id}}}"}"#)])])
                }
                let scheduled = JSONValue.object([
                    "name": .string("Scheduled"), "messages": webhook("scheduled"),
                    "delivery": .object(["type": .string("scheduled"), "at": .string(BrazeTime.format(APIHarness.now.addingTimeInterval(60)))]),
                ])
                let api1 = JSONValue.object(["name": .string("API"), "messages": webhook("api"), "delivery": .object(["type": .string("api_triggered")])])
                _ = try await Self.create(api, scheduled.serialized())
                let apiID = try await Self.create(api, api1.serialized())
                _ = try await api.post("/campaigns/trigger/send", #"{"campaign_id": "\#(apiID)", "broadcast": true}"#)
                api.clock.advance(by: 60)
                try await api.campaigns.pipeline.drain()
                let scheduledTo = Set(inbox.all.filter { $0.path == "/hook/scheduled" }.compactMap { $0.body["to"]?.stringValue })
                #expect(!holdout.isEmpty, "about 15 % of 60 users hold out")
                #expect(scheduledTo == Set(ids).subtracting(holdout))
                #expect(inbox.all.filter { $0.path == "/hook/api" }.count == 60, "API campaigns reach the global control group")
                let bad = try await api.put("/beckon/v1/delivery_settings", #"{"global_control_group_percent": 40}"#)
                #expect(bad.status == .badRequest)
            }
        }
    }
}
