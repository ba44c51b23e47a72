import BeckonAPI
import BeckonCore
import BeckonMessaging
import BeckonStorage
import BeckonTestSupport
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Synchronization
import Testing

/// A local Solapi stand-in (`POST /messages/v4/send`): verifies the HMAC-SHA256 `Authorization`
/// with the test's secret, records each message, answers `statusCode` 2000, or 401 while `refuse`.
final class SolapiStandIn: Sendable {
    static let apiKey = "NCSTESTKEY0001"
    static let apiSecret = "TESTSECRET0123456789ABCDEFGHIJKL"
    private let state = Mutex<(messages: [JSONValue], refuse: Bool, badSignatures: Int)>(([], false, 0))

    var messages: [JSONValue] { state.withLock { $0.messages } }
    var badSignatures: Int { state.withLock { $0.badSignatures } }
    func refuse(_ flag: Bool) { state.withLock { $0.refuse = flag } }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/messages/v4/send") { request, _ -> Response in
            let body = try JSONValue.parse(Array(String(buffer: try await request.body.collect(upTo: 1 << 16)).utf8))
            let authorization = request.headers[.authorization] ?? ""
            var fields: [String: String] = [:]
            for part in authorization.dropFirst("HMAC-SHA256 ".count).split(separator: ",") {
                let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1).map(String.init)
                if pair.count == 2 { fields[pair[0]] = pair[1] }
            }
            let expected = HMAC<SHA256>.authenticationCode(
                for: Data(((fields["date"] ?? "") + (fields["salt"] ?? "")).utf8), using: SymmetricKey(data: Data(Self.apiSecret.utf8))
            ).map { String(format: "%02x", $0) }.joined()
            guard authorization.hasPrefix("HMAC-SHA256 "), fields["apiKey"] == Self.apiKey, fields["signature"] == expected,
                (fields["salt"]?.count ?? 0) >= 12, fields["date"].flatMap(BrazeTime.parse) != nil
            else {
                self.state.withLock { $0.badSignatures += 1 }
                return Response(status: .unauthorized, body: .init(byteBuffer: ByteBuffer(string: #"{"errorCode": "SignatureDoesNotMatch", "errorMessage": "bad signature"}"#)))
            }
            if self.state.withLock({ $0.refuse }) {
                return Response(status: .forbidden, body: .init(byteBuffer: ByteBuffer(string: #"{"errorCode": "Forbidden", "errorMessage": "API key disabled"}"#)))
            }
            let message = body["message"] ?? .null
            let count = self.state.withLock { state in
                state.messages.append(message)
                return state.messages.count
            }
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: #"{"statusCode": "2000", "statusMessage": "정상 접수", "messageId": "M\#(count)"}"#)))
        }
        return router
    }
}

@Suite("SMS and LMS through vendors")
struct SMSTests {
    static func track(_ api: APIHarness, _ users: String) async throws {
        let reply = try await api.post("/users/track", #"{"attributes": [\#(users)]}"#)
        #expect(reply.status == .created, "\(reply.text)")
    }

    @Test("Solapi: 45 Hangul go as SMS, 46 as LMS; advertising adds the notice and waits for 08:00; no phone, a landline, an emoji are not sent; 403 pauses SMS", arguments: TestDatabases.all())
    func solapi(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind, connectedContent: try CampaignTests.connectedContent()) { api in
            let solapi = SolapiStandIn()
            try await LocalHTTPServer.run(solapi.router()) { port in
                let stored = try await api.put("/beckon/v1/sms/vendor", #"""
                    {"type": "solapi", "api_key": "\#(SolapiStandIn.apiKey)", "api_secret": "\#(SolapiStandIn.apiSecret)",
                     "sender": "02-1234-5678", "endpoint": "http://127.0.0.1:\#(port)"}
                    """#)
                #expect(stored.status == .ok, "\(stored.text)")
                #expect(!stored.text.contains(SolapiStandIn.apiSecret), "the secret is never returned")
                #expect(stored.json["vendor"]?["sender"] == .string("0212345678"))
                let h45 = String(repeating: "가", count: 45)
                let h46 = String(repeating: "가", count: 46)
                try await Self.track(api, #"""
                    {"external_id": "s45", "phone": "010-1111-2222", "text": "\#(h45)"},
                    {"external_id": "s46", "phone": "+82 10 3333 4444", "text": "\#(h46)"},
                    {"external_id": "nophone", "text": "안녕"},
                    {"external_id": "landline", "phone": "02-987-6543", "text": "안녕"},
                    {"external_id": "emoji", "phone": "010-5555-6666", "text": "세일 😀"}
                    """#)
                let id = try await CampaignTests.create(api, #"{"name": "Texts", "delivery": {"type": "api_triggered"}, "messages": {"sms": {"body": "{{custom_attribute.${text}}}"}}}"#)
                let all = ["s45", "s46", "nophone", "landline", "emoji"].map { #"{"external_user_id": "\#($0)"}"# }.joined(separator: ",")
                #expect(try await api.post("/campaigns/trigger/send", #"{"campaign_id": "\#(id)", "recipients": [\#(all)]}"#).status == .created)
                try await api.campaigns.pipeline.drain()
                #expect(solapi.badSignatures == 0)
                let sent = Dictionary(solapi.messages.map { ($0["to"]?.stringValue ?? "", $0) }) { first, _ in first }
                #expect(Set(sent.keys) == ["01011112222", "01033334444"], "\(solapi.messages)")
                #expect(sent["01011112222"]?["type"] == .string("SMS") && sent["01011112222"]?["text"] == .string(h45))
                #expect(sent["01033334444"]?["type"] == .string("LMS"))
                #expect(sent["01011112222"]?["from"] == .string("0212345678") && sent["01011112222"]?["autoTypeDetect"] == .bool(false))
                let counts = try await api.campaigns.queue.engagementCounts(campaignID: id)
                #expect(counts["delivery"] == 2 && counts["failure"] == 2, "the landline and the emoji fail, the user without a phone is not reached: \(counts)")
                let failures = try await api.get("/beckon/v1/activity_log?campaign_id=\(id)")
                #expect(failures.text.contains("not a Korean mobile number") && failures.text.contains("U+1F600"), "\(failures.text)")

                // Advertising: "(광고) " first and the opt-out line last, counted in the limit; held at night.
                #expect(try await api.put("/beckon/v1/delivery_settings", #"{"advertising": {"opt_out_text": "무료거부 080-123-4567"}}"#).status == .ok)
                let ad = try await CampaignTests.create(api, #"{"name": "Ad", "advertising": true, "delivery": {"type": "api_triggered"}, "messages": {"sms": {"body": "여름 세일 시작"}}}"#)
                #expect(try await api.post("/campaigns/trigger/send", #"{"campaign_id": "\#(ad)", "recipients": [{"external_user_id": "s45"}]}"#).status == .created)
                try await api.campaigns.pipeline.drain()
                #expect(solapi.messages.count == 2, "00:00 in Seoul: advertising waits")
                api.clock.advance(by: 8 * 3_600)
                try await api.campaigns.pipeline.drain()
                #expect(solapi.messages.last?["text"] == .string("(광고) 여름 세일 시작\n무료거부 080-123-4567"))
                #expect(solapi.messages.last?["type"] == .string("SMS"), "43 bytes with the notice")

                // A refused key pauses SMS; messages wait and go once the vendor is stored again.
                solapi.refuse(true)
                #expect(try await api.post("/campaigns/trigger/send", #"{"campaign_id": "\#(id)", "recipients": [{"external_user_id": "s46"}]}"#).status == .created)
                try await api.campaigns.pipeline.drain()
                let paused = try await api.get("/beckon/v1/sms/vendor")
                #expect(paused.json["vendor"]?["paused"] == .bool(true) && paused.text.contains("API key disabled"), "\(paused.text)")
                solapi.refuse(false)
                #expect(try await api.put("/beckon/v1/sms/vendor", #"{"type": "solapi", "api_key": "\#(SolapiStandIn.apiKey)", "api_secret": "\#(SolapiStandIn.apiSecret)", "sender": "0212345678", "endpoint": "http://127.0.0.1:\#(port)"}"#).status == .ok)
                api.clock.advance(by: 61)
                try await api.campaigns.pipeline.drain()
                #expect(solapi.messages.count == 4 && solapi.messages.last?["to"] == .string("01033334444"), "sent after the vendor was stored again")
            }
        }
    }

    @Test("a webhook vendor gets its Liquid body with sms.*; headers are sealed, never shown; subscription groups gate who is reached", arguments: TestDatabases.all())
    func webhookVendor(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind, connectedContent: try CampaignTests.connectedContent()) { api in
            let inbox = WebhookInbox()
            try await LocalHTTPServer.run(inbox.router()) { port in
                let stored = try await api.put("/beckon/v1/sms/vendor", #"""
                    {"type": "webhook", "url": "http://127.0.0.1:\#(port)/hook/sms", "headers": {"Authorization": "Bearer vendor-secret-1"},
                     "sender": "1588-1234",
                     "body": "{\"to\": \"{{sms.to}}\", \"from\": \"{{sms.from}}\", \"type\": \"{{sms.kind}}\", \"title\": \"{{sms.subject}}\", \"text\": \"{{sms.body | json_escape}}\", \"ref\": \"{{sms.message_id}}\"}"}
                    """#)
                #expect(stored.status == .ok, "\(stored.text)")
                #expect(!stored.text.contains("vendor-secret-1") && stored.json["vendor"]?["header_names"] == .array([.string("Authorization")]))
                try await Self.track(api, #"""
                    {"external_id": "g1", "first_name": "민지", "phone": "010-1234-5678",
                     "subscription_groups": [{"subscription_group_id": "sms_marketing", "subscription_state": "subscribed"}]},
                    {"external_id": "g2", "first_name": "Alex", "phone": "010-2222-3333",
                     "subscription_groups": [{"subscription_group_id": "sms_marketing", "subscription_state": "unsubscribed"}]},
                    {"external_id": "g3", "first_name": "Sam", "phone": "010-4444-5555"}
                    """#)
                let id = try await CampaignTests.create(api, #"""
                    {"name": "Order", "delivery": {"type": "api_triggered"},
                     "messages": {"sms": {"body": "{{${first_name}}}님, 주문하신 \"운동화\"가 출발했어요", "subject": "배송 안내", "subscription_group_id": "sms_marketing"}}}
                    """#)
                #expect(try await api.post("/campaigns/trigger/send", #"{"campaign_id": "\#(id)", "recipients": [{"external_user_id": "g1"}, {"external_user_id": "g2"}, {"external_user_id": "g3"}]}"#).status == .created)
                try await api.campaigns.pipeline.drain()
                #expect(inbox.all.count == 1, "only the subscribed user: \(inbox.all.map(\.body))")
                let request = try #require(inbox.all.first)
                #expect(request.body["to"] == .string("01012345678") && request.body["from"] == .string("15881234"))
                #expect(request.body["type"] == .string("lms"), "a subject makes it an LMS")
                #expect(request.body["title"] == .string("배송 안내") && request.body["text"] == .string("민지님, 주문하신 \"운동화\"가 출발했어요"))
                #expect(request.authorization == "Bearer vendor-secret-1")
                #expect(request.body["ref"]?.stringValue?.hasPrefix("msg_") == true && request.idempotencyKey == request.body["ref"]?.stringValue)
                let preview = try await api.post("/beckon/v1/campaigns/\(id)/preview", #"{"external_id": "g1"}"#)
                #expect(preview.text.contains("\"bytes\""), "\(preview.text)")

                // Braze's sms object on /messages/send: the subscription group still decides who gets it.
                let braze = try await api.post("/messages/send", #"""
                    {"external_user_ids": ["g1", "g2"], "messages": {"sms": {"subscription_group_id": "sms_marketing", "app_id": "\#(api.workspace.appID)",
                     "body": "{{${first_name}}}님, 쿠폰이 도착했어요", "message_variation_id": "v1"}}}
                    """#)
                #expect(braze.status == .created, "\(braze.text)")
                try await api.campaigns.pipeline.drain()
                #expect(inbox.all.count == 2 && inbox.all.last?.body["text"] == .string("민지님, 쿠폰이 도착했어요") && inbox.all.last?.body["type"] == .string("sms"))
                let bad = try await api.post("/messages/send", #"{"external_user_ids": ["g1"], "messages": {"sms": {"body": "x", "media_items": [], "link_shortening_enabled": true}}}"#)
                for expected in ["messages.sms.subscription_group_id: is required", "messages.sms.app_id: is required", "messages.sms.media_items: not supported yet",
                                 "messages.sms.link_shortening_enabled: not supported yet"] {
                    #expect(bad.status == .badRequest && bad.text.contains(expected), "\(expected) in \(bad.text)")
                }
            }
        }
    }

    @Test("KakaoTalk through Solapi: AlimTalk with its variables and an LMS fallback, advertising FriendTalk flagged as an ad with the notice in its SMS fallback", arguments: TestDatabases.all())
    func kakao(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind, connectedContent: try CampaignTests.connectedContent()) { api in
            let solapi = SolapiStandIn()
            try await LocalHTTPServer.run(solapi.router()) { port in
                let vendor = #"{"type": "solapi", "api_key": "\#(SolapiStandIn.apiKey)", "api_secret": "\#(SolapiStandIn.apiSecret)", "sender": "02-1234-5678", "endpoint": "http://127.0.0.1:\#(port)"}"#
                #expect(try await api.put("/beckon/v1/sms/vendor", vendor).status == .ok)
                try await Self.track(api, #"{"external_id": "k1", "first_name": "김민지", "phone": "010-1234-5678", "time_zone": "Asia/Seoul"}"#)
                let shipped = try await CampaignTests.create(api, #"""
                    {"name": "Shipped", "delivery": {"type": "api_triggered"},
                     "messages": {"kakao": {"type": "alimtalk", "template_code": "ORDER_SHIPPED",
                                            "body": "#{name}님, 주문 #{order}번이 출발했습니다.",
                                            "variables": {"name": "{{${first_name}}}", "order": "{{api_trigger_properties.${order}}}"},
                                            "buttons": [{"type": "DS", "name": "배송 조회"}],
                                            "fallback": {"type": "lms", "subject": "배송 안내", "body": "{{${first_name}}}님, 주문 {{api_trigger_properties.${order}}}번이 출발했습니다. 배송 조회: https://shop.example/t"}}}}
                    """#)
                #expect(try await api.post("/campaigns/trigger/send", #"{"campaign_id": "\#(shipped)", "trigger_properties": {"order": "9"}, "recipients": [{"external_user_id": "k1"}]}"#).status == .created)
                try await api.campaigns.pipeline.drain()
                var counts = try await api.campaigns.queue.engagementCounts(campaignID: shipped)
                #expect(counts.isEmpty && solapi.messages.isEmpty, "no kakao_pf_id: the vendor is paused and the message waits: \(counts)")
                let paused = try await api.get("/beckon/v1/sms/vendor")
                #expect(paused.text.contains("kakao_pf_id"), "\(paused.text)")
                #expect(try await api.put("/beckon/v1/sms/vendor", #"{"type": "solapi", "api_key": "\#(SolapiStandIn.apiKey)", "api_secret": "\#(SolapiStandIn.apiSecret)", "sender": "02-1234-5678", "endpoint": "http://127.0.0.1:\#(port)", "kakao_pf_id": "KA01PF0000"}"#).status == .ok)
                api.clock.advance(by: 61)
                try await api.campaigns.pipeline.drain()
                let alim = try #require(solapi.messages.first)
                #expect(alim["type"] == .string("ATA") && alim["to"] == .string("01012345678") && alim["from"] == .string("0212345678"))
                #expect(alim["kakaoOptions"]?["pfId"] == .string("KA01PF0000") && alim["kakaoOptions"]?["templateId"] == .string("ORDER_SHIPPED"))
                #expect(alim["kakaoOptions"]?["variables"] == .object(["name": .string("김민지"), "order": .string("9")]))
                #expect(alim["kakaoOptions"]?["disableSms"] == .bool(false) && alim["kakaoOptions"]?["adFlag"] == .bool(false))
                #expect(alim["kakaoOptions"]?["buttons"]?.arrayValue?.count == 1)
                #expect(alim["subject"] == .string("배송 안내") && alim["text"] == .string("김민지님, 주문 9번이 출발했습니다. 배송 조회: https://shop.example/t"))
                counts = try await api.campaigns.queue.engagementCounts(campaignID: shipped)
                #expect(counts["delivery"] == 1, "\(counts)")

                // Advertising: FriendTalk flagged as an ad; its SMS fallback carries the notice; it waits for 08:00.
                #expect(try await api.put("/beckon/v1/delivery_settings", #"{"advertising": {"opt_out_text": "무료거부 080-123-4567"}}"#).status == .ok)
                let sale = try await CampaignTests.create(api, #"""
                    {"name": "Sale", "advertising": true, "delivery": {"type": "api_triggered"},
                     "messages": {"kakao": {"type": "friendtalk", "body": "{{${first_name}}}님, 여름 세일 🎉", "fallback": {"type": "auto", "body": "여름 세일"}}}}
                    """#)
                #expect(try await api.post("/campaigns/trigger/send", #"{"campaign_id": "\#(sale)", "recipients": [{"external_user_id": "k1"}]}"#).status == .created)
                try await api.campaigns.pipeline.drain()
                #expect(solapi.messages.count == 1, "night in Seoul: the ad waits")
                api.clock.advance(by: 9 * 3_600)
                try await api.campaigns.pipeline.drain()
                let friend = try #require(solapi.messages.last)
                #expect(friend["type"] == .string("CTA") && friend["kakaoOptions"]?["adFlag"] == .bool(true))
                #expect(friend["text"] == .string("(광고) 여름 세일\n무료거부 080-123-4567"), "\(friend)")
            }
        }
    }

    @Test("channel_priority push then SMS: push when a token reaches, SMS for users without one and for those whose token bounced", arguments: TestDatabases.all())
    func pushElseSMS(kind: TestDatabaseKind) async throws {
        try await PushTests.withAPNs(kind) { api, apns, _ in
            let solapi = SolapiStandIn()
            try await LocalHTTPServer.run(solapi.router()) { port in
                #expect(try await api.put("/beckon/v1/sms/vendor", #"{"type": "solapi", "api_key": "\#(SolapiStandIn.apiKey)", "api_secret": "\#(SolapiStandIn.apiSecret)", "sender": "0212345678", "endpoint": "http://127.0.0.1:\#(port)"}"#).status == .ok)
                try await PushTests.register(api, "p1", token: PushTests.authorized, name: "Push")
                try await PushTests.register(api, "p3", token: PushTests.dead, name: "Dead")
                try await Self.track(api, #"""
                    {"external_id": "p1", "phone": "010-1000-0001"}, {"external_id": "p2", "first_name": "Phone", "phone": "010-1000-0002"},
                    {"external_id": "p3", "phone": "010-1000-0003"}, {"external_id": "p4", "first_name": "Nobody"}
                    """#)
                let id = try await CampaignTests.create(api, #"""
                    {"name": "Best seller", "delivery": {"type": "api_triggered"}, "channel_priority": ["push", "sms"],
                     "messages": {"push": {"title": "베스트셀러", "body": "{{${first_name}}}님 지금 확인하세요", "platforms": ["ios"]},
                                  "sms": {"body": "{{${first_name}}}님, 베스트셀러를 지금 확인하세요"}}}
                    """#)
                let recipients = ["p1", "p2", "p3", "p4"].map { #"{"external_user_id": "\#($0)"}"# }.joined(separator: ",")
                #expect(try await api.post("/campaigns/trigger/send", #"{"campaign_id": "\#(id)", "recipients": [\#(recipients)]}"#).status == .created)
                try await api.campaigns.pipeline.drain()
                #expect(apns.accepted.map(\.token) == [PushTests.authorized], "p1 by push")
                #expect(Set(solapi.messages.compactMap { $0["to"]?.stringValue }) == ["01010000002", "01010000003"], "p2 (no token) and p3 (bounced) by SMS: \(solapi.messages)")
                #expect(solapi.messages.first { $0["to"] == .string("01010000002") }?["text"] == .string("Phone님, 베스트셀러를 지금 확인하세요"))
                let details = try await api.get("/beckon/v1/campaigns/\(id)")
                #expect(details.json["messages_by_state"]?["delivered"] == .int(3) && details.json["messages_by_state"]?["failed"] == .int(1), "\(details.text)")
                try await api.campaigns.pipeline.drain()
                #expect(solapi.messages.count == 2, "one SMS per user, however often the queue is drained")
                let bad = try await api.post("/beckon/v1/campaigns", #"{"name": "x", "delivery": {"type": "api_triggered"}, "channel_priority": ["push", "email"], "messages": {"push": {"title": "t"}}}"#)
                #expect(bad.text.contains("channel_priority: must be an array of two or more channels") || bad.text.contains("channel_priority[1]: must be one of this message set's channels"), "\(bad.text)")
            }
        }
    }

    @Test("bad SMS input: vendor fields, phone numbers, emoji in a template, over-long LMS", arguments: TestDatabases.all())
    func badInput(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            let unknown = try await api.put("/beckon/v1/sms/vendor", #"{"type": "carrier-pigeon"}"#)
            #expect(unknown.status == .badRequest && unknown.text.contains("type: must be one of webhook, solapi"), "\(unknown.text)")
            let missing = try await api.put("/beckon/v1/sms/vendor", #"{"type": "solapi", "api_key": "k", "sender": "hello"}"#)
            #expect(missing.text.contains("api_secret: is required") && missing.text.contains("sender: 'hello' has a character"), "\(missing.text)")
            let template = try await api.put("/beckon/v1/sms/vendor", #"{"type": "webhook", "url": "ftp://x", "body": "{{ sms.to "}"#)
            #expect(template.text.contains("url: must be an http(s) URL") && template.text.contains("body: Liquid syntax error"), "\(template.text)")
            #expect(try await api.get("/beckon/v1/sms/vendor").json["vendor"] == .null, "nothing half-stored")

            let emoji = try await api.post("/beckon/v1/campaigns", #"{"name": "x", "delivery": {"type": "api_triggered"}, "messages": {"sms": {"body": "세일 🎉", "sender": "12"}}}"#)
            #expect(emoji.status == .badRequest && emoji.text.contains("sms.body: '🎉' (U+1F389) at character 4 cannot be sent by SMS"), "\(emoji.text)")
            #expect(emoji.text.contains("sms.sender: '12' is not a phone number"), "\(emoji.text)")
            let alimAd = try await api.post("/beckon/v1/campaigns", #"""
                {"name": "x", "advertising": true, "delivery": {"type": "api_triggered"},
                 "messages": {"kakao": {"type": "alimtalk", "template_code": "T1", "body": "#{name}님 #{coupon}", "variables": {"name": "x"},
                                        "buttons": [{"type": "XX", "name": "b"}], "fallback": {"type": "mms", "body": "세일 😀"}}}}
                """#)
            #expect(alimAd.status == .badRequest)
            for expected in ["kakao.type: advertising is never sent as AlimTalk", "kakao.variables.coupon: is required: the template's #{coupon} has no value",
                             "kakao.buttons[0].type: must be one of", "kakao.fallback.type: must be sms, lms or auto", "kakao.fallback.body: '😀'"] {
                #expect(alimAd.text.contains(expected), "\(expected) in \(alimAd.text)")
            }
            let long = String(repeating: "가", count: 1_001)
            let id = try await CampaignTests.create(api, #"{"name": "Long", "delivery": {"type": "api_triggered"}, "messages": {"sms": {"body": "\#(long)"}}}"#)
            try await Self.track(api, #"{"external_id": "l1", "phone": "010-1234-5678"}"#)
            let preview = try await api.post("/beckon/v1/campaigns/\(id)/preview", #"{"external_id": "l1"}"#)
            #expect(preview.status.code == 422 && preview.text.contains("sms body is 2002 bytes in CP949; an LMS holds at most 2000"), "\(preview.text)")
        }
    }
}
