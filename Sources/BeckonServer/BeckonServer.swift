import BeckonAPI
import BeckonChannels
import BeckonMessaging
import BeckonConnectedContent
import BeckonCore
import BeckonOutboundHTTP
import BeckonPostgres
import BeckonSQLite
import BeckonSegments
import BeckonStorage
import Foundation
import Hummingbird
import Logging

/// The composition root: opens the database, applies migrations, provisions the first workspace,
/// and builds the HTTP application. Nothing else in Beckon reads configuration.
public enum BeckonServer {
    /// Opens the configured database (SQLite under the data folder, or PostgreSQL) and migrates it.
    public static func openDatabase(_ configuration: ServerConfiguration, logger: Logger) async throws -> any SQLDatabase {
        let database: any SQLDatabase
        if let url = configuration.databaseURL {
            database = try await PostgresStorage.connect(
                url: url, maximumConnections: configuration.postgresConnections, logger: logger)
            logger.info("using PostgreSQL", metadata: ["url": "\((try? PostgresURL(url))?.description ?? "postgres")"])
        } else {
            try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
            database = try SQLiteStorage(
                path: configuration.sqlitePath, synchronous: configuration.sqliteSynchronousFull ? .full : .normal)
            logger.info("using SQLite", metadata: ["path": "\(configuration.sqlitePath)"])
        }
        let applied = try await Migrator.migrate(database)
        if !applied.isEmpty { logger.info("applied migrations", metadata: ["versions": "\(applied)"]) }
        return database
    }

    /// What the first start created, so the CLI can show the key once.
    public struct FirstStart: Sendable {
        public let workspace: Workspace
        public let apiKey: String
        public let keyFile: String
    }

    /// On an empty database: creates the default workspace and an all-permissions key (the value of
    /// `BECKON_ADMIN_KEY` when set), and writes the key to a 0600 file in the data folder.
    public static func provisionIfEmpty(
        _ configuration: ServerConfiguration, workspaces: WorkspaceStore
    ) async throws -> FirstStart? {
        guard try await workspaces.isEmpty() else { return nil }
        let workspace = try await workspaces.createWorkspace(name: "default", timeZone: "Asia/Seoul")
        let (_, key) = try await workspaces.createAPIKey(
            workspaceID: workspace.id, name: "admin (first start)", permissions: Permission.all, key: configuration.adminKey)
        try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        let path = configuration.adminKeyPath
        guard FileManager.default.createFile(atPath: path, contents: Data((key + "\n").utf8), attributes: [.posixPermissions: 0o600])
        else { throw AdminError("cannot write the admin key file \(path)") }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        return FirstStart(workspace: workspace, apiKey: key, keyFile: path)
    }

    /// The stores over one database, shared by the HTTP API, the CLI and the demo loader.
    public struct Stores: Sendable {
        public let database: any SQLDatabase
        public let workspaces: WorkspaceStore
        public let users: UserStore
        public let segments: SegmentService

        public init(database: any SQLDatabase, clock: any BeckonClock) {
            self.database = database
            self.workspaces = WorkspaceStore(database: database, clock: clock)
            self.users = UserStore(database: database, clock: clock)
            self.segments = SegmentService(database: database, clock: clock, users: users)
        }
    }

    /// The key sealing stored credentials: `BECKON_SECRET_KEY`, else the data folder's key file
    /// (created with mode 0600 when missing).
    public static func secretBox(_ configuration: ServerConfiguration) throws -> SecretBox {
        if let key = configuration.secretKey { return try SecretBox(base64Key: key) }
        let path = configuration.secretKeyPath
        if let data = FileManager.default.contents(atPath: path) {
            return try SecretBox(base64Key: String(decoding: data, as: UTF8.self))
        }
        try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        let key = SecretBox.generateKey()
        guard FileManager.default.createFile(atPath: path, contents: Data((key + "\n").utf8), attributes: [.posixPermissions: 0o600])
        else { throw AdminError("cannot write the secret key file \(path)") }
        return try SecretBox(base64Key: key)
    }

    /// Connected Content over `database`, allowlisting the configured hosts and Beckon's own URL.
    /// Call `service.shutdown()` when done.
    public static func makeConnectedContent(
        _ configuration: ServerConfiguration, database: any SQLDatabase, clock: any BeckonClock, logger: Logger
    ) throws -> ConnectedContentComponents {
        var settings = ConnectedContentConfiguration()
        var hosts = try HostAllowlist(parsing: configuration.allowedHosts)
        if let own = URLComponents(string: configuration.effectivePublicURL), let host = own.host, !host.isEmpty {
            let port = own.port ?? (own.scheme == "https" ? 443 : 80)
            hosts = hosts.union(HostAllowlist(entries: [try HostAllowlist.parse(host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")]))
        }
        settings.allowedHosts = hosts
        if let path = configuration.extraCAFile { settings.extraTrustRoots = try ExtraTrustRoots(pemFile: path) }
        return ConnectedContentComponents(
            database: database, secrets: try secretBox(configuration), clock: clock, configuration: settings, logger: logger)
    }

    /// The channels this server sends on, over Connected Content's outbound client (one network
    /// policy and connection pool for everything Beckon calls).
    public static func makeChannels(
        _ connectedContent: ConnectedContentComponents, push: PushStore, sms: SMSStore, clock: any BeckonClock, webhookTimeoutMilliseconds: Int = 10_000,
        webhookConcurrencyPerCampaign: Int = 32
    ) -> ChannelCatalog {
        let service = connectedContent.service
        let allowlist: @Sendable (Int64) async throws -> HostAllowlist = { try await service.workspaceAllowlist($0) }
        return ChannelCatalog([
            WebhookChannel(
                outbound: connectedContent.outbound, allowlist: allowlist, timeoutMilliseconds: webhookTimeoutMilliseconds,
                concurrencyPerCampaign: webhookConcurrencyPerCampaign),
            PushChannel(outbound: connectedContent.outbound, allowlist: allowlist, directory: push, clock: clock),
            SMSChannel(outbound: connectedContent.outbound, allowlist: allowlist, directory: sms, clock: clock),
            KakaoChannel(outbound: connectedContent.outbound, allowlist: allowlist, directory: sms, clock: clock),
        ])
    }

    /// The campaign components over `database`: push store, channels and the send pipeline.
    public static func makeCampaigns(
        database: any SQLDatabase, users: UserStore, segments: SegmentService, connectedContent: ConnectedContentComponents, clock: any BeckonClock,
        configuration: SendPipelineConfiguration, webhookTimeoutMilliseconds: Int = 10_000, webhookConcurrencyPerCampaign: Int = 32, logger: Logger
    ) -> CampaignComponents {
        let push = PushStore(database: database, box: connectedContent.secrets, clock: clock)
        let sms = SMSStore(database: database, box: connectedContent.secrets, clock: clock)
        return CampaignComponents(
            database: database, users: users, segments: segments, connectedContent: connectedContent,
            channels: makeChannels(
                connectedContent, push: push, sms: sms, clock: clock, webhookTimeoutMilliseconds: webhookTimeoutMilliseconds,
                webhookConcurrencyPerCampaign: webhookConcurrencyPerCampaign),
            push: push, sms: sms, clock: clock, configuration: configuration, logger: logger)
    }

    /// The send pipeline's settings from the server configuration.
    public static func pipelineConfiguration(_ configuration: ServerConfiguration) -> SendPipelineConfiguration {
        var pipeline = SendPipelineConfiguration()
        pipeline.node = NodeIdentity(nodeID: configuration.nodeID ?? NodeIdentity.defaultNodeID, leaseSeconds: configuration.leaseSeconds)
        pipeline.concurrency = configuration.sendConcurrency
        return pipeline
    }

    /// The Hummingbird application serving Beckon's API on `host:port`.
    public static func makeApplication(
        _ configuration: ServerConfiguration, stores: Stores, connectedContent: ConnectedContentComponents, clock: any BeckonClock,
        logger: Logger, metricsText: @escaping @Sendable () async -> String
    ) -> some ApplicationProtocol {
        let campaigns = makeCampaigns(
            database: stores.database, users: stores.users, segments: stores.segments, connectedContent: connectedContent, clock: clock,
            configuration: pipelineConfiguration(configuration), logger: logger)
        let api = BeckonAPI(
            database: stores.database, workspaces: stores.workspaces, users: stores.users, segments: stores.segments,
            connectedContent: connectedContent, campaigns: campaigns, clock: clock, metricsText: metricsText)
        let snapshots = SegmentSnapshotService(segments: stores.segments, database: stores.database, clock: clock, logger: logger)
        let statistics = QueryStatisticsService(database: stores.database, logger: logger)
        let retention = RetentionService(
            database: stores.database, activityLog: connectedContent.activityLog, retentionDays: configuration.activityLogRetentionDays, clock: clock, logger: logger)
        return Application(
            router: api.makeRouter(),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "Beckon"),
            services: [snapshots, statistics, retention, campaigns.pipeline],
            logger: logger)
    }
}
