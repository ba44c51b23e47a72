import BeckonCore
import BeckonStorage
import Logging
import ServiceLifecycle

/// Deletes message activity log entries older than the retention period, at start and hourly.
struct ActivityLogRetentionService: Service {
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
                    } catch {
                        logger.error("pruning the activity log failed", metadata: ["error": "\(error)"])
                    }
                    try await Task.sleep(for: .seconds(3_600))
                }
            }
        } catch is CancellationError {
            return
        }
    }
}
