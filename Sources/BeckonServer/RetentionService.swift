import BeckonCore
import BeckonStorage
import Logging
import ServiceLifecycle

/// Deletes message activity log entries older than the retention period and idempotency keys
/// older than 24 hours, at start and hourly. Deleting what is already gone is harmless, so
/// every node may run it.
struct RetentionService: Service {
    let database: any SQLDatabase
    let activityLog: ActivityLogStore
    let retentionDays: Int
    let clock: any BeckonClock
    let logger: Logger

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    let cutoff = BrazeTime.epochMilliseconds(clock.now()) - Int64(retentionDays) * 86_400_000
                    do {
                        let removed = try await activityLog.prune(before: cutoff)
                        if removed > 0 { logger.info("pruned the activity log", metadata: ["entries": "\(removed)"]) }
                        let keys = try await IdempotencyKeys.purge(database, now: BrazeTime.epochMilliseconds(clock.now()))
                        if keys > 0 { logger.info("forgot expired idempotency keys", metadata: ["keys": "\(keys)"]) }
                    } catch {
                        logger.error("pruning the activity log or idempotency keys failed", metadata: ["error": "\(error)"])
                    }
                    try await Task.sleep(for: .seconds(3_600))
                }
            }
        } catch is CancellationError {
            return
        }
    }
}
