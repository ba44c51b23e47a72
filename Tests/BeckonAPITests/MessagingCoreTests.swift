import BeckonAPI
import BeckonCore
import BeckonMessaging
import BeckonStorage
import BeckonTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A receiver that keeps every request exactly as it arrived: body bytes and headers.
final class RawInbox: Sendable {
    struct Request: Sendable {
        let path: String
        let body: String
        let idempotencyKey: String
    }

    private let requests = Mutex<[Request]>([])
    var all: [Request] { requests.withLock { $0 } }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/raw/{name}") { request, context -> Response in
            let bytes = try await request.body.collect(upTo: 1 << 20)
            self.requests.withLock {
                $0.append(Request(
                    path: "/raw/" + (context.parameters.get("name") ?? ""), body: String(buffer: bytes),
                    idempotencyKey: request.headers[HTTPField.Name("Idempotency-Key")!] ?? ""))
            }
            return Response(status: .ok)
        }
        return router
    }
}

/// The messaging core's guarantees through the router, on both databases: idempotent trigger
/// endpoints, once-only campaigns under concurrent triggers, previews byte-identical to sends,
/// and failing closed when stored data cannot be used.
@Suite("Messaging core")
struct MessagingCoreTests {
    static func users(_ api: APIHarness, _ ids: [String]) async throws {
        let attributes = ids.map { #"{"external_id": "\#($0)", "first_name": "N-\#($0)", "tier": "gold"}"# }
        let reply = try await api.post("/users/track", #"{"attributes": [\#(attributes.joined(separator: ","))]}"#)
        #expect(reply.status == .created)
    }

    /// `count` concurrent `/campaigns/trigger/send` calls with one key: each one's dispatch id (or status).
    static func concurrentTriggers(_ api: APIHarness, body: String, key: String, count: Int) async throws -> [String?] {
        try await withThrowingTaskGroup(of: String?.self) { group in
            for _ in 0..<count {
                group.addTask {
                    let reply = try await api.post("/campaigns/trigger/send", body, extraHeaders: ["Idempotency-Key": key])
                    return reply.status == .created ? reply.json["dispatch_id"]?.stringValue : "status \(reply.status.code)"
                }
            }
            var all: [String?] = []
            for try await answer in group { all.append(answer) }
            return all
        }
    }

    @Test("a retried Idempotency-Key answers the first dispatch and sends nothing new", arguments: TestDatabases.all())
    func idempotencyKey(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind, connectedContent: try CampaignTests.connectedContent()) { api in
            let inbox = RawInbox()
            try await LocalHTTPServer.run(inbox.router()) { port in
                try await Self.users(api, ["i1", "i2"])
                let id = try await CampaignTests.create(api, #"""
                    {"name": "Receipt", "delivery": {"type": "api_triggered"},
                     "messages": {"webhook": {"url": "http://127.0.0.1:\#(port)/raw/receipt", "body": "{\"to\": \"{{${user_id}}}\"}"}}}
                    """#)
                let body = #"{"campaign_id": "\#(id)", "recipients": [{"external_user_id": "i1"}]}"#
                let first = try await api.post("/campaigns/trigger/send", body, extraHeaders: ["Idempotency-Key": "order-1"])
                #expect(first.status == .created, "\(first.text)")
                let dispatchID = try #require(first.json["dispatch_id"]?.stringValue)
                // The same body with other whitespace is the same request.
                let retry = try await api.post(
                    "/campaigns/trigger/send", #"{"recipients": [{"external_user_id": "i1"}],   "campaign_id": "\#(id)"}"#,
                    extraHeaders: ["Idempotency-Key": "order-1"])
                #expect(retry.status == .created)
                #expect(retry.json["dispatch_id"]?.stringValue == dispatchID)
                #expect(retry.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
                let conflict = try await api.post(
                    "/campaigns/trigger/send", #"{"campaign_id": "\#(id)", "recipients": [{"external_user_id": "i2"}]}"#,
                    extraHeaders: ["Idempotency-Key": "order-1"])
                #expect(conflict.status == .unprocessableContent)
                #expect(conflict.text.contains("order-1") && conflict.text.contains("different request body"), "\(conflict.text)")
                let invalid = try await api.post("/campaigns/trigger/send", body, extraHeaders: ["Idempotency-Key": "has space"])
                #expect(invalid.status == .badRequest)

                // Concurrent requests with one key make one dispatch.
                let concurrentBody = #"{"campaign_id": "\#(id)", "recipients": [{"external_user_id": "i2"}]}"#
                let answers = try await Self.concurrentTriggers(api, body: concurrentBody, key: "order-2", count: 12)
                #expect(Set(answers).count == 1, "\(answers)")
                // With recipients' attributes, the attributes, the key and the dispatch commit
                // together: concurrent requests with one key increment once.
                let incrementBody = #"{"campaign_id": "\#(id)", "recipients": [{"external_user_id": "i2", "attributes": {"visits": {"inc": 1}}}]}"#
                let incremented = try await Self.concurrentTriggers(api, body: incrementBody, key: "order-3", count: 8)
                #expect(Set(incremented).count == 1, "\(incremented)")
                let visits = try await api.export("i2")?["custom_attributes"]?["visits"]
                #expect(visits?.numberValue == 1, "the attributes were applied once: \(String(describing: visits))")
                // The same key on another endpoint is another scope.
                let message = try await api.post("/messages/send", #"""
                    {"external_user_ids": ["i1"], "messages": {"webhook": {"url": "http://127.0.0.1:\#(port)/raw/adhoc", "body": "hi"}}}
                    """#, extraHeaders: ["Idempotency-Key": "order-1"])
                #expect(message.status == .created, "\(message.text)")
                let messageRetry = try await api.post("/messages/send", #"""
                    {"external_user_ids": ["i1"], "messages": {"webhook": {"url": "http://127.0.0.1:\#(port)/raw/adhoc", "body": "hi"}}}
                    """#, extraHeaders: ["Idempotency-Key": "order-1"])
                #expect(messageRetry.json["dispatch_id"] == message.json["dispatch_id"])
                try await api.campaigns.pipeline.drain()
                let paths = inbox.all.map(\.path).sorted()
                #expect(paths == ["/raw/adhoc", "/raw/receipt", "/raw/receipt", "/raw/receipt"], "one message per dispatch: \(paths)")

                // After 24 hours the key is forgotten and makes a new dispatch.
                api.clock.advance(by: 24 * 3_600 + 1)
                let later = try await api.post("/campaigns/trigger/send", body, extraHeaders: ["Idempotency-Key": "order-1"])
                #expect(later.status == .created)
                #expect(later.json["dispatch_id"]?.stringValue != dispatchID)
            }
        }
    }

    @Test("50 concurrent trigger events for one user send a once-only campaign once", arguments: TestDatabases.all())
    func onceOnlyUnderConcurrentTriggers(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind, connectedContent: try CampaignTests.connectedContent()) { api in
            let inbox = RawInbox()
            try await LocalHTTPServer.run(inbox.router()) { port in
                try await Self.users(api, ["once"])
                _ = try await CampaignTests.create(api, #"""
                    {"name": "Welcome", "delivery": {"type": "action_based", "trigger": {"event": "signed_up"}},
                     "messages": {"webhook": {"url": "http://127.0.0.1:\#(port)/raw/welcome", "body": "{\"to\": \"{{${user_id}}}\"}"}}}
                    """#)
                try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                    for index in 0..<50 {
                        group.addTask {
                            try await api.post(
                                "/users/track", #"{"events": [{"external_id": "once", "name": "signed_up", "time": "2025-06-30T14:\#(10 + index / 10):0\#(index % 10)Z"}]}"#
                            ).status
                        }
                    }
                    for try await status in group { #expect(status == .created) }
                }
                #expect(try await api.campaigns.triggers.outboxDepth() == 50, "every trigger fact was stored with its event")
                try await api.campaigns.pipeline.drain()
                #expect(try await api.campaigns.triggers.outboxDepth() == 0)
                #expect(inbox.all.count == 1, "\(inbox.all.count) messages")
                // Nothing reacts to other events: they write no outbox rows.
                _ = try await api.post("/users/track", #"{"events": [{"external_id": "once", "name": "page_viewed"}]}"#)
                #expect(try await api.campaigns.triggers.outboxDepth() == 0)
            }
        }
    }

    @Test("a campaign preview is byte-identical to the message sent", arguments: TestDatabases.all())
    func previewMatchesSend(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind, connectedContent: try CampaignTests.connectedContent()) { api in
            let inbox = RawInbox()
            try await LocalHTTPServer.run(inbox.router()) { port in
                _ = try await api.post("/users/track", #"""
                    {"attributes": [{"external_id": "p1", "first_name": "지민", "email": "p1@example.kr", "time_zone": "Asia/Seoul",
                                     "favourite": "니트", "sizes": ["S", "M"]}]}
                    """#)
                let template = #"{\"to\": \"{{${email_address}}}\", \"text\": \"{{${first_name}}}님, {{custom_attribute.${favourite}}} {{api_trigger_properties.${discount}}}% ({{campaign.${name}}}, {{campaign.${variant_name}}}) {{custom_attribute.${sizes} | join: '/'}}\"}"#
                let id = try await CampaignTests.create(api, #"""
                    {"name": "Knit sale", "delivery": {"type": "api_triggered"},
                     "variants": [{"name": "A", "percent": 100, "messages": {"webhook": {"url": "http://127.0.0.1:\#(port)/raw/sale?u={{${user_id}}}",
                       "headers": {"X-Shop": "{{custom_attribute.${favourite}}}"}, "body": "\#(template)"}}}]}
                    """#)
                let preview = try await api.post(
                    "/beckon/v1/campaigns/\(id)/preview", #"{"external_id": "p1", "trigger_properties": {"discount": 30}}"#)
                #expect(preview.status == .ok, "\(preview.text)")
                #expect(preview.json["variant"] == .string("A"))
                #expect(preview.json["aborted"] == .bool(false))
                let webhook = try #require(preview.json["messages"]?["webhook"])
                #expect(webhook["url"] == .string("http://127.0.0.1:\(port)/raw/sale?u=p1"))
                #expect(webhook["method"] == .string("POST"))
                #expect(webhook["headers"]?["X-Shop"] == .string("니트"))
                let previewBody = try #require(webhook["body"]?.stringValue)
                #expect(previewBody.contains("지민님, 니트 30% (Knit sale, A) S/M"), "\(previewBody)")

                let sent = try await api.post(
                    "/campaigns/trigger/send", #"{"campaign_id": "\#(id)", "recipients": [{"external_user_id": "p1", "trigger_properties": {"discount": 30}}]}"#)
                #expect(sent.status == .created)
                try await api.campaigns.pipeline.drain()
                let received = try #require(inbox.all.first)
                #expect(Array(received.body.utf8) == Array(previewBody.utf8), "preview and send differ:\n\(previewBody)\n\(received.body)")

                let unknownUser = try await api.post("/beckon/v1/campaigns/\(id)/preview", #"{"external_id": "nobody"}"#)
                #expect(unknownUser.status == .notFound)
                let unknownVariant = try await api.post("/beckon/v1/campaigns/\(id)/preview", #"{"external_id": "p1", "variant": "Z"}"#)
                #expect(unknownVariant.status == .unprocessableContent)
                let badBody = try await api.post("/beckon/v1/campaigns/\(id)/preview", #"{"user": "p1"}"#)
                #expect(badBody.status == .badRequest)
                #expect(badBody.text.contains("external_id: is required"))

                let aborting = try await CampaignTests.create(api, #"""
                    {"name": "Only gold", "delivery": {"type": "api_triggered"},
                     "messages": {"webhook": {"url": "http://127.0.0.1:\#(port)/raw/gold", "body": "{% abort_message('not gold') %}"}}}
                    """#)
                let aborted = try await api.post("/beckon/v1/campaigns/\(aborting)/preview", #"{"external_id": "p1"}"#)
                #expect(aborted.json["aborted"] == .bool(true))
                #expect(aborted.json["reason"] == .string("not gold"))

                let broken = try await CampaignTests.create(api, #"""
                    {"name": "Broken JSON", "delivery": {"type": "api_triggered"},
                     "messages": {"webhook": {"url": "http://127.0.0.1:\#(port)/raw/broken", "body": "{\"to\": {{${first_name}}}}"}}}
                    """#)
                let failed = try await api.post("/beckon/v1/campaigns/\(broken)/preview", #"{"external_id": "p1"}"#)
                #expect(failed.status == .unprocessableContent)
                #expect(failed.text.contains("not valid JSON"), "\(failed.text)")
            }
        }
    }

    @Test("a variant whose stored template cannot be parsed fails alone; no other variant is sent", arguments: TestDatabases.all())
    func brokenVariantFailsClosed(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind, connectedContent: try CampaignTests.connectedContent()) { api in
            let inbox = RawInbox()
            try await LocalHTTPServer.run(inbox.router()) { port in
                let ids = (0..<40).map { "v\($0)" }
                try await Self.users(api, ids)
                let id = try await CampaignTests.create(api, #"""
                    {"name": "Two arms", "delivery": {"type": "api_triggered"},
                     "variants": [{"name": "A", "percent": 50, "messages": {"webhook": {"url": "http://127.0.0.1:\#(port)/raw/a", "body": "A {{${user_id}}}"}}},
                                  {"name": "B", "percent": 50, "messages": {"webhook": {"url": "http://127.0.0.1:\#(port)/raw/b", "body": "B {{${user_id}}} MARK"}}}]}
                    """#)
                let trigger = try await api.post("/campaigns/trigger/send", #"{"campaign_id": "\#(id)", "broadcast": true}"#)
                let dispatchID = try #require(trigger.json["dispatch_id"]?.stringValue)
                // The stored dispatch is corrupted: variant B's template no longer parses.
                try await api.database.write { connection in
                    try connection.execute(
                        "UPDATE dispatches SET definition = REPLACE(definition, 'MARK', '{% if %}') WHERE id = ?", [.text(dispatchID)])
                }
                try await api.campaigns.pipeline.drain()
                let paths = Set(inbox.all.map(\.path))
                #expect(paths == ["/raw/a"], "only variant A is sent: \(paths)")
                let counts = try await api.campaigns.queue.messageCounts(campaignID: id)
                #expect((counts["delivered"] ?? 0) + (counts["failed"] ?? 0) == 40, "\(counts)")
                #expect((counts["failed"] ?? 0) > 0 && counts["delivered"] == inbox.all.count)
                let log = try await api.get("/beckon/v1/activity_log?type=render_error")
                let reason = log.json["entries"]?.arrayValue?.first?["reason"]?.stringValue ?? ""
                #expect(reason.contains("Liquid syntax error"), "\(log.text)")
                #expect(log.json["entries"]?.arrayValue?.allSatisfy { $0["variant"] == .string("B") } == true)
            }
        }
    }

    @Test("stored attributes that do not decode are an error naming the row, never overwritten", arguments: TestDatabases.all())
    func undecodableAttributesFailClosed(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            try await Self.users(api, ["broken"])
            try await api.database.write { connection in
                try connection.execute("UPDATE users SET custom_attributes = 'not json' WHERE external_id = 'broken'")
            }
            let update = try await api.post("/users/track", #"{"attributes": [{"external_id": "broken", "tier": "silver"}]}"#)
            #expect(update.status == .internalServerError)
            let stored = try await api.database.read { connection in
                try connection.first("SELECT custom_attributes FROM users WHERE external_id = 'broken'")?[0].string
            }
            #expect(stored == "not json", "the row is left for an operator to mend")
            let export = try await api.post("/users/export/ids", #"{"external_ids": ["broken"]}"#)
            #expect(export.status == .internalServerError)
        }
    }

    @Test("a key's IP allowlist is checked against the real peer address", arguments: TestDatabases.all())
    func ipAllowlistOverRealSocket(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            let (_, office) = try await api.workspaces.createAPIKey(
                workspaceID: api.workspace.id, name: "office", permissions: ["users.track"], ipAllowlist: ["203.0.113.0/24"])
            let (_, local) = try await api.workspaces.createAPIKey(
                workspaceID: api.workspace.id, name: "local", permissions: ["users.track"], ipAllowlist: ["127.0.0.0/8"])
            try await LocalHTTPServer.run(api.api.makeRouter()) { port in
                func track(_ key: String) async throws -> (Int, String) {
                    var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/users/track")!)
                    request.httpMethod = "POST"
                    request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization")
                    request.setValue("application/json", forHTTPHeaderField: "Content-Type")
                    request.httpBody = Data(#"{"attributes": [{"external_id": "ip1"}]}"#.utf8)
                    let (data, response) = try await URLSession.shared.data(for: request)
                    return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
                }
                let refused = try await track(office)
                #expect(refused.0 == 401)
                #expect(refused.1.contains("127.0.0.1"), "the refusal names the address it saw: \(refused.1)")
                let allowed = try await track(local)
                #expect(allowed.0 == 201, "\(allowed.1)")
            }
        }
    }
}
