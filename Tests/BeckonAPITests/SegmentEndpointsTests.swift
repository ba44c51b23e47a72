import BeckonAPI
import BeckonCore
import BeckonStorage
import BeckonTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// Beckon's segment endpoints and Braze's Segment API through the router.
@Suite("Segment endpoints")
struct SegmentEndpointsTests {
    static let brandFilter = #"{"event": "product_viewed", "where": {"brand": "Jucy Judy"}, "within_last": {"days": 1}}"#

    @Test("create, read, preview, members, contains, update, delete", arguments: TestDatabases.all())
    func lifecycle(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            _ = try await api.post("/users/track", """
                {"events": [{"external_id": "u1", "name": "product_viewed", "time": "2025-06-30T10:00:00Z", "properties": {"brand": "Jucy Judy"}},
                            {"external_id": "u2", "name": "product_viewed", "time": "2025-06-28T10:00:00Z", "properties": {"brand": "Jucy Judy"}},
                            {"external_id": "u3", "name": "product_viewed", "time": "2025-06-30T10:00:00Z", "properties": {"brand": "Kirsh"}}]}
                """)
            let created = try await api.post(
                "/beckon/v1/segments", #"{"name": "Viewed Jucy Judy", "description": "소셜 프루프", "tags": ["brand"], "filter": \#(Self.brandFilter)}"#)
            #expect(created.status == .created)
            let id = try #require(created.json["segment_id"]?.stringValue)

            let fetched = try await api.get("/beckon/v1/segments/\(id)")
            #expect(fetched.json["name"] == .string("Viewed Jucy Judy"))
            #expect(fetched.json["filter"] == (try JSONValue.parse(Array(Self.brandFilter.utf8))))

            let preview = try await api.post("/beckon/v1/segments/preview", #"{"filter": \#(Self.brandFilter)}"#)
            #expect(preview.json["size"] == .int(1))
            #expect(preview.json["sample"] == .array([.string("u1")]))

            let members = try await api.get("/beckon/v1/segments/\(id)/members")
            #expect(members.json["external_ids"] == .array([.string("u1")]))
            #expect(try await api.get("/beckon/v1/segments/\(id)/contains?external_id=u1").json["member"] == .bool(true))
            #expect(try await api.get("/beckon/v1/segments/\(id)/contains?external_id=u3").json["member"] == .bool(false))
            #expect(try await api.get("/beckon/v1/segments/\(id)/contains?external_id=nobody").json["member"] == .bool(false))

            var headers = HTTPFields()
            headers[.authorization] = "Bearer \(api.adminKey)"
            headers[.contentType] = "application/json"
            let updated = try await api.client.execute(
                uri: "/beckon/v1/segments/\(id)", method: .put, headers: headers,
                body: ByteBuffer(string: #"{"name": "Viewed Kirsh", "filter": {"event": "product_viewed", "where": {"brand": "Kirsh"}}}"#)
            ) { $0.status }
            #expect(updated == .ok)
            #expect(try await api.get("/beckon/v1/segments/\(id)/contains?external_id=u3").json["member"] == .bool(true))
            let deleted = try await api.client.execute(uri: "/beckon/v1/segments/\(id)", method: .delete, headers: headers) { $0.status }
            #expect(deleted == .ok)
            #expect(try await api.get("/beckon/v1/segments/\(id)").status == .notFound)
        }
    }

    @Test("invalid filters are 400s naming the node", arguments: TestDatabases.all())
    func invalidFilter(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            let reply = try await api.post(
                "/beckon/v1/segments", #"{"name": "x", "filter": {"all": [{"attribute": "first_name", "op": "gt", "value": 1}]}}"#)
            #expect(reply.status == .badRequest)
            #expect(reply.json["errors"]?.arrayValue?.first?.stringValue?.hasPrefix("filter.all[0].op:") == true)
            let unknown = try await api.post("/beckon/v1/segments", #"{"name": "x", "filter": {"segment": "seg_nope"}}"#)
            #expect(unknown.status == .badRequest)
            #expect(unknown.json["errors"]?.arrayValue?.first?.stringValue?.contains("unknown segment id") == true)
        }
    }

    @Test("Braze's /segments/list, /segments/details and /segments/data_series shapes", arguments: TestDatabases.all())
    func brazeShapes(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            _ = try await api.post("/users/track", """
                {"events": [{"external_id": "u1", "name": "product_viewed", "time": "2025-06-30T10:00:00Z", "properties": {"brand": "Jucy Judy"}}]}
                """)
            let id = try #require(try await api.post(
                "/beckon/v1/segments", #"{"name": "Viewed", "tags": ["brand"], "filter": \#(Self.brandFilter)}"#).json["segment_id"]?.stringValue)
            let list = try await api.get("/segments/list")
            #expect(list.json == .object([
                "message": .string("success"),
                "segments": .array([.object(["id": .string(id), "name": .string("Viewed"), "analytics_tracking_enabled": .bool(true),
                                             "tags": .array([.string("brand")])])]),
            ]))
            let details = try await api.get("/segments/details?segment_id=\(id)")
            #expect(details.json["description"]?.stringValue?.contains("Custom Event 'product_viewed'") == true)
            #expect(details.json["text_description"] == .string(""))
            #expect(details.json["teams"] == .array([]))
            #expect(details.json["tags"] == .array([.string("brand")]))

            let series = try await api.get("/segments/data_series?segment_id=\(id)&length=1")
            #expect(series.json == .object([
                "message": .string("success"), "data": .array([.object(["time": .string("2025-07-01"), "size": .int(1)])]),
            ]))
            #expect(try await api.get("/segments/data_series?segment_id=\(id)&length=0").status == .badRequest)
            #expect(try await api.get("/segments/data_series?segment_id=\(id)&length=101").status == .badRequest)
            #expect(try await api.get("/segments/data_series?segment_id=\(id)").status == .badRequest)
            let missing = try await api.get("/segments/data_series?segment_id=seg_nope&length=1")
            #expect(missing.status == .notFound)
            #expect(missing.json["message"] == .string("Not Found"))
            let (_, narrowKey) = try await api.workspaces.createAPIKey(
                workspaceID: api.workspace.id, name: "series", permissions: ["segments.data_series"])
            #expect(try await api.get("/segments/data_series?segment_id=\(id)&length=1", key: narrowKey).status == .ok)
            #expect(try await api.get("/segments/list", key: narrowKey).status == .forbidden)
        }
    }
}
