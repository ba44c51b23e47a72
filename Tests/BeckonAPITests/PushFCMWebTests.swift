import BeckonAPI
import BeckonChannels
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

/// A local FCM stand-in: an OAuth 2.0 token endpoint that verifies the service account's RS256
/// assertion (iss, scope, aud = token_uri, exp) and issues access tokens, and the HTTP v1
/// `messages:send` route that accepts only those tokens, checks `data` is strings only and answers
/// by token: `unreg…` 404 UNREGISTERED, `quota…` 429 QUOTA_EXCEEDED with Retry-After once.
final class FCMStandIn: Sendable {
    struct Push: Sendable {
        let token: String
        let message: JSONValue
        let status: Int
    }

    let publicKey: _RSA.Signing.PublicKey
    let project: String
    private let state = Mutex<(issued: [String], pushes: [Push], throttled: Set<String>, tokenURI: String)>(([], [], [], ""))

    init(publicKey: _RSA.Signing.PublicKey, project: String) {
        self.publicKey = publicKey
        self.project = project
    }

    var pushes: [Push] { state.withLock { $0.pushes } }
    var issuedTokens: [String] { state.withLock { $0.issued } }
    func expect(tokenURI: String) { state.withLock { $0.tokenURI = tokenURI } }

    func register(on router: Router<BasicRequestContext>) {
        router.post("/token") { request, _ -> Response in
            let form = String(buffer: try await request.body.collect(upTo: 1 << 16))
            var fields: [String: String] = [:]
            for pair in form.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? "" }
                if parts.count == 2 { fields[parts[0]] = parts[1] }
            }
            func refuse(_ error: String) -> Response {
                Response(status: .badRequest, body: .init(byteBuffer: ByteBuffer(string: #"{"error": "invalid_grant", "error_description": "\#(error)"}"#)))
            }
            guard fields["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer", let assertion = fields["assertion"] else { return refuse("grant_type") }
            guard let verified = try? JSONWebToken.verifyRS256(assertion, key: self.publicKey), let claims = try? JSONValue.parse(verified.claims),
                try JSONValue.parse(verified.header)["alg"] == .string("RS256")
            else { return refuse("Invalid JWT Signature.") }
            let expected = self.state.withLock { $0.tokenURI }
            guard claims["iss"]?.stringValue == "beckon@shop.iam.gserviceaccount.com", claims["aud"]?.stringValue == expected,
                claims["scope"]?.stringValue == "https://www.googleapis.com/auth/firebase.messaging",
                case .int(let iat)? = claims["iat"], case .int(let exp)? = claims["exp"], exp > iat, exp - iat <= 3_600
            else { return refuse("claims: \(String(decoding: verified.claims, as: UTF8.self))") }
            let token = self.state.withLock { state -> String in
                state.issued.append("ya29.test-\(state.issued.count + 1)")
                return state.issued.last!
            }
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: #"{"access_token": "\#(token)", "expires_in": 3599, "token_type": "Bearer"}"#)))
        }
        router.post("/v1/projects/{project}/messages:send") { request, context -> Response in
            let bearer = String((request.headers[.authorization] ?? "").dropFirst("Bearer ".count))
            let body = try JSONValue.parse(Array(String(buffer: try await request.body.collect(upTo: 1 << 16)).utf8))
            let message = body["message"] ?? .null
            let token = message["token"]?.stringValue ?? ""
            func answer(_ status: Int, _ code: String?, grpc: String, retryAfter: String? = nil) -> Response {
                self.state.withLock { $0.pushes.append(Push(token: token, message: message, status: status)) }
                var headers = HTTPFields()
                if let retryAfter { headers[HTTPField.Name("Retry-After")!] = retryAfter }
                let details = code.map { #", "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "\#($0)"}]"# } ?? ""
                let text = status == 200
                    ? #"{"name": "projects/\#(self.project)/messages/\#(UUID().uuidString)"}"#
                    : #"{"error": {"code": \#(status), "message": "\#(grpc)", "status": "\#(grpc)"\#(details)}}"#
                return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
            }
            guard context.parameters.get("project") == self.project else {
                return answer(404, nil, grpc: "NOT_FOUND")
            }
            guard self.state.withLock({ $0.issued.contains(bearer) }) else { return answer(401, nil, grpc: "UNAUTHENTICATED") }
            guard let data = message["data"]?.objectValue, data.values.allSatisfy({ $0.stringValue != nil }), data["beckon_message_id"] != nil else {
                return answer(400, nil, grpc: "INVALID_ARGUMENT")
            }
            if token.hasPrefix("unreg") { return answer(404, "UNREGISTERED", grpc: "NOT_FOUND") }
            if token.hasPrefix("quota"), self.state.withLock({ $0.throttled.insert(token).inserted }) {
                return answer(429, "QUOTA_EXCEEDED", grpc: "RESOURCE_EXHAUSTED", retryAfter: "20")
            }
            return answer(200, nil, grpc: "OK")
        }
    }
}

/// A local Web Push service (RFC 8030): verifies the VAPID header (RFC 8292: ES256 over the
/// workspace's public key, `aud` the push service's origin, `exp` within 24 hours, `sub` set),
/// decrypts the `aes128gcm` body with the subscription's private key (RFC 8291), and answers 201,
/// or 410 Gone for subscriptions named `gone…`.
final class WebPushReceiver: Sendable {
    struct Push: Sendable {
        let subscription: String
        let payload: JSONValue
        let headers: [String: String]
        let status: Int
    }

    /// A browser's subscription: its key pair and auth secret.
    struct Subscription: Sendable {
        let key = P256.KeyAgreement.PrivateKey()
        let auth: [UInt8] = (0..<16).map { _ in UInt8.random(in: 0...255) }
        var p256dh: String { Base64URL.encode(key.publicKey.x963Representation) }
    }

    let subscriptions: [String: Subscription]
    private let state = Mutex<(pushes: [Push], origin: String, vapidKey: String)>(([], "", ""))

    init(names: [String]) {
        subscriptions = Dictionary(uniqueKeysWithValues: names.map { ($0, Subscription()) })
    }

    var pushes: [Push] { state.withLock { $0.pushes } }
    func expect(origin: String, vapidKey: String) { state.withLock { $0.origin = origin; $0.vapidKey = vapidKey } }

    func register(on router: Router<BasicRequestContext>) {
        router.post("/wp/{id}") { request, context -> Response in
            let id = context.parameters.get("id") ?? ""
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            let body = try await request.body.collect(upTo: 1 << 16)
            func answer(_ status: HTTPResponse.Status, _ payload: JSONValue = .null) -> Response {
                self.state.withLock { $0.pushes.append(Push(subscription: id, payload: payload, headers: headers, status: Int(status.code))) }
                return Response(status: status)
            }
            let (origin, vapidKey) = self.state.withLock { ($0.origin, $0.vapidKey) }
            // Authorization: vapid t=<jwt>, k=<base64url public key>
            let authorization = headers["authorization"] ?? ""
            guard authorization.hasPrefix("vapid ") else { return answer(.unauthorized) }
            var parameters: [String: String] = [:]
            for part in authorization.dropFirst("vapid ".count).split(separator: ",") {
                let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1).map(String.init)
                if pair.count == 2 { parameters[pair[0]] = pair[1] }
            }
            guard parameters["k"] == vapidKey, let keyBytes = Base64URL.decode(vapidKey),
                let publicKey = try? P256.Signing.PublicKey(x963Representation: keyBytes),
                let verified = try? JSONWebToken.verifyES256(parameters["t"] ?? "", key: publicKey),
                let claims = try? JSONValue.parse(verified.claims),
                claims["aud"]?.stringValue == origin, claims["sub"]?.stringValue == "mailto:ops@example.com",
                case .int(let exp)? = claims["exp"], exp > Int64(APIHarness.now.timeIntervalSince1970), exp <= Int64(APIHarness.now.timeIntervalSince1970) + 86_400
            else { return answer(.forbidden) }
            guard headers["content-encoding"] == "aes128gcm", headers["ttl"] != nil else { return answer(.badRequest) }
            guard let subscription = self.subscriptions[id] else { return answer(.notFound) }
            guard let plaintext = try? WebPushEncryption.decrypt(Array(buffer: body), userAgentPrivateKey: subscription.key, authSecret: subscription.auth),
                let payload = try? JSONValue.parse(plaintext)
            else { return answer(.badRequest) }
            if id.hasPrefix("gone") { return answer(.gone, payload) }
            return answer(.created, payload)
        }
    }
}

@Suite("Push over FCM and Web Push")
struct PushFCMWebTests {
    static let serviceAccountKey = try! _RSA.Signing.PrivateKey(keySize: .bits2048)

    static func registerAndroid(_ api: APIHarness, _ externalID: String, token: String) async throws {
        let reply = try await api.post("/sdk/v1/data", #"""
            {"app_id": "\#(api.workspace.appID)", "device_id": "and-\#(externalID)", "external_id": "\#(externalID)", "platform": "android",
             "attributes": {"first_name": "\#(externalID)"}, "push_token": {"token": "\#(token)"}}
            """#, key: "")
        #expect(reply.status == .created || reply.status == .ok, "\(reply.text)")
    }

    static func registerWeb(_ api: APIHarness, _ externalID: String, endpoint: String, _ subscription: WebPushReceiver.Subscription) async throws {
        let reply = try await api.post("/sdk/v1/data", #"""
            {"app_id": "\#(api.workspace.appID)", "device_id": "web-\#(externalID)", "external_id": "\#(externalID)", "platform": "web",
             "attributes": {"first_name": "\#(externalID)"},
             "push_token": {"token": "\#(endpoint)", "web_push_keys": {"p256dh": "\#(subscription.p256dh)", "auth": "\#(Base64URL.encode(subscription.auth))"}}}
            """#, key: "")
        #expect(reply.status == .created || reply.status == .ok, "\(reply.text)")
    }

    @Test("one campaign reaches iOS (authorized, provisional), Android over FCM and browsers over Web Push; dead tokens retire; retries honour Retry-After", arguments: TestDatabases.all())
    func allPlatforms(kind: TestDatabaseKind) async throws {
        try await PushTests.withAPNs(kind) { api, apns, _ in
            let fcm = FCMStandIn(publicKey: Self.serviceAccountKey.publicKey, project: "shop-app")
            let web = WebPushReceiver(names: ["w1", "gone1"])
            let router = Router()
            fcm.register(on: router)
            web.register(on: router)
            try await LocalTLSServer.run(router, authority: PushTests.authority) { port in
                let base = "https://127.0.0.1:\(port)"
                fcm.expect(tokenURI: base + "/token")
                let stored = try await api.put("/beckon/v1/push/fcm", JSONValue.object([
                    "service_account": .object([
                        "type": .string("service_account"), "project_id": .string("shop-app"), "private_key_id": .string("k1"),
                        "private_key": .string(Self.serviceAccountKey.pemRepresentation),
                        "client_email": .string("beckon@shop.iam.gserviceaccount.com"), "token_uri": .string(base + "/token"),
                    ]),
                    "endpoint": .string(base),
                ]).serialized())
                #expect(stored.status == .ok, "\(stored.text)")
                #expect(!stored.text.contains("PRIVATE KEY"))
                let vapid = try await api.post("/beckon/v1/push/web/vapid", "{}")
                let vapidKey = try #require(vapid.json["vapid_public_key"]?.stringValue)
                #expect(try await api.put("/beckon/v1/push/web", #"{"subject": "mailto:ops@example.com"}"#).status == .ok)
                web.expect(origin: base, vapidKey: vapidKey)

                try await PushTests.register(api, "i1", token: PushTests.authorized, name: "Ios")
                try await PushTests.register(api, "i2", token: PushTests.provisional, authorization: "provisional", name: "Quiet")
                try await Self.registerAndroid(api, "a1", token: "fcm-token-a1")
                try await Self.registerAndroid(api, "a2", token: "unreg-token-a2")
                try await Self.registerAndroid(api, "a3", token: "quota-token-a3")
                try await Self.registerWeb(api, "b1", endpoint: base + "/wp/w1", web.subscriptions["w1"]!)
                try await Self.registerWeb(api, "b2", endpoint: base + "/wp/gone1", web.subscriptions["gone1"]!)

                let id = try await CampaignTests.create(api, #"""
                    {"name": "Best seller", "delivery": {"type": "api_triggered"},
                     "messages": {"push": {"title": "{{${first_name}}}, back in stock", "body": "Only a few left",
                                           "deep_link": "https://shop.example/p/1", "data": {"sku": "A-1", "count": "{{api_trigger_properties.${n}}}"},
                                           "ttl_seconds": 3600, "collapse_key": "stock",
                                           "android": {"channel_id": "deals"}, "web": {"icon": "https://shop.example/icon.png", "require_interaction": true}}}}
                    """#)
                let recipients = ["i1", "i2", "a1", "a2", "a3", "b1", "b2"].map { #"{"external_user_id": "\#($0)"}"# }.joined(separator: ",")
                let sent = try await api.post("/campaigns/trigger/send", #"{"campaign_id": "\#(id)", "trigger_properties": {"n": 3}, "recipients": [\#(recipients)]}"#)
                #expect(sent.status == .created, "\(sent.text)")
                try await api.campaigns.pipeline.drain()

                // iOS: both tokens; provisional goes out as a normal alert (iOS shows it quietly).
                #expect(Set(apns.accepted.map(\.token)) == [PushTests.authorized, PushTests.provisional])

                // Android: strings-only data, the notification, the channel, the delivery id.
                let android = try #require(fcm.pushes.first { $0.token == "fcm-token-a1" && $0.status == 200 })
                #expect(android.message["notification"]?["title"] == .string("a1, back in stock"))
                #expect(android.message["data"]?["count"] == .string("3") && android.message["data"]?["sku"] == .string("A-1"))
                #expect(android.message["data"]?["campaign_id"] == .string(id))
                #expect(android.message["android"]?["notification"]?["channel_id"] == .string("deals"))
                #expect(android.message["android"]?["ttl"] == .string("3600s") && android.message["android"]?["collapse_key"] == .string("stock"))
                #expect(android.message["data"]?["beckon_message_id"]?.stringValue?.hasPrefix("msg_") == true)
                #expect(fcm.issuedTokens.count == 1, "one access token for every FCM push")
                #expect(fcm.pushes.contains { $0.token == "unreg-token-a2" && $0.status == 404 })
                #expect(fcm.pushes.filter { $0.token == "quota-token-a3" }.map(\.status) == [429], "QUOTA_EXCEEDED waits for its Retry-After")

                // Web: decrypted payload is what the service worker shows; TTL, Urgency and Topic headers.
                let browser = try #require(web.pushes.first { $0.subscription == "w1" })
                #expect(browser.status == 201)
                #expect(browser.payload["title"] == .string("b1, back in stock") && browser.payload["body"] == .string("Only a few left"))
                #expect(browser.payload["url"] == .string("https://shop.example/p/1") && browser.payload["icon"] == .string("https://shop.example/icon.png"))
                #expect(browser.payload["data"]?["count"] == .string("3") && browser.payload["campaign_id"] == .string(id))
                #expect(browser.payload["beckon_message_id"]?.stringValue?.hasPrefix("msg_") == true)
                #expect(browser.headers["ttl"] == "3600" && browser.headers["urgency"] == "high" && browser.headers["topic"] == "stock")
                #expect(web.pushes.contains { $0.subscription == "gone1" && $0.status == 410 })

                let counts = try await api.campaigns.queue.engagementCounts(campaignID: id)
                #expect(counts["delivery"] == 4 && counts["bounce"] == 2, "\(counts)")

                // QUOTA_EXCEEDED: sent after its Retry-After (20 s), not before.
                api.clock.advance(by: 10)
                try await api.campaigns.pipeline.drain()
                #expect(fcm.pushes.filter { $0.token == "quota-token-a3" }.count == 1)
                api.clock.advance(by: 11)
                try await api.campaigns.pipeline.drain()
                #expect(fcm.pushes.filter { $0.token == "quota-token-a3" }.map(\.status) == [429, 200])
                let first = fcm.pushes.first { $0.token == "quota-token-a3" }?.message["data"]?["beckon_message_id"]
                #expect(fcm.pushes.last { $0.token == "quota-token-a3" }?.message["data"]?["beckon_message_id"] == first, "the retry keeps its id")

                // The dead Android token and the gone subscription are retired: a second send skips those users.
                let before = (fcm.pushes.count, web.pushes.count)
                let again = try await api.post("/campaigns/trigger/send", #"{"campaign_id": "\#(id)", "trigger_properties": {"n": 2}, "recipients": [{"external_user_id": "a2"}, {"external_user_id": "b2"}, {"external_user_id": "b1"}]}"#)
                #expect(again.status == .created)
                try await api.campaigns.pipeline.drain()
                #expect(fcm.pushes.count == before.0, "the unregistered token is not called again")
                #expect(web.pushes.count == before.1 + 1 && web.pushes.last?.subscription == "w1")

                // The web SDK reports the open with the payload's id; data_series counts it per platform.
                let deliveryID = try #require(browser.payload["beckon_message_id"]?.stringValue)
                let open = try await api.post("/sdk/v1/data", #"""
                    {"app_id": "\#(api.workspace.appID)", "device_id": "web-b1", "external_id": "b1", "platform": "web",
                     "push_opens": [{"message_id": "\#(deliveryID)"}]}
                    """#, key: "")
                #expect(open.status == .created || open.status == .ok, "\(open.text)")
                #expect(try await api.campaigns.queue.engagementCounts(campaignID: id)["open"] == 1)

                // Braze's /messages/send push objects, field names as Braze's.
                let (apnsBefore, fcmBefore, webBefore) = (apns.all.count, fcm.pushes.count, web.pushes.count)
                let braze = try await api.post("/messages/send", #"""
                    {"external_user_ids": ["i1", "a1", "b1"], "campaign_id": "\#(id)",
                     "messages": {
                       "apple_push": {"alert": {"title": "Flash sale", "body": "{{${first_name}}}, 2 hours only"}, "badge": 3, "sound": "default",
                                      "extra": {"sku": "A-2", "count": 2}, "custom_uri": "shop://sale", "collapse_id": "sale", "apns_priority": 5,
                                      "notification_group_thread_id": "sales", "use_webview": true, "message_variation_id": "v1"},
                       "android_push": {"alert": "2 hours only", "title": "Flash sale", "extra": {"sku": "A-2"}, "notification_channel_id": "deals",
                                        "priority": 1, "android_priority": "normal", "time_to_live": 7200, "accent_color": 16711680},
                       "web_push": {"alert": "2 hours only", "title": "Flash sale", "custom_uri": "https://shop.example/sale",
                                    "image_url": "https://shop.example/i.png", "require_interaction": true,
                                    "buttons": [{"text": "Open", "action": "URI", "uri": "https://shop.example/sale"}]}}}
                    """#)
                #expect(braze.status == .created, "\(braze.text)")
                try await api.campaigns.pipeline.drain()
                let ios = try #require(apns.all.dropFirst(apnsBefore).first { $0.token == PushTests.authorized })
                #expect(ios.payload["aps"]?["alert"]?["title"] == .string("Flash sale") && ios.payload["aps"]?["alert"]?["body"] == .string("Ios, 2 hours only"))
                #expect(ios.payload["aps"]?["badge"] == .int(3) && ios.payload["aps"]?["thread-id"] == .string("sales"))
                #expect(ios.payload["sku"] == .string("A-2") && ios.payload["count"] == .string("2") && ios.payload["deep_link"] == .string("shop://sale"))
                #expect(ios.headers["apns-priority"] == "5" && ios.headers["apns-collapse-id"] == "sale")
                let androidBraze = try #require(fcm.pushes.dropFirst(fcmBefore).first { $0.token == "fcm-token-a1" })
                #expect(androidBraze.message["notification"]?["body"] == .string("2 hours only"))
                #expect(androidBraze.message["android"]?["priority"] == .string("NORMAL") && androidBraze.message["android"]?["ttl"] == .string("7200s"))
                #expect(androidBraze.message["android"]?["notification"]?["notification_priority"] == .string("PRIORITY_HIGH"))
                #expect(androidBraze.message["android"]?["notification"]?["color"] == .string("#ff0000"))
                let webBraze = try #require(web.pushes.dropFirst(webBefore).first)
                #expect(webBraze.payload["url"] == .string("https://shop.example/sale") && webBraze.payload["icon"] == .string("https://shop.example/i.png"))
                #expect(webBraze.payload["actions"] == .array([.object(["action": .string("uri"), "title": .string("Open"), "url": .string("https://shop.example/sale")])]))
                #expect(webBraze.payload["require_interaction"] == .bool(true))

                let badExtra = try await api.post("/messages/send", #"{"external_user_ids": ["i1"], "messages": {"apple_push": {"alert": "x", "extra": "nope"}, "android_push": {"alert": "x"}, "kindle_push": {}}}"#)
                #expect(badExtra.status == .badRequest)
                #expect(badExtra.text.contains("messages.apple_push.extra: Invalid Extra Push Payload"), "\(badExtra.text)")
                #expect(badExtra.text.contains("messages.android_push.title: is required") && badExtra.text.contains("messages.kindle_push"), "\(badExtra.text)")
            }
        }
    }
}
