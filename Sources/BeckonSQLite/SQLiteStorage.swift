import BeckonStorage
import Foundation
import GRDB

/// The embedded default database: one SQLite file in WAL mode, one writer, concurrent readers.
///
/// Durability: `synchronous=NORMAL` in WAL mode keeps every committed transaction across a
/// process crash (`kill -9`); `.full` also survives power loss at the cost of an fsync per commit.
public final class SQLiteStorage: SQLDatabase {
    /// How hard SQLite works to keep commits across crashes.
    public enum Synchronous: String, Sendable {
        case normal = "NORMAL"
        case full = "FULL"
    }

    private let writer: any DatabaseWriter

    public var dialect: SQLDialect { .sqlite }

    /// Opens (creating when missing) the database file at `path`.
    public init(path: String, synchronous: Synchronous = .normal) throws {
        do {
            writer = try DatabasePool(path: path, configuration: Self.configuration(synchronous: synchronous))
        } catch {
            throw SQLError(message: "cannot open SQLite database at \(path): \(error)", sql: "")
        }
    }

    private init(writer: any DatabaseWriter) {
        self.writer = writer
    }

    /// A private in-memory database, for tests and one-off tools.
    public static func inMemory() throws -> SQLiteStorage {
        SQLiteStorage(writer: try DatabaseQueue(configuration: configuration(synchronous: .normal)))
    }

    /// Connection settings: durability, a 10 s busy timeout, page caches (64 MB for the one
    /// writer, whose cache stays valid; 2 MB for each reader, whose cache is dropped whenever
    /// the database changed, so memory stays flat however large the database grows) and the
    /// `REGEXP` operator (case-insensitive, as Braze's segment regexes are).
    private static func configuration(synchronous: Synchronous) -> Configuration {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.maximumReaderCount = 4
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous.rawValue)")
            try db.execute(sql: "PRAGMA cache_size = \(db.configuration.readonly ? -2_048 : -65_536)")
            if !db.configuration.readonly {
                try db.execute(sql: "PRAGMA wal_autocheckpoint = \(walCheckpointPages)")
                // Statement journals (the undo of one statement inside a transaction, as large as
                // what it changes) stay in memory instead of temporary files written and deleted
                // per statement; the writer's statements are bounded by the send pipeline's batches.
                try db.execute(sql: "PRAGMA temp_store = MEMORY")
            }
            db.add(function: regexp)
        }
        return configuration
    }

    /// Pages the write-ahead log may hold before they are copied into the database file (40 MB):
    /// a page changed several times in that window (a message row when it is queued and again
    /// when it settles, the last page of an index) is written to the file once.
    static let walCheckpointPages = 10_000

    private static let regexp = DatabaseFunction("regexp", argumentCount: 2, pure: true) { values in
        guard let pattern = String.fromDatabaseValue(values[0]), let text = String.fromDatabaseValue(values[1]) else {
            return nil
        }
        guard let expression = try? NSRegularExpression(pattern: pattern, options: [.caseInsensitive]) else { return false }
        return expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    public func write<T: Sendable>(_ body: @Sendable @escaping (any SQLConnection) throws -> T) async throws -> T {
        try await mapErrors {
            try await writer.write { db in try body(GRDBConnection(db: db)) }
        }
    }

    public func read<T: Sendable>(_ body: @Sendable @escaping (any SQLConnection) throws -> T) async throws -> T {
        try await mapErrors {
            try await writer.read { db in try body(GRDBConnection(db: db)) }
        }
    }

    public func close() async throws {
        try writer.close()
    }

    private func mapErrors<T>(_ work: () async throws -> T) async throws -> T {
        do {
            return try await work()
        } catch let error as DatabaseError {
            throw SQLError(message: error.message ?? "\(error.resultCode)", sql: error.sql ?? "")
        }
    }
}

/// An `SQLConnection` over a GRDB database handle, with every statement prepared once and cached.
private struct GRDBConnection: SQLConnection {
    let db: Database

    var dialect: SQLDialect { .sqlite }

    func execute(_ sql: String, _ arguments: [SQLValue]) throws {
        try mapped(sql) {
            let statement = try db.cachedStatement(sql: sql)
            statement.setUncheckedArguments(StatementArguments(arguments.map(\.databaseValue)))
            try statement.execute()
        }
    }

    func query(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
        try mapped(sql) {
            let statement = try db.cachedStatement(sql: sql)
            statement.setUncheckedArguments(StatementArguments(arguments.map(\.databaseValue)))
            var rows: [SQLRow] = []
            let cursor = try Row.fetchCursor(statement)
            while let row = try cursor.next() {
                rows.append(SQLRow(row.databaseValues.map(SQLValue.init)))
            }
            return rows
        }
    }

    /// Reports SQLite failures as `SQLError` inside transaction bodies too, as the PostgreSQL backend does.
    private func mapped<T>(_ sql: String, _ work: () throws -> T) throws -> T {
        do {
            return try work()
        } catch let error as DatabaseError {
            throw SQLError(message: error.message ?? "\(error.resultCode)", sql: sql)
        }
    }
}

extension SQLValue {
    fileprivate var databaseValue: DatabaseValue {
        switch self {
        case .null: return .null
        case .integer(let value): return value.databaseValue
        case .real(let value): return value.databaseValue
        case .text(let value): return value.databaseValue
        case .blob(let value): return Data(value).databaseValue
        }
    }

    fileprivate init(_ value: DatabaseValue) {
        switch value.storage {
        case .null: self = .null
        case .int64(let number): self = .integer(number)
        case .double(let number): self = .real(number)
        case .string(let text): self = .text(text)
        case .blob(let data): self = .blob([UInt8](data))
        }
    }
}
