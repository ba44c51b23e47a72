import BeckonAPI
import BeckonCore
import BeckonStorage
import BeckonTestSupport
import Foundation
import HTTPTypes
import Testing

@Suite("Subscription groups and Braze's subscription status API")
struct SubscriptionGroupTests {
    @Test("groups are objects (create, list, rename, delete); Braze's v1 and v2 set and the get endpoint read and write the states segments use", arguments: TestDatabases.all())
    func groups(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            let created = try await api.post("/beckon/v1/subscription_groups", #"{"name": "SMS 마케팅", "channel": "sms"}"#)
            #expect(created.status == .created, "\(created.text)")
            let id = try #require(created.json["subscription_group_id"]?.stringValue)
            #expect(id.hasPrefix("sg_") && created.json["channel"] == .string("sms"))
            #expect(try await api.post("/beckon/v1/subscription_groups", #"{"name": "SMS 마케팅", "channel": "email"}"#).status == .conflict)
            let badChannel = try await api.post("/beckon/v1/subscription_groups", #"{"name": "x", "channel": "fax"}"#)
            #expect(badChannel.status == .badRequest && badChannel.text.contains("channel: must be one of email, sms, whatsapp"))
            let email = try await api.post("/beckon/v1/subscription_groups", #"{"name": "Newsletter", "channel": "email"}"#)
            let emailID = try #require(email.json["subscription_group_id"]?.stringValue)
            let renamed = try await api.put("/beckon/v1/subscription_groups/\(emailID)", #"{"name": "주간 뉴스레터"}"#)
            #expect(renamed.json["name"] == .string("주간 뉴스레터"))
            let list = try await api.get("/beckon/v1/subscription_groups")
            #expect(list.json["subscription_groups"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["SMS 마케팅", "주간 뉴스레터"])

            let track = try await api.post("/users/track", #"""
                {"attributes": [{"external_id": "u1", "phone": "+821011112222"}, {"external_id": "u2", "email": "kim@example.kr"}]}
                """#)
            #expect(track.status == .created)
            let v1 = try await api.post("/subscription/status/set", #"{"subscription_group_id": "\#(id)", "subscription_state": "subscribed", "external_id": ["u1", "ghost"]}"#)
            #expect(v1.status == .created && v1.json["message"] == .string("success"), "\(v1.text)")
            let v2 = try await api.post("/v2/subscription/status/set", #"""
                {"subscription_groups": [{"subscription_group_id": "\#(id)", "subscription_state": "unsubscribed", "emails": ["kim@example.kr"]},
                                         {"subscription_group_id": "\#(emailID)", "subscription_state": "subscribed", "external_ids": ["u2"]}]}
                """#)
            #expect(v2.status == .created, "\(v2.text)")
            let status = try await api.get("/subscription/status/get?subscription_group_id=\(id)&external_id=u1&external_id=u2&external_id=ghost")
            #expect(status.json["status"] == .object(["u1": .string("Subscribed"), "u2": .string("Unsubscribed"), "ghost": .string("Unknown")]), "\(status.text)")
            let byEmail = try await api.get("/subscription/status/get?subscription_group_id=\(emailID)&email=kim@example.kr")
            #expect(byEmail.json["status"]?["kim@example.kr"] == .string("Subscribed"))
            let segment = try await api.post("/beckon/v1/segments/preview", #"{"filter": {"subscription_group": {"id": "\#(id)"}}}"#)
            #expect(segment.json["sample"] == .array([.string("u1")]), "\(segment.text)")

            let bad = try await api.post("/v2/subscription/status/set", #"{"subscription_groups": [{"subscription_state": "maybe", "emails": ["a@b.co"], "phones": ["+8210"]}]}"#)
            for expected in ["subscription_groups[0].subscription_group_id: is required", "subscription_groups[0].subscription_state: must be 'subscribed' or 'unsubscribed'",
                             "subscription_groups[0].emails: give emails or phones, not both"] {
                #expect(bad.status == .badRequest && bad.text.contains(expected), "\(expected) in \(bad.text)")
            }
            let tooMany = (0..<51).map { #""u\#($0)""# }.joined(separator: ",")
            #expect(try await api.post("/subscription/status/set", #"{"subscription_group_id": "\#(id)", "subscription_state": "subscribed", "external_id": [\#(tooMany)]}"#).text.contains("at most 50 users"))

            #expect(try await api.delete("/beckon/v1/subscription_groups/\(id)").status == .ok)
            #expect(try await api.get("/beckon/v1/subscription_groups/\(id)").status == .notFound)
            let gone = try await api.get("/subscription/status/get?subscription_group_id=\(id)&external_id=u1")
            #expect(gone.json["status"]?["u1"] == .string("Unknown"), "deleting a group removes its states")
        }
    }
}
