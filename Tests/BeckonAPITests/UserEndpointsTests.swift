import BeckonAPI
import BeckonCore
import BeckonStorage
import BeckonTestSupport
import Foundation
import Hummingbird
import Testing

/// `/users/identify`, `/users/alias/new`, `/users/delete`, `/users/export/ids`, the SDK endpoint, health and metrics.
@Suite("User endpoints")
struct UserEndpointsTests {
    @Test("alias/new, identify (merging) and export by alias", arguments: TestDatabases.all())
    func aliasAndIdentify(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            let created = try await api.post("/users/alias/new", #"{"user_aliases": [{"alias_name": "kakao-1", "alias_label": "kakao"}]}"#)
            #expect(created.status == .created)
            #expect(created.json["aliases_processed"] == .int(1))
            _ = try await api.post("/users/track", """
                {"attributes": [{"user_alias": {"alias_name": "kakao-1", "alias_label": "kakao"}, "first_name": "카카오"}],
                 "events": [{"user_alias": {"alias_name": "kakao-1", "alias_label": "kakao"}, "name": "visit", "time": "2025-06-30T10:00:00Z"}]}
                """)
            _ = try await api.post("/users/track", #"{"attributes": [{"external_id": "u1", "last_name": "최"}]}"#)
            let identified = try await api.post("/users/identify", """
                {"aliases_to_identify": [{"external_id": "u1", "user_alias": {"alias_name": "kakao-1", "alias_label": "kakao"}}]}
                """)
            #expect(identified.json == .object(["message": .string("success"), "aliases_processed": .int(1)]))
            let user = try #require(try await api.export("u1"))
            #expect(user["first_name"] == .string("카카오"))
            #expect(user["last_name"] == .string("최"))
            #expect(user["custom_events"]?.arrayValue?.first?["count"] == .int(1))
            let byAlias = try await api.post(
                "/users/export/ids", #"{"user_aliases": [{"alias_name": "kakao-1", "alias_label": "kakao"}], "fields_to_export": ["external_id"]}"#)
            #expect(byAlias.json["users"] == .array([.object(["external_id": .string("u1")])]))
        }
    }

    @Test("identify by email with prioritization", arguments: TestDatabases.all())
    func identifyByEmail(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            _ = try await api.post("/users/track", #"{"attributes": [{"email": "new@example.kr", "first_name": "신규"}]}"#)
            let reply = try await api.post("/users/identify", """
                {"emails_to_identify": [{"external_id": "u7", "email": "new@example.kr", "prioritization": ["unidentified", "most_recently_updated"]}]}
                """)
            #expect(reply.json["aliases_processed"] == .int(1))
            #expect(try await api.export("u7")?["first_name"] == .string("신규"))
            let bad = try await api.post("/users/identify", #"{"emails_to_identify": [{"external_id": "u8", "email": "x@example.kr", "prioritization": ["identified", "unidentified"]}]}"#)
            #expect(bad.status == .badRequest)
        }
    }

    @Test("delete answers the count and the user is gone", arguments: TestDatabases.all())
    func delete(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            _ = try await api.post("/users/track", #"{"attributes": [{"external_id": "u1"}, {"external_id": "u2"}]}"#)
            let reply = try await api.post("/users/delete", #"{"external_ids": ["u1", "missing"]}"#)
            #expect(reply.json == .object(["message": .string("success"), "deleted": .int(1)]))
            #expect(try await api.export("u1") == nil)
            #expect(try await api.export("u2") != nil)
            let empty = try await api.post("/users/delete", #"{}"#)
            #expect(empty.status == .badRequest)
        }
    }

    @Test("export validates fields_to_export and the 50-identifier limit", arguments: TestDatabases.all())
    func exportValidation(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            let unknownField = try await api.post("/users/export/ids", #"{"external_ids": ["u1"], "fields_to_export": ["shoe_size"]}"#)
            #expect(unknownField.status == .badRequest)
            #expect(unknownField.json["errors"]?.arrayValue?.first?.stringValue?.contains("shoe_size") == true)
            let ids = (0..<51).map { "\"u\($0)\"" }.joined(separator: ",")
            let tooMany = try await api.post("/users/export/ids", #"{"external_ids": [\#(ids)]}"#)
            #expect(tooMany.status == .badRequest)
            #expect(tooMany.json["message"] == .string("The max number of ids per request was exceeded"))
        }
    }

    @Test("the SDK endpoint takes the app identifier, not a REST key", arguments: TestDatabases.all())
    func sdkEndpoint(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            let body = """
                {"app_id": "\(api.workspace.appID)", "device_id": "web-1", "external_id": "u1", "platform": "web",
                 "events": [{"name": "page_view", "time": "2025-06-30T10:00:00Z"}],
                 "push_token": {"token": "https://push.example/abc", "web_push_keys": {"p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4", "auth": "BTBZMqHH6r4Tts7J_aSIgg"}}}
                """
            let reply = try await api.post("/sdk/v1/data", body, key: "")
            #expect(reply.status == .created)
            #expect(reply.json["events_processed"] == .int(1))
            let user = try #require(try await api.export("u1"))
            #expect(user["push_tokens"]?.arrayValue?.first?["platform"] == .string("Web"))
            let unknown = try await api.post("/sdk/v1/data", #"{"app_id": "nope", "device_id": "d", "platform": "ios"}"#, key: "")
            #expect(unknown.status == .unauthorized)
            let badPlatform = try await api.post(
                "/sdk/v1/data", #"{"app_id": "\#(api.workspace.appID)", "device_id": "d", "platform": "symbian"}"#, key: "")
            #expect(badPlatform.status == .badRequest)
        }
    }

    @Test("segmentable properties can be marked, listed and unmarked over the API", arguments: TestDatabases.all())
    func segmentableProperties(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            let marked = try await api.post("/beckon/v1/segmentable_properties", #"{"event_name": "product_viewed", "property": "brand"}"#)
            #expect(marked.status == .created)
            let list = try await api.get("/beckon/v1/segmentable_properties")
            #expect(list.json["segmentable_properties"] == .array([
                .object(["event_name": .string("product_viewed"), "property": .string("brand")]),
            ]))
            let bad = try await api.post("/beckon/v1/segmentable_properties", #"{"event_name": "x", "property": "$bad"}"#)
            #expect(bad.status == .badRequest)
        }
    }

    @Test("health and metrics", arguments: TestDatabases.all())
    func healthAndMetrics(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            let health = try await api.get("/health", key: "")
            #expect(health.status == .ok)
            #expect(health.json["status"] == .string("ok"))
            let metrics = try await api.get("/metrics", key: "")
            #expect(metrics.text.contains("beckon_test_metric 1"))
        }
    }
}
