import BeckonStorage
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// The scale-out database: PostgreSQL through a small pool of PostgresNIO connections.
///
/// Transaction bodies are synchronous. Each one runs on a thread of the storage's own blocking
/// thread pool (one thread per connection), never on Swift's cooperative pool or an event loop;
/// every statement blocks that thread while PostgresNIO talks to the server.
///
/// Create it with `PostgresStorage.connect(url:)` (checks the server answers) or `init(url:)`
/// (connects lazily), and call `close()` when done: it stops the pool and its threads.
public final class PostgresStorage: SQLDatabase {
    /// Where this storage connects (the password is hidden in its description).
    public let url: PostgresURL
    /// The most connections (and blocking threads) this storage uses at once.
    public let maximumConnections: Int

    private let client: PostgresClient
    private let threads: NIOThreadPool
    private let runTask: Task<Void, Never>
    private let logger: Logger
    private let closed = Atomic<Bool>(false)

    public var dialect: SQLDialect { .postgres }

    /// Parses `url` (`postgres://user:password@host:port/database`) and starts the connection pool.
    ///
    /// No connection is made yet: use `connect(url:)` to fail fast when the server is unreachable.
    /// - Throws: `PostgresURLError` when the URL is malformed.
    public convenience init(
        url: String,
        maximumConnections: Int = 8,
        logger: Logger = Logger(label: "beckon.postgres")
    ) throws {
        self.init(url: try PostgresURL(url), maximumConnections: maximumConnections, logger: logger)
    }

    /// Starts the connection pool for `url`; no connection is made until the first transaction.
    public init(url: PostgresURL, maximumConnections: Int = 8, logger: Logger = Logger(label: "beckon.postgres")) {
        precondition(maximumConnections >= 1, "maximumConnections must be at least 1")
        self.url = url
        self.maximumConnections = maximumConnections
        self.logger = logger

        var configuration = PostgresClient.Configuration(
            host: url.host,
            port: url.port,
            username: url.username,
            password: url.password,
            database: url.database,
            tls: .disable
        )
        configuration.options.minimumConnections = 0
        configuration.options.maximumConnections = maximumConnections
        configuration.options.connectTimeout = .seconds(10)
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client

        threads = NIOThreadPool(numberOfThreads: maximumConnections)
        threads.start()
        // The pool works only while `run()` runs; `close()` cancels it.
        runTask = Task { await client.run() }
    }

    /// Opens a storage and checks that the server accepts a connection, so a wrong host,
    /// port, user or database fails here with a clear error instead of at the first query.
    public static func connect(
        url: String,
        maximumConnections: Int = 8,
        logger: Logger = Logger(label: "beckon.postgres")
    ) async throws -> PostgresStorage {
        let storage = try PostgresStorage(url: url, maximumConnections: maximumConnections, logger: logger)
        do {
            try await storage.checkConnection()
        } catch {
            try? await storage.close()
            throw error
        }
        return storage
    }

    /// Opens one connection outside the pool, runs `SELECT 1` and closes it.
    public func checkConnection() async throws {
        let configuration = PostgresConnection.Configuration(
            host: url.host,
            port: url.port,
            username: url.username,
            password: url.password,
            database: url.database,
            tls: .disable
        )
        do {
            let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
            do {
                _ = try await connection.query("SELECT 1", logger: logger).get()
            } catch {
                try? await connection.close()
                throw error
            }
            try await connection.close()
        } catch {
            let reason = (PostgresErrors.sqlError(error, sql: "") as? SQLError)?.message ?? "\(error)"
            throw SQLError(message: "cannot connect to \(url): \(reason)", sql: "")
        }
    }

    deinit {
        runTask.cancel()
        if !closed.load(ordering: .relaxed) {
            threads.shutdownGracefully { _ in }
        }
    }

    public func write<T: Sendable>(_ body: @Sendable @escaping (any SQLConnection) throws -> T) async throws -> T {
        try await transaction(begin: "BEGIN", body)
    }

    public func read<T: Sendable>(_ body: @Sendable @escaping (any SQLConnection) throws -> T) async throws -> T {
        try await transaction(begin: "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", body)
    }

    /// Runs `body` on a connection in autocommit mode: each statement commits on its own.
    ///
    /// For statements PostgreSQL refuses inside a transaction block: `CREATE DATABASE`,
    /// `CREATE INDEX CONCURRENTLY`, `VACUUM`.
    public func withoutTransaction<T: Sendable>(
        _ body: @Sendable @escaping (any SQLConnection) throws -> T
    ) async throws -> T {
        try await transaction(begin: nil, body)
    }

    public func close() async throws {
        guard closed.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        runTask.cancel()
        await runTask.value
        try await threads.shutdownGracefully()
    }

    // MARK: - Transactions

    private func transaction<T: Sendable>(
        begin: String?,
        _ body: @Sendable @escaping (any SQLConnection) throws -> T
    ) async throws -> T {
        guard !closed.load(ordering: .relaxed) else {
            throw SQLError(message: "the PostgreSQL storage is closed", sql: "")
        }
        let logger = self.logger
        let threads = self.threads
        do {
            return try await client.withConnection { connection in
                try await threads.runIfActive {
                    try Self.run(connection: connection, logger: logger, begin: begin, body)
                }
            }
        } catch let error as PSQLError {
            throw PostgresErrors.sqlError(error, sql: "")
        }
    }

    /// Runs on a blocking thread: BEGIN, the body, then COMMIT, or ROLLBACK when the body throws.
    private static func run<T>(
        connection: PostgresConnection,
        logger: Logger,
        begin: String?,
        _ body: (any SQLConnection) throws -> T
    ) throws -> T {
        let sqlConnection = PostgresSQLConnection(connection: connection, logger: logger)
        guard let begin else { return try body(sqlConnection) }

        try sqlConnection.execute(begin)
        do {
            let result = try body(sqlConnection)
            // COMMIT of a transaction in which a statement failed (and the body caught the
            // error) silently rolls back: report it instead of pretending it committed.
            if try sqlConnection.command("COMMIT") == "ROLLBACK" {
                throw SQLError(
                    message: "the transaction was rolled back because one of its statements failed"
                        + " (use a SAVEPOINT to recover from a failed statement)",
                    sql: "COMMIT"
                )
            }
            return result
        } catch {
            // After a failed COMMIT there is no transaction left; the ROLLBACK is then a no-op.
            try? sqlConnection.execute("ROLLBACK")
            throw error
        }
    }
}
