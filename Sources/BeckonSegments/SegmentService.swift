import BeckonCore
import BeckonStorage
import Foundation
import Synchronization

/// Saved segments and the questions asked of them: size, members, "is this user in it now",
/// previews, and the daily size series behind Braze's `/segments/data_series`.
public final class SegmentService: Sendable {
    let database: any SQLDatabase
    let clock: any BeckonClock
    let users: UserStore
    /// Today's live sizes, recomputed when older than `liveSizeMaxAge`.
    private let liveSizes = Mutex<[String: (size: Int64, computedAt: Date)]>([:])
    public let liveSizeMaxAge: TimeInterval

    public init(database: any SQLDatabase, clock: any BeckonClock, users: UserStore, liveSizeMaxAge: TimeInterval = 120) {
        self.database = database
        self.clock = clock
        self.users = users
        self.liveSizeMaxAge = liveSizeMaxAge
    }

    var nowMillis: Int64 { BrazeTime.epochMilliseconds(clock.now()) }

    // MARK: CRUD

    /// Creates a segment after validating its filter (operators, regexes, windows, referenced
    /// segments exist, no cycle).
    public func create(workspaceID: Int64, name: String, description: String, tags: [String], filter: JSONValue) async throws -> Segment {
        let parsed = try Self.parse(filter)
        try Self.checkName(name)
        let id = "seg_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
        let now = nowMillis
        let segment = Segment(
            id: String(id), workspaceID: workspaceID, name: name, description: description, tags: tags, filterJSON: filter,
            filter: parsed, createdAt: now, updatedAt: now)
        try await database.write { connection in
            try self.checkReferences(segment, connection: connection)
            try connection.execute(
                "INSERT INTO segments (id, workspace_id, name, description, tags, filter, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [.text(segment.id), .integer(workspaceID), .text(name), .text(description),
                 .text(JSONValue.array(tags.map(JSONValue.string)).serialized()), .text(filter.serialized()), .integer(now), .integer(now)])
        }
        return segment
    }

    /// Replaces a segment's name, description, tags and filter.
    public func update(workspaceID: Int64, id: String, name: String, description: String, tags: [String], filter: JSONValue) async throws
        -> Segment
    {
        let parsed = try Self.parse(filter)
        try Self.checkName(name)
        let now = nowMillis
        return try await database.write { connection in
            guard var segment = try self.load(workspaceID: workspaceID, id: id, connection: connection) else {
                throw SegmentError(.notFound, "no segment with id '\(id)'")
            }
            segment.name = name
            segment.description = description
            segment.tags = tags
            segment.filterJSON = filter
            segment.filter = parsed
            segment.updatedAt = now
            try self.checkReferences(segment, connection: connection)
            try connection.execute(
                "UPDATE segments SET name = ?, description = ?, tags = ?, filter = ?, updated_at = ? WHERE id = ? AND workspace_id = ?",
                [.text(name), .text(description), .text(JSONValue.array(tags.map(JSONValue.string)).serialized()),
                 .text(filter.serialized()), .integer(now), .text(id), .integer(workspaceID)])
            return segment
        }
    }

    /// Deletes a segment and its size history; refused while another segment references it.
    public func delete(workspaceID: Int64, id: String) async throws {
        try await database.write { connection in
            guard try self.load(workspaceID: workspaceID, id: id, connection: connection) != nil else {
                throw SegmentError(.notFound, "no segment with id '\(id)'")
            }
            let users = try self.all(workspaceID: workspaceID, connection: connection).filter { $0.id != id && Self.references($0.filter).contains(id) }
            guard users.isEmpty else {
                throw SegmentError(.conflict, "segment '\(id)' is used by \(users.map { "'\($0.id)'" }.joined(separator: ", ")); remove those references first")
            }
            try connection.execute("DELETE FROM segment_daily_sizes WHERE segment_id = ?", [.text(id)])
            try connection.execute("DELETE FROM segments WHERE id = ? AND workspace_id = ?", [.text(id), .integer(workspaceID)])
        }
        _ = liveSizes.withLock { $0.removeValue(forKey: id) }
    }

    public func segment(workspaceID: Int64, id: String) async throws -> Segment {
        let found = try await database.read { connection in try self.load(workspaceID: workspaceID, id: id, connection: connection) }
        guard let found else { throw SegmentError(.notFound, "no segment with id '\(id)'") }
        return found
    }

    /// Segments oldest first (or newest first), 100 a page, as Braze pages `/segments/list`.
    public func list(workspaceID: Int64, page: Int, newestFirst: Bool) async throws -> [Segment] {
        try await database.read { connection in
            try connection.query(
                "\(Self.columns) WHERE workspace_id = ? ORDER BY created_at \(newestFirst ? "DESC" : "ASC"), id LIMIT 100 OFFSET ?",
                [.integer(workspaceID), .integer(Int64(page) * 100)]
            ).compactMap(Self.segment)
        }
    }

    // MARK: Questions

    /// How many users match a filter now.
    public func count(workspaceID: Int64, filter: SegmentFilter) async throws -> Int64 {
        let segmentable = try await users.segmentableProperties(workspaceID: workspaceID)
        let now = nowMillis
        return try await database.read { connection in
            let predicate = try self.compiler(workspaceID: workspaceID, now: now, scope: .allUsers, segmentable: segmentable, connection: connection)
                .predicate(filter)
            let sql = SQLFragment("SELECT COUNT(*) FROM users u WHERE u.workspace_id = ? AND ", [.integer(workspaceID)]) + predicate
            return try connection.first(sql.sql, sql.arguments)?[0].int ?? 0
        }
    }

    /// A page of members' external ids in a stable order; pass the returned cursor for the next page.
    public func members(workspaceID: Int64, filter: SegmentFilter, after cursor: Int64?, limit: Int) async throws
        -> (externalIDs: [String], nextCursor: Int64?)
    {
        let segmentable = try await users.segmentableProperties(workspaceID: workspaceID)
        let now = nowMillis
        return try await database.read { connection in
            let predicate = try self.compiler(workspaceID: workspaceID, now: now, scope: .allUsers, segmentable: segmentable, connection: connection)
                .predicate(filter)
            let sql = SQLFragment("SELECT u.id, u.external_id FROM users u WHERE u.workspace_id = ? AND u.id > ? AND ", [.integer(workspaceID), .integer(cursor ?? 0)])
                + predicate + SQLFragment(" ORDER BY u.id LIMIT ?", [.integer(Int64(limit) + 1)])
            let rows = try connection.query(sql.sql, sql.arguments)
            let page = rows.prefix(limit)
            let next = rows.count > limit ? page.last?[0].int : nil
            return (page.map { $0[1].string ?? "" }, next)
        }
    }

    /// A page of members' internal ids in id order after `cursor`; no filter means every user of the
    /// workspace, and `among` narrows to those ids.
    public func memberIDs(workspaceID: Int64, filter: SegmentFilter?, among: [Int64]? = nil, after cursor: Int64, limit: Int) async throws
        -> [Int64]
    {
        let segmentable = try await users.segmentableProperties(workspaceID: workspaceID)
        let now = nowMillis
        return try await database.read { connection in
            var sql = SQLFragment("SELECT u.id FROM users u WHERE u.workspace_id = ? AND u.id > ?", [.integer(workspaceID), .integer(cursor)])
            if let among {
                guard !among.isEmpty else { return [] }
                sql = sql + SQLFragment(" AND u.id IN (" + among.map { _ in "?" }.joined(separator: ", ") + ")", among.map { .integer($0) })
            }
            if let filter {
                let predicate = try self.compiler(
                    workspaceID: workspaceID, now: now, scope: .allUsers, segmentable: segmentable, connection: connection
                ).predicate(filter)
                sql = sql + SQLFragment(" AND ") + predicate
            }
            sql = sql + SQLFragment(" ORDER BY u.id LIMIT ?", [.integer(Int64(limit))])
            return try connection.query(sql.sql, sql.arguments).compactMap { $0[0].int }
        }
    }

    /// Whether the user with `externalID` matches the filter now (`false` for unknown users).
    public func contains(workspaceID: Int64, filter: SegmentFilter, externalID: String) async throws -> Bool {
        let segmentable = try await users.segmentableProperties(workspaceID: workspaceID)
        let now = nowMillis
        return try await database.read { connection in
            guard let userID = try connection.first(
                "SELECT id FROM users WHERE workspace_id = ? AND external_id = ?", [.integer(workspaceID), .text(externalID)])?[0].int
            else { return false }
            let predicate = try self.compiler(workspaceID: workspaceID, now: now, scope: .user(userID), segmentable: segmentable, connection: connection)
                .predicate(filter)
            let sql = SQLFragment("SELECT 1 FROM users u WHERE u.id = ? AND ", [.integer(userID)]) + predicate
            return try connection.first(sql.sql, sql.arguments) != nil
        }
    }

    // MARK: Size history

    /// One point of a size series: a day in the workspace's time zone and the size at its end
    /// (today: the live size).
    public struct SizePoint: Sendable, Hashable {
        public let day: String
        public let size: Int64

        public init(day: String, size: Int64) {
            self.day = day
            self.size = size
        }
    }

    /// The `length` days ending with the day of `endingAt` (workspace time zone), oldest first.
    /// Past days come from snapshots; today is the live size; days before the segment existed,
    /// or without a snapshot, are left out rather than invented.
    public func dataSeries(workspaceID: Int64, segmentID: String, length: Int, endingAt: Date?) async throws -> [SizePoint] {
        let segment = try await segment(workspaceID: workspaceID, id: segmentID)
        let timeZone = try await workspaceTimeZone(workspaceID)
        let now = clock.now()
        let today = Self.dayLabel(now, timeZone)
        let endDay = Self.dayLabel(min(endingAt ?? now, now), timeZone)
        let days = Self.days(endingWith: endDay, count: length)
        let createdDay = Self.dayLabel(Date(timeIntervalSince1970: Double(segment.createdAt) / 1000), timeZone)
        let stored = try await database.read { connection in
            try connection.query(
                "SELECT day, size FROM segment_daily_sizes WHERE segment_id = ? AND day >= ? AND day <= ?",
                [.text(segmentID), .text(days.first ?? endDay), .text(days.last ?? endDay)])
        }
        var sizes: [String: Int64] = [:]
        for row in stored { sizes[row[0].string ?? ""] = row[1].int ?? 0 }
        var points: [SizePoint] = []
        for day in days where day >= createdDay {
            if day == today {
                points.append(SizePoint(day: day, size: try await liveSize(segment)))
            } else if let size = sizes[day] {
                points.append(SizePoint(day: day, size: size))
            }
        }
        return points
    }

    /// Today's size of a segment, at most `liveSizeMaxAge` old.
    public func liveSize(_ segment: Segment) async throws -> Int64 {
        let now = clock.now()
        if let cached = liveSizes.withLock({ $0[segment.id] }), now.timeIntervalSince(cached.computedAt) < liveSizeMaxAge,
            now >= cached.computedAt
        {
            return cached.size
        }
        let size = try await count(workspaceID: segment.workspaceID, filter: segment.filter)
        liveSizes.withLock { $0[segment.id] = (size, now) }
        return size
    }

    /// Records, for every segment of the workspace, its size now as the size of `day` (the day
    /// that just ended). Segments created after that day are skipped. Returns how many were recorded.
    @discardableResult
    public func snapshot(workspaceID: Int64, day: String) async throws -> Int {
        let timeZone = try await workspaceTimeZone(workspaceID)
        let (segments, done) = try await database.read { connection in
            (try self.all(workspaceID: workspaceID, connection: connection),
             Set(try connection.query("SELECT segment_id FROM segment_daily_sizes WHERE workspace_id = ? AND day = ?",
                                      [.integer(workspaceID), .text(day)]).compactMap { $0[0].string }))
        }
        var recorded = 0
        for segment in segments where !done.contains(segment.id) {
            let created = Self.dayLabel(Date(timeIntervalSince1970: Double(segment.createdAt) / 1000), timeZone)
            guard created <= day else { continue }
            let size = try await count(workspaceID: workspaceID, filter: segment.filter)
            let now = nowMillis
            try await database.write { connection in
                try connection.execute(
                    """
                    INSERT INTO segment_daily_sizes (segment_id, day, workspace_id, size, computed_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (segment_id, day) DO NOTHING
                    """, [.text(segment.id), .text(day), .integer(workspaceID), .integer(size), .integer(now)])
            }
            recorded += 1
        }
        return recorded
    }

    // MARK: Helpers

    func workspaceTimeZone(_ workspaceID: Int64) async throws -> TimeZone {
        let name = try await database.read { connection in
            try connection.first("SELECT time_zone FROM workspaces WHERE id = ?", [.integer(workspaceID)])?[0].string
        }
        return name.flatMap(TimeZone.init(identifier:)) ?? TimeZone(identifier: "UTC")!
    }

    /// `YYYY-MM-DD` of `date` in `timeZone`.
    public static func dayLabel(_ date: Date, _ timeZone: TimeZone) -> String {
        let shifted = BrazeTime.epochMilliseconds(date) + Int64(timeZone.secondsFromGMT(for: date)) * 1000
        return String(BrazeTime.format(epochMilliseconds: shifted).prefix(10))
    }

    /// `count` consecutive day labels ending with `last`.
    static func days(endingWith last: String, count: Int) -> [String] {
        guard let end = BrazeTime.parse(last) else { return [] }
        return (0..<count).reversed().map { offset in
            String(BrazeTime.format(end.addingTimeInterval(-Double(offset) * 86_400)).prefix(10))
        }
    }

    func compiler(
        workspaceID: Int64, now: Int64, scope: SegmentCompiler.Scope, segmentable: [String: [String]], connection: any SQLConnection
    ) throws -> SegmentCompiler {
        var filters: [String: SegmentFilter] = [:]
        for segment in try all(workspaceID: workspaceID, connection: connection) { filters[segment.id] = segment.filter }
        let known = filters
        return SegmentCompiler(
            dialect: connection.dialect, workspaceID: workspaceID, now: now, scope: scope, segmentable: segmentable
        ) { id in
            guard let filter = known[id] else { throw SegmentFilterError("filter", "unknown segment id '\(id)'") }
            return filter
        }
    }

    /// Every segment id a filter names directly.
    static func references(_ filter: SegmentFilter) -> [String] {
        switch filter {
        case .all(let children), .any(let children): return children.flatMap(references)
        case .not(let child): return references(child)
        case .segment(let id): return [id]
        default: return []
        }
    }

    /// Referenced segments exist in the workspace and no reference chain comes back to `segment`.
    func checkReferences(_ segment: Segment, connection: any SQLConnection) throws {
        var filters: [String: SegmentFilter] = [:]
        for other in try all(workspaceID: segment.workspaceID, connection: connection) { filters[other.id] = other.filter }
        filters[segment.id] = segment.filter
        func visit(_ id: String, path: [String]) throws {
            guard let filter = filters[id] else {
                throw SegmentError(.invalid, "filter: unknown segment id '\(id)'")
            }
            for reference in Self.references(filter) {
                if path.contains(reference) {
                    throw SegmentError(.invalid, "filter: segments reference each other in a cycle: \((path + [reference]).joined(separator: " → "))")
                }
                try visit(reference, path: path + [reference])
            }
        }
        try visit(segment.id, path: [segment.id])
    }

    static func parse(_ filter: JSONValue) throws -> SegmentFilter {
        do {
            return try SegmentFilter.parse(filter)
        } catch let error as SegmentFilterError {
            throw SegmentError(.invalid, error.description)
        }
    }

    static func checkName(_ name: String) throws {
        guard !name.trimmingCharacters(in: .whitespaces).isEmpty, name.count <= 255 else {
            throw SegmentError(.invalid, "name: must be 1 to 255 characters")
        }
    }

    static let columns = "SELECT id, workspace_id, name, description, tags, filter, created_at, updated_at FROM segments"

    func load(workspaceID: Int64, id: String, connection: any SQLConnection) throws -> Segment? {
        try connection.first("\(Self.columns) WHERE workspace_id = ? AND id = ?", [.integer(workspaceID), .text(id)]).flatMap(Self.segment)
    }

    func all(workspaceID: Int64, connection: any SQLConnection) throws -> [Segment] {
        try connection.query("\(Self.columns) WHERE workspace_id = ? ORDER BY created_at, id", [.integer(workspaceID)]).compactMap(Self.segment)
    }

    static func segment(_ row: SQLRow) -> Segment? {
        guard let filterJSON = try? JSONValue.parse(Array((row[5].string ?? "").utf8)), let filter = try? SegmentFilter.parse(filterJSON) else {
            return nil
        }
        let tags = (try? JSONValue.parse(Array((row[4].string ?? "[]").utf8)))?.arrayValue?.compactMap(\.stringValue) ?? []
        return Segment(
            id: row[0].string ?? "", workspaceID: row[1].int ?? 0, name: row[2].string ?? "", description: row[3].string ?? "",
            tags: tags, filterJSON: filterJSON, filter: filter, createdAt: row[6].int ?? 0, updatedAt: row[7].int ?? 0)
    }
}
