import ArgumentParser
import BeckonServer
import Foundation

/// Where Beckon's data lives; shared by every command that opens the database.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "Folder of the embedded SQLite database (env BECKON_DATA_DIR; default ./beckon-data).")
    var dataDirectory: String?

    @Option(name: .customLong("database"), help: "postgres://user:pass@host:port/db to use PostgreSQL (env DATABASE_URL).")
    var databaseURL: String?

    @Flag(name: .customLong("sqlite-synchronous-full"), help: "Make SQLite commits survive power loss (fsync per commit), not only a crash.")
    var sqliteSynchronousFull = false

    /// Applies flags, then environment variables, over the defaults.
    func apply(to configuration: inout ServerConfiguration) throws {
        let environment = ProcessInfo.processInfo.environment
        if let directory = dataDirectory ?? environment["BECKON_DATA_DIR"], !directory.isEmpty {
            configuration.dataDirectory = directory
        }
        if let url = databaseURL ?? environment["DATABASE_URL"], !url.isEmpty {
            guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
                throw ValidationError("--database must be a postgres:// URL, got '\(url)'")
            }
            configuration.databaseURL = url
        }
        configuration.sqliteSynchronousFull = sqliteSynchronousFull
    }
}
