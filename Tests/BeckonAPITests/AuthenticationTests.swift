import BeckonAPI
import BeckonCore
import BeckonStorage
import BeckonTestSupport
import Foundation
import Hummingbird
import Testing

/// API keys on every endpoint: 401 for missing or unknown keys, 403 for missing permissions, Braze's shapes.
@Suite("Authentication")
struct AuthenticationTests {
    @Test("missing, unknown and revoked keys are 401 Unauthorized", arguments: TestDatabases.all())
    func unauthorized(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            let body = #"{"external_ids": ["u1"]}"#
            let missing = try await api.post("/users/export/ids", body, key: "")
            #expect(missing.status == .unauthorized)
            #expect(missing.json["message"] == .string("Unauthorized"))
            let unknown = try await api.post("/users/export/ids", body, key: "00000000-0000-0000-0000-000000000000")
            #expect(unknown.status == .unauthorized)
            let (record, key) = try await api.workspaces.createAPIKey(
                workspaceID: api.workspace.id, name: "temp", permissions: ["users.export.ids"])
            #expect(try await api.post("/users/export/ids", body, key: key).status == .ok)
            try await api.workspaces.revokeAPIKey(id: record.id)
            api.clock.advance(by: 6)
            #expect(try await api.post("/users/export/ids", body, key: key).status == .unauthorized, "revocation takes effect within 5 s")
        }
    }

    @Test("a key without the endpoint's permission is 403 Access Denied", arguments: TestDatabases.all())
    func forbidden(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            let (_, key) = try await api.workspaces.createAPIKey(
                workspaceID: api.workspace.id, name: "track only", permissions: ["users.track"])
            let reply = try await api.post("/users/delete", #"{"external_ids": ["u1"]}"#, key: key)
            #expect(reply.status == .forbidden)
            #expect(reply.json["message"] == .string("Access Denied"))
            #expect(reply.json["errors"]?.arrayValue?.first?.stringValue?.contains("users.delete") == true)
            let track = try await api.post("/users/track", #"{"attributes": [{"external_id": "u1"}]}"#, key: key)
            #expect(track.status == .created)
        }
    }

    @Test("Braze's legacy api_key in the body still works", arguments: TestDatabases.all())
    func legacyKey(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            let reply = try await api.post(
                "/users/track", #"{"api_key": "\#(api.adminKey)", "attributes": [{"external_id": "legacy"}]}"#, key: "")
            #expect(reply.status == .created)
        }
    }

    @Test("keys of one workspace never see another workspace's users", arguments: TestDatabases.all())
    func workspaceIsolation(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            _ = try await api.post("/users/track", #"{"attributes": [{"external_id": "u1", "first_name": "A"}]}"#)
            let other = try await api.workspaces.createWorkspace(name: "other")
            let (_, key) = try await api.workspaces.createAPIKey(workspaceID: other.id, name: "other", permissions: ["all"])
            let reply = try await api.post("/users/export/ids", #"{"external_ids": ["u1"]}"#, key: key)
            #expect(reply.json["users"] == .array([]))
            #expect(reply.json["invalid_user_ids"] == .array([.string("u1")]))
        }
    }

    @Test("IP allowlist matching", arguments: [
        ("10.1.2.3", ["10.0.0.0/8"], true), ("11.1.2.3", ["10.0.0.0/8"], false), ("192.168.1.7", ["192.168.1.7"], true),
        ("::1", ["::1/128"], true), ("2001:db8::1", ["2001:db8::/32"], true), ("127.0.0.1", [], true),
    ])
    func allowlistMatching(address: String, entries: [String], allowed: Bool) {
        #expect(IPAllowlist.allows(address, entries: entries) == allowed)
    }
}
