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

    public init() {}

    /// The SQLite file inside the data folder.
    public var sqlitePath: String { (dataDirectory as NSString).appendingPathComponent("beckon.sqlite") }

    /// Where the first-start admin key is written (mode 0600).
    public var adminKeyPath: String { (dataDirectory as NSString).appendingPathComponent("admin-api-key") }
}
