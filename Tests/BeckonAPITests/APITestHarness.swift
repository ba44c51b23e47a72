import BeckonAPI
import BeckonMessaging
import BeckonConnectedContent
import BeckonCore
import BeckonSegments
import BeckonServer
import BeckonStorage
import BeckonTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOFoundationCompat
import Testing

/// A Beckon API over a fresh database, driven through the real router in-process.
struct APIHarness {
    static let now = BrazeTime.parse("2025-06-30T15:00:00Z")!

    let client: any TestClientProtocol
    let adminKey: String
    let workspace: Workspace
    let workspaces: WorkspaceStore
    let users: UserStore
    let segments: SegmentService
    let connectedContent: ConnectedContentComponents
    let campaigns: CampaignComponents
    let clock: FixedClock
    /// The database under the API, for tests that inspect or damage stored rows.
    let database: any SQLDatabase
    /// The same API, for serving it on a real port (`LocalHTTPServer`).
    let api: BeckonAPI

    /// Runs `body` against a migrated database with one workspace and an all-permissions key.
    static func run(
        _ kind: TestDatabaseKind, configuration: APIConfiguration = APIConfiguration(),
        connectedContent connectedContentConfiguration: ConnectedContentConfiguration = ConnectedContentConfiguration(),
        _ body: @Sendable (APIHarness) async throws -> Void
    ) async throws {
        try await kind.withDatabase { database in
            try await Migrator.migrate(database)
            let clock = FixedClock(now)
            let workspaces = WorkspaceStore(database: database, clock: clock)
            let users = UserStore(database: database, clock: clock)
            let workspace = try await workspaces.createWorkspace(name: "shop", timeZone: "Asia/Seoul")
            let (_, key) = try await workspaces.createAPIKey(workspaceID: workspace.id, name: "admin", permissions: ["all"])
            let segments = SegmentService(database: database, clock: clock, users: users)
            let connectedContent = ConnectedContentComponents(
                database: database, secrets: try SecretBox(base64Key: SecretBox.generateKey()), clock: clock,
                configuration: connectedContentConfiguration, logger: Logger(label: "test"))
            var pipeline = SendPipelineConfiguration()
            pipeline.retryBaseMilliseconds = 1_000
            let campaigns = BeckonServer.makeCampaigns(
                database: database, users: users, segments: segments, connectedContent: connectedContent, clock: clock,
                configuration: pipeline, webhookTimeoutMilliseconds: 2_000, webhookConcurrencyPerCampaign: 8, logger: Logger(label: "test"))
            let api = BeckonAPI(
                database: database, workspaces: workspaces, users: users, segments: segments, connectedContent: connectedContent,
                campaigns: campaigns, clock: clock, configuration: configuration, metricsText: { "beckon_test_metric 1\n" })
            let app = Application(router: api.makeRouter())
            do {
                try await app.test(.router) { client in
                    try await body(APIHarness(
                        client: client, adminKey: key, workspace: workspace, workspaces: workspaces, users: users, segments: segments,
                        connectedContent: connectedContent, campaigns: campaigns, clock: clock, database: database, api: api))
                }
            } catch {
                try await connectedContent.service.shutdown()
                throw error
            }
            try await connectedContent.service.shutdown()
        }
    }

    /// A response read into memory.
    struct Reply {
        let status: HTTPResponse.Status
        let json: JSONValue
        let text: String
        let headers: HTTPFields
    }

    /// POSTs `body` as JSON with `key` (the admin key when `nil`; no header when `""`) and `extraHeaders`.
    func post(
        _ path: String, _ body: String, key: String? = nil, contentType: String = "application/json", extraHeaders: [String: String] = [:]
    ) async throws -> Reply {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        for (name, value) in extraHeaders { headers[HTTPField.Name(name)!] = value }
        let usedKey = key ?? adminKey
        if !usedKey.isEmpty { headers[.authorization] = "Bearer \(usedKey)" }
        return try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
            Self.reply(response)
        }
    }

    func put(_ path: String, _ body: String, key: String? = nil) async throws -> Reply {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        let usedKey = key ?? adminKey
        if !usedKey.isEmpty { headers[.authorization] = "Bearer \(usedKey)" }
        return try await client.execute(uri: path, method: .put, headers: headers, body: ByteBuffer(string: body)) { response in
            Self.reply(response)
        }
    }

    func delete(_ path: String, key: String? = nil) async throws -> Reply {
        var headers = HTTPFields()
        let usedKey = key ?? adminKey
        if !usedKey.isEmpty { headers[.authorization] = "Bearer \(usedKey)" }
        return try await client.execute(uri: path, method: .delete, headers: headers) { response in Self.reply(response) }
    }

    func get(_ path: String, key: String? = nil) async throws -> Reply {
        var headers = HTTPFields()
        let usedKey = key ?? adminKey
        if !usedKey.isEmpty { headers[.authorization] = "Bearer \(usedKey)" }
        return try await client.execute(uri: path, method: .get, headers: headers) { response in Self.reply(response) }
    }

    private static func reply(_ response: TestResponse) -> Reply {
        let text = String(buffer: response.body)
        return Reply(status: response.status, json: (try? JSONValue.parse(Array(text.utf8))) ?? .null, text: text, headers: response.headers)
    }

    /// The exported profile of `externalID`, or `nil`.
    func export(_ externalID: String) async throws -> JSONValue? {
        let reply = try await post("/users/export/ids", #"{"external_ids": ["\#(externalID)"]}"#)
        return reply.json["users"]?.arrayValue?.first
    }
}
