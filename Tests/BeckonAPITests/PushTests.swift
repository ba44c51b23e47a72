import BeckonAPI
import BeckonChannels
import BeckonConnectedContent
import BeckonCore
import BeckonMessaging
import BeckonOutboundHTTP
import BeckonStorage
import BeckonTestSupport
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Synchronization
import Testing
import _CryptoExtras

@Suite("Push")
struct PushTests {
    static let key = P256.Signing.PrivateKey()
    /// The CA of every provider stand-in in these tests, trusted as `--extra-ca-file` is.
    static let authority = try! TestCertificateAuthority()

    static func configureAPNs(_ api: APIHarness, port: Int) async throws {
        let body = JSONValue.object([
            "team_id": .string("TEAM123456"), "key_id": .string("KEY1234567"), "private_key": .string(key.pemRepresentation),
            "bundle_id": .string("com.example.shop"), "environment": .string("sandbox"), "endpoint": .string("https://127.0.0.1:\(port)"),
        ])
        let reply = try await api.put("/beckon/v1/push/apns", body.serialized())
        #expect(reply.status == .ok, "\(reply.text)")
    }

    static func register(_ api: APIHarness, _ externalID: String, token: String, authorization: String = "authorized", name: String) async throws {
        let reply = try await api.post("/sdk/v1/data", #"""
            {"app_id": "\#(api.workspace.appID)", "device_id": "dev-\#(externalID)", "external_id": "\#(externalID)", "platform": "ios",
             "attributes": {"first_name": "\#(name)"}, "push_token": {"token": "\#(token)", "authorization": "\#(authorization)"}}
            """#, key: "")
        #expect(reply.status == .created || reply.status == .ok, "\(reply.text)")
    }

    static func campaign(_ api: APIHarness) async throws -> String {
        try await CampaignTests.create(api, #"""
            {"name": "Social proof", "delivery": {"type": "api_triggered"},
             "messages": {"push": {"title": "{{${first_name}}}님, 지금 37명이 보고 있어요", "body": "재고가 얼마 남지 않았어요",
                                   "deep_link": "shop://p/{{api_trigger_properties.${product}}}", "data": {"product": "{{api_trigger_properties.${product}}}"},
                                   "platforms": ["ios"]}},
             "conversion_events": [{"push_opened": {}}]}
            """#)
    }

    static func trigger(_ api: APIHarness, _ id: String, _ users: [String]) async throws {
        let recipients = users.map { #"{"external_user_id": "\#($0)"}"# }.joined(separator: ", ")
        let reply = try await api.post("/campaigns/trigger/send", #"""
            {"campaign_id": "\#(id)", "trigger_properties": {"product": "sneakers"}, "recipients": [\#(recipients)]}
            """#)
        #expect(reply.status == .created, "\(reply.text)")
    }

    /// A harness whose outbound client trusts the stand-in's CA (as `--extra-ca-file` does), the
    /// APNs stand-in over TLS and HTTP/2, and APNs configured to reach it.
    static func withAPNs(_ kind: TestDatabaseKind, _ body: @escaping @Sendable (APIHarness, APNsStandIn, Int) async throws -> Void) async throws {
        var configuration = try CampaignTests.connectedContent()
        configuration.extraTrustRoots = try ExtraTrustRoots(pemFile: try Self.authority.writeCertificateFile())
        try await APIHarness.run(kind, connectedContent: configuration) { api in
            let apns = APNsStandIn(publicKey: Self.key.publicKey, topic: "com.example.shop", unregisteredAt: BrazeTime.epochMilliseconds(APIHarness.now) + 3_600_000)
            try await LocalTLSServer.run(apns.router(), authority: Self.authority) { port in
                try await Self.configureAPNs(api, port: port)
                try await body(api, apns, port)
            }
        }
    }

    static let authorized = "aa11" + String(repeating: "0", count: 60)
    static let provisional = "bb22" + String(repeating: "0", count: 60)
    static let dead = "dead" + String(repeating: "0", count: 60)
    static let denied = "cc33" + String(repeating: "0", count: 60)

    @Test("an iOS campaign reaches authorized and provisional tokens over APNs, retires a dead token, counts an open", arguments: TestDatabases.all())
    func apnsCampaign(kind: TestDatabaseKind) async throws {
        try await Self.withAPNs(kind) { api, apns, port in
            let shown = try await api.get("/beckon/v1/push")
            #expect(shown.json["push"]?["apns"]?["configured"] == .bool(true))
            #expect(shown.json["push"]?["apns"]?["bundle_id"] == .string("com.example.shop"))
            #expect(!shown.text.contains("PRIVATE KEY"), "the key is never returned")
            try await Self.register(api, "u1", token: Self.authorized, name: "지민")
            try await Self.register(api, "u2", token: Self.provisional, authorization: "provisional", name: "Alex")
            try await Self.register(api, "u3", token: Self.dead, name: "Sam")
            try await Self.register(api, "u4", token: Self.denied, authorization: "denied", name: "Kim")
            let track = try await api.post("/users/track", #"{"attributes": [{"external_id": "u5", "first_name": "NoToken"}]}"#)
            #expect(track.status == .created)
            let id = try await Self.campaign(api)
            try await Self.trigger(api, id, ["u1", "u2", "u3", "u4", "u5"])
            try await api.campaigns.pipeline.drain()

            #expect(Set(apns.all.map(\.token)) == [Self.authorized, Self.provisional, Self.dead], "denied and token-less users are not reached")
            let first = try #require(apns.accepted.first { $0.token == Self.authorized })
            #expect(first.payload["aps"]?["alert"]?["title"] == .string("지민님, 지금 37명이 보고 있어요"))
            #expect(first.payload["deep_link"] == .string("shop://p/sneakers"))
            #expect(first.payload["product"] == .string("sneakers"))
            #expect(first.headers["apns-push-type"] == "alert" && first.headers["apns-priority"] == "10")
            #expect(Set(apns.all.map(\.jwt)).count == 1, "one provider token for every push")
            let deliveryID = try #require(first.payload["beckon_message_id"]?.stringValue)
            let messageID = String(deliveryID.prefix { $0 != "." })
            #expect(first.apnsID == PushDeliveryID.apnsID(messageID: messageID, token: Self.authorized))

            let counts = try await api.campaigns.queue.engagementCounts(campaignID: id)
            #expect(counts["delivery"] == 2 && counts["bounce"] == 1 && counts["failure"] == 1, "\(counts)")

            // The dead token is retired: the next send does not target its user.
            try await Self.trigger(api, id, ["u1", "u2", "u3"])
            try await api.campaigns.pipeline.drain()
            #expect(apns.all.count == 5 && apns.all.suffix(2).allSatisfy { $0.token != Self.dead })

            // The SDK reports the open with the payload's beckon_message_id.
            let open = try await api.post("/sdk/v1/data", #"""
                {"app_id": "\#(api.workspace.appID)", "device_id": "dev-u1", "external_id": "u1", "platform": "ios",
                 "push_opens": [{"message_id": "\#(deliveryID)"}, {"message_id": "\#(deliveryID)"}]}
                """#, key: "")
            #expect(open.status == .created || open.status == .ok, "\(open.text)")
            #expect(try await api.campaigns.queue.engagementCounts(campaignID: id)["open"] == 1, "an open is counted once")
            // Braze-style: a push_opened event through /users/track with the payload's id (u2's delivery).
            let second = try #require(apns.accepted.first { $0.token == Self.provisional }?.payload["beckon_message_id"]?.stringValue)
            let now = BrazeTime.format(epochMilliseconds: BrazeTime.epochMilliseconds(api.clock.now()))
            let tracked = try await api.post("/users/track", #"{"events": [{"external_id": "u2", "name": "push_opened", "time": "\#(now)", "properties": {"message_id": "\#(second)"}}]}"#)
            #expect(tracked.status == .created, "\(tracked.text)")
            let notMine = try await api.post("/users/track", #"{"events": [{"external_id": "u3", "name": "push_opened", "time": "\#(now)", "properties": {"message_id": "\#(deliveryID)"}}]}"#)
            #expect(notMine.status == .created, "another user's message id is stored as an event but is not an open")
            try await api.campaigns.pipeline.drain()
            let counted = try await api.campaigns.queue.engagementCounts(campaignID: id)
            #expect(counted["open"] == 2 && counted["conversion"] == 2, "opens count for the campaign's push_opened conversion: \(counted)")
            let series = try await api.get("/campaigns/data_series?campaign_id=\(id)&length=1")
            let ios = series.json["data"]?.arrayValue?.last?["messages"]?["ios_push"]?.arrayValue?.first
            #expect(ios?["sent"] == .int(4) && ios?["direct_opens"] == .int(2) && ios?["bounces"] == .int(1), "\(series.text)")
            #expect(series.json["data"]?.arrayValue?.last?["conversions"] == .int(2))
            let opened = try await api.post("/beckon/v1/segments/preview", #"{"filter": {"push_opened": {"campaign_id": "\#(id)", "within_last": {"days": 7}}}}"#)
            #expect(opened.status == .ok && opened.json["size"] == .int(2) && opened.json["sample"] == .array([.string("u1"), .string("u2")]), "\(opened.text)")
            let provisional = try await api.post("/beckon/v1/segments/preview", #"{"filter": {"push": {"platform": "ios", "authorization": "provisional"}}}"#)
            #expect(provisional.json["sample"] == .array([.string("u2")]), "provisional tokens are segmentable: \(provisional.text)")
        }
    }

    @Test("retries keep the apns-id, ExpiredProviderToken re-mints once, a configuration error pauses APNs until the key is stored again", arguments: TestDatabases.all())
    func apnsRetriesAndPause(kind: TestDatabaseKind) async throws {
        try await Self.withAPNs(kind) { api, apns, port in
            let throttled = "a429" + String(repeating: "1", count: 60)
            try await Self.register(api, "t1", token: throttled, name: "Retry")
            try await Self.register(api, "t2", token: Self.authorized, name: "Fresh")
            apns.expireFirstToken()
            let id = try await Self.campaign(api)
            try await Self.trigger(api, id, ["t1", "t2"])
            try await api.campaigns.pipeline.drain()
            #expect(apns.accepted.map(\.token) == [Self.authorized], "the throttled token waits for its Retry-After")
            #expect(Set(apns.all.map(\.jwt)).count == 2, "re-minted once after ExpiredProviderToken")
            api.clock.advance(by: 31)
            try await api.campaigns.pipeline.drain()
            // (The ExpiredProviderToken answer may have gone to either token first.)
            let tries = apns.all.filter { $0.token == throttled && $0.status != 403 }
            #expect(tries.count == 2 && tries.last?.status == 200, "\(tries.map(\.status))")
            #expect(Set(tries.map(\.apnsID)).count == 1, "the retry reuses the apns-id")

            // A refused provider token pauses APNs; messages wait and are sent after the key is stored again.
            apns.refuseAll(true)
            try await Self.register(api, "p1", token: "ee55" + String(repeating: "2", count: 60), name: "Paused")
            try await Self.trigger(api, id, ["p1"])
            try await api.campaigns.pipeline.drain()
            let paused = try await api.get("/beckon/v1/push")
            #expect(paused.json["push"]?["apns"]?["paused"] == .bool(true))
            #expect(paused.json["push"]?["apns"]?["paused_reason"]?.stringValue?.contains("InvalidProviderToken") == true, "\(paused.text)")
            let refusedCalls = apns.all.count
            api.clock.advance(by: 61)
            try await api.campaigns.pipeline.drain()
            #expect(apns.all.count == refusedCalls, "a paused provider is not called")
            apns.refuseAll(false)
            try await Self.configureAPNs(api, port: port)
            api.clock.advance(by: 61)
            try await api.campaigns.pipeline.drain()
            #expect(apns.accepted.contains { $0.token.hasPrefix("ee55") }, "sent once the key was stored again")
            let resumed = try await api.get("/beckon/v1/push")
            #expect(resumed.json["push"]?["apns"]?["paused"] == .bool(false))
            #expect(try await api.campaigns.queue.engagementCounts(campaignID: id)["failure"] == nil, "nothing failed while paused")
        }
    }

    @Test("a push silent on iOS reaches denied iOS tokens as a background push, not blocked ones", arguments: TestDatabases.all())
    func silentReachesDenied(kind: TestDatabaseKind) async throws {
        try await Self.withAPNs(kind) { api, apns, _ in
            try await Self.register(api, "s1", token: Self.denied, authorization: "denied", name: "Denied")
            try await Self.register(api, "s2", token: Self.authorized, authorization: "blocked", name: "Blocked")
            try await Self.register(api, "s3", token: Self.provisional, name: "Allowed")
            // Silent on iOS only (its override sets content_available, nothing to show there); Android has a title.
            let id = try await CampaignTests.create(api, #"""
                {"name": "Refresh", "delivery": {"type": "api_triggered"},
                 "messages": {"push": {"data": {"refresh": "catalog"}, "platforms": ["ios", "android"],
                                       "ios": {"content_available": true}, "android": {"title": "New arrivals"}}}}
                """#)
            try await Self.trigger(api, id, ["s1", "s2", "s3"])
            try await api.campaigns.pipeline.drain()
            #expect(Set(apns.accepted.map(\.token)) == [Self.denied, Self.provisional], "\(apns.all.map(\.token))")
            let silent = try #require(apns.accepted.first { $0.token == Self.denied })
            #expect(silent.headers["apns-push-type"] == "background" && silent.headers["apns-priority"] == "5")
            #expect(silent.payload["aps"]?["content-available"] == .int(1) && silent.payload["aps"]?["alert"] == nil)
            #expect(silent.payload["refresh"] == .string("catalog"))
        }
    }

    @Test("bad push input: PEM, key type, ids, service account, VAPID subject, subscriptions, platforms, payload size", arguments: TestDatabases.all())
    func badInput(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            func apns(_ overrides: [String: JSONValue]) -> String {
                var body: [String: JSONValue] = [
                    "team_id": .string("TEAM123456"), "key_id": .string("KEY1234567"), "private_key": .string(Self.key.pemRepresentation),
                    "bundle_id": .string("com.example.shop"),
                ]
                for (key, value) in overrides { body[key] = value }
                return JSONValue.object(body).serialized()
            }
            let notPEM = try await api.put("/beckon/v1/push/apns", apns(["private_key": .string("hello")]))
            #expect(notPEM.status == .badRequest && notPEM.text.contains("private_key: is not a PEM"), "\(notPEM.text)")
            let rsa = try await api.put("/beckon/v1/push/apns", apns(["private_key": .string(Self.rsaPEM)]))
            #expect(rsa.text.contains("private_key: is an RSA key; expected a P-256"), "\(rsa.text)")
            let shortID = try await api.put("/beckon/v1/push/apns", apns(["key_id": .string("ABC")]))
            #expect(shortID.text.contains("key_id: must be the 10-character identifier"), "\(shortID.text)")
            let environment = try await api.put("/beckon/v1/push/apns", apns(["environment": .string("prod")]))
            #expect(environment.text.contains("environment: must be production or sandbox"))
            #expect(try await api.get("/beckon/v1/push").json["push"]?["apns"]?["configured"] == .bool(false), "nothing half-stored")

            let noKey = try await api.put("/beckon/v1/push/fcm", #"{"service_account": {"project_id": "shop", "client_email": "a@b.iam.gserviceaccount.com", "token_uri": "https://oauth2.googleapis.com/token"}}"#)
            #expect(noKey.text.contains("service_account.private_key: is required"), "\(noKey.text)")
            let noURI = try await api.put("/beckon/v1/push/fcm", JSONValue.object(["service_account": .object([
                "project_id": .string("shop"), "client_email": .string("a@b.iam.gserviceaccount.com"), "private_key": .string(Self.rsaPEM),
            ])]).serialized())
            #expect(noURI.text.contains("service_account.token_uri: is required"), "\(noURI.text)")

            let noPair = try await api.put("/beckon/v1/push/web", #"{"subject": "mailto:ops@example.com"}"#)
            #expect(noPair.status == .badRequest)
            let created = try await api.post("/beckon/v1/push/web/vapid", "{}")
            #expect(created.status == .created)
            let publicKey = try #require(created.json["vapid_public_key"]?.stringValue)
            #expect(Base64URL.decode(publicKey)?.count == 65 && Base64URL.decode(publicKey)?.first == 4)
            let again = try await api.post("/beckon/v1/push/web/vapid", "{}")
            #expect(again.status == .ok && again.json["vapid_public_key"]?.stringValue == publicKey, "created once")
            let subject = try await api.put("/beckon/v1/push/web", #"{"subject": "ops@example.com"}"#)
            #expect(subject.text.contains("subject: must be a mailto: address"), "\(subject.text)")
            let good = try await api.put("/beckon/v1/push/web", #"{"subject": "mailto:ops@example.com"}"#)
            #expect(good.json["subject"] == .string("mailto:ops@example.com"))
            let rotated = try await api.post("/beckon/v1/push/web/vapid", #"{"rotate": true}"#)
            #expect(rotated.json["vapid_public_key"]?.stringValue != publicKey && rotated.json["subject"] == .string("mailto:ops@example.com"))

            let shortKey = try await api.post("/sdk/v1/data", #"""
                {"app_id": "\#(api.workspace.appID)", "device_id": "w1", "platform": "web",
                 "push_token": {"token": "https://push.example/sub/1", "web_push_keys": {"p256dh": "AAAA", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}}
                """#, key: "")
            #expect(shortKey.text.contains("web_push_keys.p256dh' must be the subscription's 65-byte"), "\(shortKey.text)")
            let plainHTTP = try await api.post("/sdk/v1/data", #"""
                {"app_id": "\#(api.workspace.appID)", "device_id": "w1", "platform": "web",
                 "push_token": {"token": "http://push.example/sub/1", "web_push_keys": {"p256dh": "AAAA", "auth": "AAAA"}}}
                """#, key: "")
            #expect(plainHTTP.text.contains("must be its https endpoint URL"), "\(plainHTTP.text)")

            let platform = try await api.post("/beckon/v1/campaigns", #"{"name": "x", "delivery": {"type": "api_triggered"}, "messages": {"push": {"title": "t", "platforms": ["ios", "blackberry"]}}}"#)
            #expect(platform.status == .badRequest && platform.text.contains("push.platforms[1]: unknown platform"), "\(platform.text)")
            let big = String(repeating: "가", count: 1_500)
            let id = try await CampaignTests.create(api, #"{"name": "Big", "delivery": {"type": "api_triggered"}, "messages": {"push": {"title": "hi", "body": "\#(big)", "platforms": ["ios"]}}}"#)
            try await Self.register(api, "big1", token: Self.authorized, name: "Big")
            let rendered = try await api.post("/beckon/v1/campaigns/\(id)/preview", #"{"external_id": "big1"}"#)
            #expect(rendered.status.code == 422 && rendered.text.contains("APNs allows at most 4096"), "\(rendered.text)")
            // A NUL is refused at the door (PostgreSQL text cannot hold it, no provider takes it) ...
            let refused = try await api.post("/users/track", #"{"attributes": [{"external_id": "nul1", "first_name": "A\u0000B"}]}"#)
            #expect(refused.status == .badRequest && refused.text.contains("'attributes[0].first_name' contains a NUL character"), "\(refused.text)")
            // ... and text that was decoded from bad bytes upstream (U+FFFD) is a render error naming the field.
            let stored = try await api.post("/users/track", #"{"attributes": [{"external_id": "nul1", "first_name": "A\uFFFDB"}]}"#)
            #expect(stored.status == .created, "\(stored.text)")
            let named = try await CampaignTests.create(api, #"{"name": "Nul", "delivery": {"type": "api_triggered"}, "messages": {"push": {"title": "{{${first_name}}}", "platforms": ["ios"]}}}"#)
            let nul = try await api.post("/beckon/v1/campaigns/\(named)/preview", #"{"external_id": "nul1"}"#)
            #expect(nul.status.code == 422 && nul.text.contains("push title rendered text that is not valid UTF-8"), "\(nul.text)")
        }
    }

    /// An RSA key where P-256 is needed (and the FCM service account's key in these tests).
    static let rsaPEM: String = {
        (try? _RSA.Signing.PrivateKey(keySize: .bits2048).pemRepresentation) ?? ""
    }()
}
