import BeckonStorage
import Logging
import ServiceLifecycle

/// Keeps the query planner's statistics fresh (SQLite's `ANALYZE`, bounded by `analysis_limit`),
/// at start and then every `interval`, so segment queries are planned from real table sizes.
public struct QueryStatisticsService: Service {
    let database: any SQLDatabase
    let interval: Duration
    let logger: Logger

    public init(database: any SQLDatabase, interval: Duration = .seconds(3600), logger: Logger) {
        self.database = database
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    await Self.refresh(database, logger: logger)
                    try await Task.sleep(for: self.interval)
                }
            }
        } catch is CancellationError {
            return
        }
    }

    /// Refreshes the statistics once; failures are logged, never fatal.
    public static func refresh(_ database: any SQLDatabase, logger: Logger) async {
        let statements = database.dialect.refreshStatistics
        guard !statements.isEmpty else { return }
        do {
            try await database.write { connection in
                for statement in statements { try connection.execute(statement) }
            }
        } catch {
            logger.error("refreshing query statistics failed", metadata: ["error": "\(error)"])
        }
    }
}
