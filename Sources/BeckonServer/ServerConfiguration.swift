import Foundation

/// Everything `beckon serve` is configured with, read once from flags and environment by the CLI.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// Folder for the embedded database and the first-start key file.
    public var dataDirectory = "./beckon-data"
    /// `postgres://…` selects PostgreSQL; `nil` uses the embedded SQLite database.
    public var databaseURL: String?
    /// The key text to use for the first-start admin key (`BECKON_ADMIN_KEY`).
    public var adminKey: String?
    /// Load the demo dataset when the database is empty.
    public var demo = false
    public var demoUsers = 10_000
    /// `FULL` makes SQLite commits survive power loss, not only a process crash.
    public var sqliteSynchronousFull = false
    public var postgresConnections = 8
    /// `host` or `host:port` entries every workspace's Connected Content and webhooks may call
    /// beyond public addresses on ports 80/443 (`--allow-host`, `BECKON_ALLOW_HOSTS`).
    public var allowedHosts: [String] = []
    /// Where clients reach this server; its host and port are allowlisted so templates can call
    /// Beckon's own REST API. Defaults to `http://host:port` (127.0.0.1 when listening on all addresses).
    public var publicURL: String?
    /// Base64 32-byte key sealing stored credentials (`BECKON_SECRET_KEY`); when `nil`, a key file
    /// in the data folder is used, created on first start.
    public var secretKey: String?
    /// Days the message activity log keeps entries.
    public var activityLogRetentionDays = 30
    /// This node's id among nodes sharing a database (`--node-id`, `BECKON_NODE_ID`; default host name and process id).
    public var nodeID: String?
    /// How long a claim on a message holds without renewal (`--lease-seconds`, default 30).
    public var leaseSeconds = 30
    /// Messages this node renders and sends at once (`--send-concurrency`, `BECKON_SEND_CONCURRENCY`):
    /// for push, the HTTP/2 streams a node keeps in flight.
    public var sendConcurrency = 256
    /// A PEM file of CA certificates trusted beside the system roots for outbound TLS (push
    /// providers, webhooks, Connected Content): `--extra-ca-file`, `BECKON_EXTRA_CA_FILE`.
    public var extraCAFile: String?

    public init() {}

    /// The SQLite file inside the data folder.
    public var sqlitePath: String { (dataDirectory as NSString).appendingPathComponent("beckon.sqlite") }

    /// The key file sealing stored credentials when `BECKON_SECRET_KEY` is not set (mode 0600).
    public var secretKeyPath: String { (dataDirectory as NSString).appendingPathComponent("secret-key") }

    /// The URL templates use to call this server.
    public var effectivePublicURL: String {
        if let publicURL { return publicURL }
        let shownHost = ["0.0.0.0", "::", ""].contains(host) ? "127.0.0.1" : host
        return "http://\(shownHost.contains(":") ? "[\(shownHost)]" : shownHost):\(port)"
    }

    /// Where the first-start admin key is written (mode 0600).
    public var adminKeyPath: String { (dataDirectory as NSString).appendingPathComponent("admin-api-key") }
}
