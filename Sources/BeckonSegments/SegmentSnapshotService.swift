import BeckonCore
import BeckonStorage
import Foundation
import Logging
import ServiceLifecycle

/// Takes every segment's daily size at each workspace's midnight (the point `/segments/data_series`
/// reports for the day that ended), as a background `Service` of the server.
///
/// Every `interval` it looks at each workspace's local date; once a day has ended, each segment
/// that existed that day gets one snapshot (idempotent: a restart or a second node never writes
/// a second value for the same day).
public struct SegmentSnapshotService: Service {
    let segments: SegmentService
    let database: any SQLDatabase
    let clock: any BeckonClock
    let interval: Duration
    let logger: Logger

    public init(segments: SegmentService, database: any SQLDatabase, clock: any BeckonClock, interval: Duration = .seconds(30), logger: Logger) {
        self.segments = segments
        self.database = database
        self.clock = clock
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    await self.tick()
                    try await Task.sleep(for: self.interval)
                }
            }
        } catch is CancellationError {
            return
        }
    }

    /// Snapshots the day that ended in every workspace (yesterday, in its time zone).
    public func tick() async {
        do {
            let workspaces = try await database.read { connection in
                try connection.query("SELECT id, time_zone FROM workspaces ORDER BY id", [])
            }
            for row in workspaces {
                guard let id = row[0].int else { continue }
                let timeZone = row[1].string.flatMap(TimeZone.init(identifier:)) ?? TimeZone(identifier: "UTC")!
                let yesterday = SegmentService.dayLabel(clock.now().addingTimeInterval(-86_400), timeZone)
                let recorded = try await segments.snapshot(workspaceID: id, day: yesterday)
                if recorded > 0 {
                    logger.info("segment sizes snapshotted", metadata: ["workspace": "\(id)", "day": "\(yesterday)", "segments": "\(recorded)"])
                }
            }
        } catch {
            logger.error("segment snapshot failed", metadata: ["error": "\(error)"])
        }
    }
}
