import ArgumentParser
import BeckonCore
import BeckonSegments
import BeckonServer
import BeckonStorage
import Foundation
import Logging

/// `beckon bench segments`: time counts, member lists, single-user checks and a daily snapshot on a loaded database.
struct BenchSegmentsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segments",
        abstract: "Time segment questions (count, list members, single-user membership, snapshot) on an existing database.")

    @Option(help: "JSON file: {\"Q1\": filter, \"Q2\": filter, …}.") var questions: String
    @Option(help: "Workspace name or id.") var workspace = "default"
    @Option(help: "The evaluation time (ISO 8601); the dataset's NOW.") var now: String
    @Option(name: .customLong("repeat"), help: "Timed runs per question (the median is reported).") var runs = 5
    @Option(name: .customLong("membership-checks"), help: "Single-user membership checks to time.") var membershipChecks = 1000
    @Option(name: .customLong("snapshot-segments"), help: "Segments in the timed daily snapshot (0 to skip).") var snapshotSegments = 100
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        guard let instant = BrazeTime.parse(now) else { throw ValidationError("--now must be an ISO 8601 time") }
        guard runs >= 1 else { throw ValidationError("--repeat must be at least 1") }
        let text = try Data(contentsOf: URL(fileURLWithPath: questions))
        guard let named = try JSONValue.parse(text).objectValue else { throw ValidationError("--questions must hold a JSON object") }
        let filters = try named.keys.sorted().map { name in (name, try SegmentFilter.parse(named[name] ?? .null, path: name)) }
        var configuration = ServerConfiguration()
        try database.apply(to: &configuration)
        let clock = FixedClock(instant)
        try await AdminCommand.withStores(database) { opened in
            let stores = BeckonServer.Stores(database: opened.database, clock: clock)
            let target = try await stores.workspaces.workspace(workspace)
            let segments = stores.segments
            var logger = CommandLogging.makeLogger()
            logger.logLevel = .warning
            await QueryStatisticsService.refresh(opened.database, logger: logger)
            for (name, filter) in filters {
                var countTimes: [Double] = []
                var listTimes: [Double] = []
                var size: Int64 = 0
                var listed = 0
                for _ in 0..<runs {
                    let start = ContinuousClock.now
                    size = try await segments.count(workspaceID: target.id, filter: filter)
                    countTimes.append(Self.milliseconds(since: start))
                    let listStart = ContinuousClock.now
                    listed = 0
                    var cursor: Int64?
                    repeat {
                        let page = try await segments.members(workspaceID: target.id, filter: filter, after: cursor, limit: 10_000)
                        listed += page.externalIDs.count
                        cursor = page.nextCursor
                    } while cursor != nil
                    listTimes.append(Self.milliseconds(since: listStart))
                }
                print(JSONValue.object([
                    "question": .string(name), "size": .int(size), "listed": .int(Int64(listed)),
                    "count_ms_median": .double(Self.median(countTimes)), "list_ms_median": .double(Self.median(listTimes)),
                    "database": .string(opened.database.dialect.kind.rawValue),
                ]).serialized())
            }
            if membershipChecks > 0, let (name, filter) = filters.first {
                let sample = try await opened.database.read { connection in
                    try connection.query(
                        "SELECT external_id FROM users WHERE workspace_id = ? AND external_id IS NOT NULL ORDER BY random_bucket, id LIMIT ?",
                        [.integer(target.id), .integer(Int64(membershipChecks))]
                    ).compactMap { $0[0].string }
                }
                var times: [Double] = []
                var members = 0
                for externalID in sample {
                    let start = ContinuousClock.now
                    if try await segments.contains(workspaceID: target.id, filter: filter, externalID: externalID) { members += 1 }
                    times.append(Self.milliseconds(since: start))
                }
                times.sort()
                print(JSONValue.object([
                    "membership_checks": .int(Int64(times.count)), "question": .string(name), "members": .int(Int64(members)),
                    "mean_ms": .double(times.reduce(0, +) / Double(max(times.count, 1))),
                    "p99_ms": .double(times.isEmpty ? 0 : times[min(times.count - 1, times.count * 99 / 100)]),
                ]).serialized())
            }
            if snapshotSegments > 0 {
                var created: [String] = []
                for index in 0..<snapshotSegments {
                    let (name, _) = filters[index % filters.count]
                    let segment = try await segments.create(
                        workspaceID: target.id, name: "bench snapshot \(index) (\(name))", description: "", tags: ["bench"],
                        filter: named[name] ?? .null)
                    created.append(segment.id)
                }
                clock.advance(by: 86_400)
                let day = SegmentService.dayLabel(instant, TimeZone(identifier: target.timeZone) ?? TimeZone(identifier: "UTC")!)
                let start = ContinuousClock.now
                let recorded = try await segments.snapshot(workspaceID: target.id, day: day)
                let elapsed = Self.milliseconds(since: start)
                for id in created { try await segments.delete(workspaceID: target.id, id: id) }
                print(JSONValue.object(["snapshot_segments": .int(Int64(recorded)), "snapshot_ms": .double(elapsed)]).serialized())
            }
        }
    }

    static func milliseconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
    }
}
