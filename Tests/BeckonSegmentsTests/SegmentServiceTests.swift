import BeckonCore
import BeckonSegments
import BeckonStorage
import BeckonTestSupport
import Foundation
import Logging
import Testing

/// Saved segments: validation, nesting and cycles, cohorts, deleted users, push, the daily size series.
@Suite("Segment service")
struct SegmentServiceTests {
    static let now = BrazeTime.parse("2025-06-30T15:00:00Z")!

    static func withService(
        _ kind: TestDatabaseKind, _ body: (SegmentService, UserStore, Int64, any SQLDatabase, FixedClock) async throws -> Void
    ) async throws {
        try await kind.withDatabase { database in
            try await Migrator.migrate(database)
            let clock = FixedClock(now)
            let workspace = try await WorkspaceStore(database: database, clock: clock).createWorkspace(name: "shop", timeZone: "Asia/Seoul")
            let users = UserStore(database: database, clock: clock)
            try await body(SegmentService(database: database, clock: clock, users: users), users, workspace.id, database, clock)
        }
    }

    static func json(_ text: String) throws -> JSONValue { try JSONValue.parse(Array(text.utf8)) }

    static func track(_ users: UserStore, _ ws: Int64, _ text: String, now: Date = now) async throws {
        _ = try await users.track(workspaceID: ws, request: try TrackRequest.parse(try json(text), now: now))
    }

    @Test("validation names the node and the problem", arguments: [
        (#"{"attribute": "first_name", "op": "gt", "value": 3}"#, "filter.op", "not an operator for string attribute"),
        (#"{"all": [{"attribute": "custom.x", "op": "matches", "value": "(["}]}"#, "filter.all[0].value", "not a valid regular expression"),
        (#"{"event": "e", "within_last": {"days": 731}}"#, "filter.within_last.days", "from 1 to 730"),
        (#"{"event": "e", "within_last": {"days": 0}}"#, "filter.within_last.days", "from 1 to 730"),
        (#"{"any": []}"#, "filter.any", "must not be empty"),
        (#"{"attribute": "shoe_size", "op": "eq", "value": 3}"#, "filter.attribute", "unknown attribute"),
        (#"{"push": {"platform": "symbian"}}"#, "filter.push.platform", "ios, android, web"),
        (#"{"bogus": 1}"#, "filter", "unknown filter node"),
    ])
    func validation(json: String, path: String, problem: String) throws {
        #expect {
            _ = try SegmentFilter.parse(try Self.json(json))
        } throws: { error in
            guard let error = error as? SegmentFilterError else { return false }
            return error.path == path && error.problem.contains(problem)
        }
    }

    @Test("nested segments, unknown ids and cycles", arguments: TestDatabases.all())
    func nesting(kind: TestDatabaseKind) async throws {
        try await Self.withService(kind) { segments, users, ws, _, _ in
            try await Self.track(users, ws, #"{"attributes": [{"external_id": "a", "tier": "gold", "vip": true}, {"external_id": "b", "tier": "gold"}]}"#)
            let gold = try await segments.create(
                workspaceID: ws, name: "Gold", description: "", tags: [], filter: try Self.json(#"{"attribute": "custom.tier", "op": "eq", "value": "gold"}"#))
            let vip = try await segments.create(
                workspaceID: ws, name: "Gold VIP", description: "", tags: ["vip"],
                filter: try Self.json(#"{"all": [{"segment": "\#(gold.id)"}, {"attribute": "custom.vip", "op": "eq", "value": true}]}"#))
            #expect(try await segments.count(workspaceID: ws, filter: vip.filter) == 1)
            await #expect(throws: SegmentError.self) {
                _ = try await segments.create(workspaceID: ws, name: "x", description: "", tags: [], filter: try Self.json(#"{"segment": "seg_missing"}"#))
            }
            await #expect {
                _ = try await segments.update(
                    workspaceID: ws, id: gold.id, name: "Gold", description: "", tags: [], filter: try Self.json(#"{"segment": "\#(vip.id)"}"#))
            } throws: { error in
                (error as? SegmentError)?.description.contains("cycle") == true
            }
            await #expect {
                try await segments.delete(workspaceID: ws, id: gold.id)
            } throws: { error in
                (error as? SegmentError)?.kind == .conflict
            }
        }
    }

    @Test("cohorts, deleted users, users with no data, random bucket and push reachability", arguments: TestDatabases.all())
    func membershipSources(kind: TestDatabaseKind) async throws {
        try await Self.withService(kind) { segments, users, ws, database, _ in
            try await Self.track(users, ws, #"{"attributes": [{"external_id": "a"}, {"external_id": "b"}, {"external_id": "c"}]}"#)
            try await database.write { connection in
                for id in ["a", "c", "ghost"] {
                    try connection.execute(
                        "INSERT INTO cohort_members (workspace_id, cohort_id, external_id, added_at) VALUES (?, 'amp-1', ?, 0)",
                        [.integer(ws), .text(id)])
                }
            }
            let cohort = try SegmentFilter.parse(try Self.json(#"{"cohort": "amp-1"}"#))
            #expect(try await segments.members(workspaceID: ws, filter: cohort, after: nil, limit: 10).externalIDs == ["a", "c"])
            _ = try await users.delete(workspaceID: ws, items: [DeleteRequestItem(identifier: .externalID("c"))])
            #expect(try await segments.count(workspaceID: ws, filter: cohort) == 1, "deleted users leave every segment")
            let never = try SegmentFilter.parse(try Self.json(#"{"not": {"event": "anything"}}"#))
            #expect(try await segments.count(workspaceID: ws, filter: never) == 2, "users with no data match negative filters")
            let everyone = try SegmentFilter.parse(try Self.json(#"{"random_bucket": {"op": "between", "value": [0, 9999]}}"#))
            #expect(try await segments.count(workspaceID: ws, filter: everyone) == 2)

            let provisional = try SDKBatch.parse(try Self.json("""
                {"device_id": "d1", "external_id": "a", "platform": "ios", "push_token": {"token": "\(String(repeating: "a", count: 64))", "authorization": "provisional"}}
                """), appID: "ios", now: Self.now)
            _ = try await users.ingest(workspaceID: ws, batch: provisional)
            let provisionalFilter = try SegmentFilter.parse(try Self.json(#"{"push": {"platform": "ios", "state": "provisional"}}"#))
            #expect(try await segments.members(workspaceID: ws, filter: provisionalFilter, after: nil, limit: 10).externalIDs == ["a"])
            let optedIn = try SegmentFilter.parse(try Self.json(#"{"push": {"state": "opted_in"}}"#))
            #expect(try await segments.count(workspaceID: ws, filter: optedIn) == 0, "provisional is not opted in")
        }
    }

    @Test("query statistics are refreshed where the database does not keep them itself", arguments: TestDatabases.all())
    func statistics(kind: TestDatabaseKind) async throws {
        try await Self.withService(kind) { _, users, ws, database, _ in
            try await Self.track(users, ws, #"{"attributes": [{"external_id": "a", "tier": "gold"}, {"external_id": "b", "tier": "silver"}]}"#)
            await QueryStatisticsService.refresh(database, logger: Logger(label: "test"))
            if database.dialect.kind == .sqlite {
                let rows = try await database.read { try $0.first("SELECT COUNT(*) FROM sqlite_stat1", [])?[0].int ?? 0 }
                #expect(rows > 0, "ANALYZE wrote planner statistics")
            } else {
                #expect(database.dialect.refreshStatistics.isEmpty)
            }
        }
    }

    @Test("paging members with a cursor", arguments: TestDatabases.all())
    func paging(kind: TestDatabaseKind) async throws {
        try await Self.withService(kind) { segments, users, ws, _, _ in
            let list = (0..<25).map { #"{"external_id": "p\#($0)", "tier": "gold"}"# }.joined(separator: ",")
            try await Self.track(users, ws, #"{"attributes": [\#(list)]}"#)
            let filter = try SegmentFilter.parse(try Self.json(#"{"attribute": "custom.tier", "op": "eq", "value": "gold"}"#))
            var seen: [String] = []
            var cursor: Int64?
            repeat {
                let page = try await segments.members(workspaceID: ws, filter: filter, after: cursor, limit: 10)
                seen += page.externalIDs
                cursor = page.nextCursor
            } while cursor != nil
            #expect(seen.count == 25)
            #expect(Set(seen).count == 25)
        }
    }

    @Test("data series: snapshots at the workspace's midnight, live today, nothing invented", arguments: TestDatabases.all())
    func dataSeries(kind: TestDatabaseKind) async throws {
        try await Self.withService(kind) { segments, users, ws, _, clock in
            // 2025-06-30T15:00Z is 2025-07-01 00:00 in Seoul: the workspace's 1 July has just begun.
            try await Self.track(users, ws, #"{"attributes": [{"external_id": "a", "tier": "gold"}]}"#)
            let gold = try await segments.create(
                workspaceID: ws, name: "Gold", description: "", tags: [], filter: try Self.json(#"{"attribute": "custom.tier", "op": "eq", "value": "gold"}"#))
            let first = try await segments.dataSeries(workspaceID: ws, segmentID: gold.id, length: 5, endingAt: nil)
            #expect(first == [SegmentService.SizePoint(day: "2025-07-01", size: 1)], "a segment created today has only today's point")

            clock.advance(by: 86_400)
            try await Self.track(users, ws, #"{"attributes": [{"external_id": "b", "tier": "gold"}]}"#, now: clock.now())
            #expect(try await segments.snapshot(workspaceID: ws, day: "2025-07-01") == 1)
            #expect(try await segments.snapshot(workspaceID: ws, day: "2025-07-01") == 0, "one snapshot per day")
            let second = try await segments.dataSeries(workspaceID: ws, segmentID: gold.id, length: 3, endingAt: nil)
            #expect(second.map(\.day) == ["2025-07-01", "2025-07-02"])
            #expect(second.map(\.size) == [2, 2])
            let ending = try await segments.dataSeries(workspaceID: ws, segmentID: gold.id, length: 1, endingAt: BrazeTime.parse("2025-07-01T12:00:00+09:00"))
            #expect(ending == [SegmentService.SizePoint(day: "2025-07-01", size: 2)], "length=1 is the ending day itself")
        }
    }
}
