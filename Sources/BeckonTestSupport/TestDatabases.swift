import BeckonPostgres
import BeckonSQLite
import BeckonStorage
import Foundation

/// A database backend the storage and API tests run against (shared by every test target).
///
/// Run a test on every backend with `@Test(arguments: TestDatabases.all())`, then get a fresh,
/// empty database with `kind.withDatabase { db in … }` (or `make()` + `cleanup()`).
public enum TestDatabaseKind: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// SQLite in memory: always available.
    case sqlite
    /// PostgreSQL at `BECKON_TEST_POSTGRES_URL` (started by `scripts/test`), one new database per test.
    case postgres

    public var description: String { rawValue }
}

/// Which backends a test run covers, from the environment `scripts/test` sets.
public enum TestDatabases {
    /// The server `scripts/test` started, e.g. `postgres://beckon@127.0.0.1:5433/beckon_test`.
    public static var postgresURL: String? {
        guard let url = ProcessInfo.processInfo.environment["BECKON_TEST_POSTGRES_URL"], !url.isEmpty else { return nil }
        return url
    }

    /// Whether this run is CI, where skipping PostgreSQL is a failure rather than a convenience.
    public static var isCI: Bool {
        guard let value = ProcessInfo.processInfo.environment["CI"] else { return false }
        return !["", "0", "false", "no"].contains(value.lowercased())
    }

    /// The backends to test: SQLite always; PostgreSQL when `BECKON_TEST_POSTGRES_URL` is set.
    ///
    /// Without the URL, PostgreSQL cases are left out locally, but kept on CI, where they fail.
    public static func all() -> [TestDatabaseKind] {
        postgresURL != nil || isCI ? [.sqlite, .postgres] : [.sqlite]
    }

    /// Only the PostgreSQL backend (empty when it is not available locally), for driver-specific tests.
    public static func postgresOnly() -> [TestDatabaseKind] {
        all().filter { $0 == .postgres }
    }
}

/// A fresh, empty database made for one test. Call `cleanup()` when done (`withDatabase` does).
public struct TestDatabase: Sendable {
    public let kind: TestDatabaseKind
    public let database: any SQLDatabase
    /// The PostgreSQL URL of this database, for tests that start `beckon serve` processes on it.
    public var url: String?
    fileprivate let dispose: @Sendable () async throws -> Void

    /// Closes the database and drops what was created for it.
    public func cleanup() async throws {
        try await dispose()
    }
}

extension TestDatabaseKind {
    /// Makes a fresh, empty database of this kind. Pair it with `cleanup()`.
    public func make() async throws -> TestDatabase {
        switch self {
        case .sqlite:
            let storage = try SQLiteStorage.inMemory()
            return TestDatabase(kind: self, database: storage) { try await storage.close() }
        case .postgres:
            return try await PostgresTestServer.shared.makeDatabase()
        }
    }

    /// Runs `body` with a fresh, empty database of this kind, cleaned up afterwards even when `body` throws.
    public func withDatabase<T>(_ body: (any SQLDatabase) async throws -> T) async throws -> T {
        let database = try await make()
        let result: T
        do {
            result = try await body(database.database)
        } catch {
            try? await database.cleanup()
            throw error
        }
        try await database.cleanup()
        return result
    }
}

/// Makes one uniquely named database per test on the server at `BECKON_TEST_POSTGRES_URL`,
/// so tests running in parallel never see each other's tables, rows or advisory locks.
public actor PostgresTestServer {
    public static let shared = PostgresTestServer()

    /// One connection pool to the base database, shared by all tests, that creates and drops databases.
    private var admin: Task<PostgresStorage, any Error>?

    public func makeDatabase() async throws -> TestDatabase {
        guard let urlText = TestDatabases.postgresURL else {
            throw TestDatabaseError(
                "BECKON_TEST_POSTGRES_URL is not set, but CI is: PostgreSQL must be tested on CI (run scripts/test)"
            )
        }
        let admin = try await adminStorage(urlText)
        // The creation time in the name lets a later run drop what a crashed run left behind.
        let created = Int(Date().timeIntervalSince1970)
        let name = "\(Self.prefix)\(created)_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        try await admin.withoutTransaction { try $0.execute("CREATE DATABASE \(name)") }

        var url = try PostgresURL(urlText)
        url.database = name
        let storage = PostgresStorage(url: url, maximumConnections: 4)
        let base = urlText.split(separator: "?", maxSplits: 1)[0]
        let ownURL = base[..<(base.lastIndex(of: "/") ?? base.endIndex)] + "/" + name
        return TestDatabase(kind: .postgres, database: storage, url: String(ownURL)) {
            try await storage.close()
            // DROP DATABASE waits for a checkpoint (about a second); tests do not wait for it.
            // Drops still pending when the test process exits are done by the next run's sweep
            // (or vanish with the throw-away cluster of scripts/test).
            Task { try? await admin.withoutTransaction { try $0.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") } }
        }
    }

    private static let prefix = "beckon_t_"

    /// Drops test databases older than an hour: left behind by runs that crashed or exited early.
    private static func sweep(_ admin: PostgresStorage) async throws {
        let cutoff = Int(Date().timeIntervalSince1970) - 3600
        let names = try await admin.read { c in
            try c.query("SELECT datname FROM pg_database WHERE datname LIKE 'beckon\\_t\\_%'", []).compactMap { $0[0].string }
        }
        for name in names {
            let created = name.dropFirst(prefix.count).split(separator: "_").first.flatMap { Int($0) }
            guard let created, created < cutoff else { continue }
            try? await admin.withoutTransaction { try $0.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
        }
    }

    private func adminStorage(_ url: String) async throws -> PostgresStorage {
        if let admin { return try await admin.value }
        let task = Task {
            let storage = try await PostgresStorage.connect(url: url, maximumConnections: 2)
            try? await Self.sweep(storage)
            return storage
        }
        admin = task
        return try await task.value
    }
}

/// A test database that cannot be made (PostgreSQL required but not configured).
public struct TestDatabaseError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
