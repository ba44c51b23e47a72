import ArgumentParser
import BeckonConnectedContent
import BeckonCore
import BeckonOutboundHTTP
import BeckonServer
import BeckonStorage
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus

/// `beckon serve`: the HTTP server.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the Beckon server (creates the database and an admin key on first start).")

    @Option(help: "Address to listen on (env BECKON_HOST).")
    var host: String?

    @Option(help: "Port to listen on (env BECKON_PORT).")
    var port: Int?

    @OptionGroup var database: DatabaseOptions

    @Flag(help: "Load the demo dataset (a Korean fashion shop) when the database is empty.")
    var demo = false

    @Option(name: .customLong("demo-users"), help: "Users in the demo dataset.")
    var demoUsers = 10_000

    @Option(
        name: .customLong("allow-host"),
        help: "HOST or HOST:PORT that Connected Content may call beyond public addresses on ports 80/443, for every workspace (repeatable; env BECKON_ALLOW_HOSTS, comma-separated).")
    var allowHosts: [String] = []

    @Option(
        name: .customLong("activity-log-retention-days"),
        help: "Days the message activity log keeps entries (env BECKON_ACTIVITY_LOG_RETENTION_DAYS; default 30).")
    var activityLogRetentionDays: Int?

    @Option(
        name: .customLong("node-id"),
        help: "This node's id when several share one PostgreSQL database (env BECKON_NODE_ID; default host name and process id).")
    var nodeID: String?

    @Option(
        name: .customLong("extra-ca-file"),
        help: "PEM file of CA certificates trusted beside the system roots for outbound TLS: push providers, webhooks, Connected Content (env BECKON_EXTRA_CA_FILE).")
    var extraCAFile: String?

    @Option(
        name: .customLong("lease-seconds"),
        help: "How long a node's claim on a message holds without renewal; another node takes it over after that (default 30).")
    var leaseSeconds: Int?

    @Option(
        name: .customLong("send-concurrency"),
        help: "Messages this node renders and sends at once; for push, the HTTP/2 streams in flight (env BECKON_SEND_CONCURRENCY; default 256).")
    var sendConcurrency: Int?

    @Option(name: .customLong("public-url"), help: "The URL clients use to reach this server; templates may call it (env BECKON_PUBLIC_URL).")
    var publicURL: String?

    func run() async throws {
        var configuration = ServerConfiguration()
        try database.apply(to: &configuration)
        let environment = ProcessInfo.processInfo.environment
        configuration.host = host ?? environment["BECKON_HOST"] ?? configuration.host
        if let port = port ?? environment["BECKON_PORT"].flatMap(Int.init) {
            guard (1...65535).contains(port) else { throw ValidationError("--port must be 1 to 65535, got \(port)") }
            configuration.port = port
        }
        configuration.adminKey = environment["BECKON_ADMIN_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        configuration.demo = demo
        guard demoUsers >= 1, demoUsers <= 5_000_000 else { throw ValidationError("--demo-users must be 1 to 5,000,000") }
        configuration.demoUsers = demoUsers
        let environmentHosts = (environment["BECKON_ALLOW_HOSTS"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        configuration.allowedHosts = allowHosts + environmentHosts.filter { !$0.isEmpty }
        configuration.publicURL = publicURL ?? environment["BECKON_PUBLIC_URL"].flatMap { $0.isEmpty ? nil : $0 }
        if let url = configuration.publicURL, URLComponents(string: url)?.host?.isEmpty ?? true {
            throw ValidationError("--public-url must be an absolute URL such as https://beckon.example.com, got '\(url)'")
        }
        configuration.secretKey = environment["BECKON_SECRET_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        if let days = activityLogRetentionDays ?? environment["BECKON_ACTIVITY_LOG_RETENTION_DAYS"].flatMap(Int.init) {
            guard (1...3_650).contains(days) else { throw ValidationError("--activity-log-retention-days must be 1 to 3650, got \(days)") }
            configuration.activityLogRetentionDays = days
        }
        configuration.nodeID = nodeID ?? environment["BECKON_NODE_ID"].flatMap { $0.isEmpty ? nil : $0 }
        configuration.extraCAFile = extraCAFile ?? environment["BECKON_EXTRA_CA_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        if let id = configuration.nodeID, id.count > 200 || id.contains(where: { $0.isWhitespace }) {
            throw ValidationError("--node-id must be at most 200 characters without spaces")
        }
        if let text = environment["BECKON_SEND_CONCURRENCY"], sendConcurrency == nil, Int(text) == nil {
            throw ValidationError("BECKON_SEND_CONCURRENCY must be a whole number from 1 to 4096, got '\(text)'")
        }
        if let concurrency = sendConcurrency ?? environment["BECKON_SEND_CONCURRENCY"].flatMap(Int.init) {
            guard (1...4_096).contains(concurrency) else { throw ValidationError("--send-concurrency must be 1 to 4096, got \(concurrency)") }
            configuration.sendConcurrency = concurrency
        }
        if let seconds = leaseSeconds {
            guard (2...3_600).contains(seconds) else { throw ValidationError("--lease-seconds must be 2 to 3600, got \(seconds)") }
            configuration.leaseSeconds = seconds
        }

        let lock: DataDirectoryLock?
        do {
            lock = configuration.databaseURL == nil ? try DataDirectoryLock(directory: configuration.dataDirectory) : nil
        } catch let error as AdminError {
            throw ValidationError(error.description)
        }
        defer { withExtendedLifetime(lock) {} }
        let logger = CommandLogging.makeLogger()
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let clock = SystemClock()
        let db = try await BeckonServer.openDatabase(configuration, logger: logger)
        let stores = BeckonServer.Stores(database: db, clock: clock)
        let firstStart = try await BeckonServer.provisionIfEmpty(configuration, workspaces: stores.workspaces)
        if let firstStart {
            say("""
                Beckon created workspace '\(firstStart.workspace.name)' (SDK app id \(firstStart.workspace.appID)).
                Admin REST API key (all permissions; shown once, also saved to \(firstStart.keyFile)):

                    \(firstStart.apiKey)

                """)
            if configuration.demo {
                let report = try await DemoLoader(users: stores.users, clock: clock).load(
                    workspaceID: firstStart.workspace.id, users: configuration.demoUsers) { line in say(line) }
                say(report)
            }
        } else if configuration.demo {
            say("--demo ignored: the database already has data.")
        }
        say("Beckon listening on http://\(configuration.host):\(configuration.port)")
        let connectedContent: ConnectedContentComponents
        do {
            connectedContent = try BeckonServer.makeConnectedContent(configuration, database: db, clock: clock, logger: logger)
        } catch let error as HostAllowlistError {
            throw ValidationError("--allow-host / BECKON_ALLOW_HOSTS: \(error.description)")
        } catch let error as SecretBoxError {
            throw ValidationError("BECKON_SECRET_KEY or \(configuration.secretKeyPath): \(error.description)")
        }
        let app = BeckonServer.makeApplication(
            configuration, stores: stores, connectedContent: connectedContent, clock: clock, logger: logger,
            metricsText: { registry.emitToString() })
        do {
            try await app.runService()
        } catch {
            try? await connectedContent.service.shutdown()
            try? await db.close()
            throw error
        }
        try await connectedContent.service.shutdown()
        try await db.close()
    }
}

/// Writes a line to standard output at once (no buffering: the server runs for a long time after).
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

/// Logging for every command: `BECKON_LOG_LEVEL` (trace … critical), info by default.
enum CommandLogging {
    static func makeLogger() -> Logger {
        var logger = Logger(label: "beckon")
        let level = ProcessInfo.processInfo.environment["BECKON_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
        logger.logLevel = level ?? .info
        return logger
    }
}
