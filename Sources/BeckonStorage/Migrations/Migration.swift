/// One step of the schema, written once for both databases through dialect hooks.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let statements: @Sendable (SQLDialect) -> [String]

    public init(version: Int, name: String, statements: @escaping @Sendable (SQLDialect) -> [String]) {
        self.version = version
        self.name = name
        self.statements = statements
    }
}

/// Applies the migrations a database has not seen yet, in order, each in its own transaction.
public enum Migrator {
    /// Brings `database` up to the latest schema; safe to call on every start and from several nodes at once.
    ///
    /// - Returns: the versions applied now (empty when the schema was current).
    @discardableResult
    public static func migrate(_ database: any SQLDatabase, migrations: [Migration] = Schema.migrations) async throws
        -> [Int]
    {
        try await database.write { connection in
            try connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
            )
        }
        var applied: [Int] = []
        for migration in migrations.sorted(by: { $0.version < $1.version }) {
            let didApply = try await database.write { connection -> Bool in
                if connection.dialect.kind == .postgres {
                    try connection.execute("SELECT pg_advisory_xact_lock(4242001)")
                }
                let existing = try connection.first("SELECT 1 FROM schema_migrations WHERE version = ?", [.integer(Int64(migration.version))])
                guard existing == nil else { return false }
                for statement in migration.statements(connection.dialect) {
                    try connection.execute(statement)
                }
                try connection.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    [.integer(Int64(migration.version)), .text(migration.name), .integer(0)])
                return true
            }
            if didApply { applied.append(migration.version) }
        }
        return applied
    }
}
