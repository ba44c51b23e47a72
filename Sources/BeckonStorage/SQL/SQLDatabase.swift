/// A connection inside a transaction; valid only within the body it is passed to.
///
/// SQL is written once with `?` placeholders; backends rewrite them when their driver needs it.
public protocol SQLConnection {
    /// The dialect of the database this connection belongs to.
    var dialect: SQLDialect { get }
    /// Runs a statement that returns no rows.
    func execute(_ sql: String, _ arguments: [SQLValue]) throws
    /// Runs a query and returns all its rows.
    func query(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow]
}

extension SQLConnection {
    public func execute(_ sql: String) throws { try execute(sql, []) }

    /// Multi-row INSERT in chunks of 100 rows (one round trip each); `suffix` (such as
    /// `ON CONFLICT (id) DO NOTHING`) follows every chunk.
    public func insertRows(into table: String, columns: [String], rows: [[SQLValue]], suffix: String = "") throws {
        let tuple = "(" + Array(repeating: "?", count: columns.count).joined(separator: ", ") + ")"
        for start in stride(from: 0, to: rows.count, by: 100) {
            let chunk = rows[start..<min(start + 100, rows.count)]
            try execute(
                "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES \(Array(repeating: tuple, count: chunk.count).joined(separator: ", "))\(suffix)",
                chunk.flatMap { $0 })
        }
    }

    /// The first row of a query, or `nil`.
    public func first(_ sql: String, _ arguments: [SQLValue] = []) throws -> SQLRow? {
        try query(sql, arguments).first
    }
}

/// A database Beckon stores everything in: SQLite embedded, or PostgreSQL for several nodes.
///
/// Bodies are synchronous: the backend runs them on a thread of its own (GRDB's writer queue,
/// or a blocking thread pool for PostgreSQL), never on Swift's cooperative pool.
public protocol SQLDatabase: Sendable {
    var dialect: SQLDialect { get }
    /// Runs `body` in one write transaction, committed when it returns and rolled back when it throws.
    func write<T: Sendable>(_ body: @Sendable @escaping (any SQLConnection) throws -> T) async throws -> T
    /// Runs `body` against a consistent read snapshot.
    func read<T: Sendable>(_ body: @Sendable @escaping (any SQLConnection) throws -> T) async throws -> T
    /// Closes connections; the database is unusable afterwards.
    func close() async throws
}

/// A database failure with the statement that caused it (arguments left out: they may hold personal data).
public struct SQLError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public let sql: String

    public init(message: String, sql: String) {
        self.message = message
        self.sql = sql
    }

    public var description: String { "\(message) (in: \(sql.prefix(200)))" }
}
