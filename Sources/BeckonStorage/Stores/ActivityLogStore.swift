import BeckonCore
import Foundation

/// One entry of the message activity log: something that stopped or degraded a message
/// (an abort, a render error, a Connected Content or channel failure, a skip).
public struct ActivityLogEntry: Sendable, Hashable {
    /// Assigned by the store; `nil` before the entry is recorded.
    public var id: Int64?
    public var workspaceID: Int64
    /// Epoch milliseconds.
    public var time: Int64
    /// `connected_content_failure`, `abort`, `render_error`, `webhook_failure`, `skipped` …
    public var type: String
    public var campaignID: String?
    public var variant: String?
    public var externalID: String?
    public var channel: String?
    /// The URL called, with credentials and secret-looking query values removed.
    public var url: String?
    /// The HTTP status received, when there was a response.
    public var status: Int?
    public var durationMilliseconds: Int?
    public var reason: String

    public init(
        id: Int64? = nil, workspaceID: Int64, time: Int64, type: String, campaignID: String? = nil, variant: String? = nil,
        externalID: String? = nil, channel: String? = nil, url: String? = nil, status: Int? = nil,
        durationMilliseconds: Int? = nil, reason: String
    ) {
        self.id = id
        self.workspaceID = workspaceID
        self.time = time
        self.type = type
        self.campaignID = campaignID
        self.variant = variant
        self.externalID = externalID
        self.channel = channel
        self.url = url
        self.status = status
        self.durationMilliseconds = durationMilliseconds
        self.reason = reason
    }
}

/// Which activity log entries to read: newest first, filtered, one page at a time.
public struct ActivityLogQuery: Sendable {
    public var campaignID: String?
    public var type: String?
    public var externalID: String?
    /// Only entries at or after this epoch millisecond.
    public var since: Int64?
    /// Only entries older than this id (the previous page's cursor).
    public var beforeID: Int64?
    public var limit = 100

    public init() {}
}

/// The message activity log: failures and skips that marketers and engineers read to see why a
/// message did not go out as written.
public final class ActivityLogStore: Sendable {
    private let database: any SQLDatabase

    public init(database: any SQLDatabase) {
        self.database = database
    }

    public func record(_ entries: [ActivityLogEntry]) async throws {
        guard !entries.isEmpty else { return }
        try await database.write { connection in
            for entry in entries {
                try connection.execute(
                    """
                    INSERT INTO activity_log (workspace_id, time, type, campaign_id, variant, external_id, channel, url, status,
                        duration_ms, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                    [
                        .integer(entry.workspaceID), .integer(entry.time), .text(entry.type), .text(entry.campaignID),
                        .text(entry.variant), .text(entry.externalID), .text(entry.channel), .text(entry.url),
                        .integer(entry.status.map(Int64.init)), .integer(entry.durationMilliseconds.map(Int64.init)),
                        .text(String(entry.reason.prefix(2_000))),
                    ])
            }
        }
    }

    /// Entries newest first; a page holds at most `query.limit` entries.
    public func entries(workspaceID: Int64, query: ActivityLogQuery) async throws -> [ActivityLogEntry] {
        var conditions = ["workspace_id = ?"]
        var arguments: [SQLValue] = [.integer(workspaceID)]
        let filters: [(String, SQLValue?)] = [
            ("campaign_id = ?", query.campaignID.map { .text($0) }), ("type = ?", query.type.map { .text($0) }),
            ("external_id = ?", query.externalID.map { .text($0) }), ("time >= ?", query.since.map { .integer($0) }),
            ("id < ?", query.beforeID.map { .integer($0) }),
        ]
        for case let (condition, value?) in filters {
            conditions.append(condition)
            arguments.append(value)
        }
        arguments.append(.integer(Int64(max(1, query.limit))))
        let sql = """
            SELECT id, workspace_id, time, type, campaign_id, variant, external_id, channel, url, status, duration_ms, reason
            FROM activity_log WHERE \(conditions.joined(separator: " AND ")) ORDER BY id DESC LIMIT ?
            """
        let bound = arguments
        return try await database.read { connection in
            try connection.query(sql, bound).map { row in
                ActivityLogEntry(
                    id: row[0].int, workspaceID: row[1].int ?? workspaceID, time: row[2].int ?? 0, type: row[3].string ?? "",
                    campaignID: row[4].string, variant: row[5].string, externalID: row[6].string, channel: row[7].string,
                    url: row[8].string, status: row[9].int.map { Int($0) }, durationMilliseconds: row[10].int.map { Int($0) },
                    reason: row[11].string ?? "")
            }
        }
    }

    /// Deletes entries older than `time` (epoch milliseconds); returns how many went.
    @discardableResult
    public func prune(before time: Int64) async throws -> Int {
        try await database.write { connection in
            let count = try connection.first("SELECT COUNT(*) FROM activity_log WHERE time < ?", [.integer(time)])?[0].int ?? 0
            try connection.execute("DELETE FROM activity_log WHERE time < ?", [.integer(time)])
            return Int(count)
        }
    }
}
