import BeckonCore
import BeckonStorage
import Crypto
import Foundation
import Metrics

/// One decision to send — a scheduled run, an API trigger, a `/messages/send` call — with the
/// definition it was made with and who it is for.
public struct Dispatch: Sendable {
    public let id: String
    public let workspaceID: Int64
    public let campaignID: String?
    /// `scheduled`, `api_triggered` or `messages_send`.
    public let kind: String
    public let definition: JSONValue
    public let triggerProperties: JSONValue
    /// Explicit recipients (`nil`: the whole audience): `[{"identifier": {...}, "trigger_properties": {...}}]`.
    public let recipients: JSONValue?
    public let cursor: Int64
    public let scheduledAt: Int64
}

/// A message waiting in, or taken from, the durable queue. Its id is derived from dispatch, user
/// and channel, so expanding a dispatch twice never makes a second message.
public struct QueuedMessage: Sendable {
    public let id: String
    public let workspaceID: Int64
    public let dispatchID: String
    public let campaignID: String?
    public let userID: Int64
    public let channel: String
    public let variant: String
    public let attempts: Int
    public let triggerProperties: JSONValue?
}

/// What happened to a message taken from the queue.
public enum MessageOutcome: Sendable {
    case delivered(status: Int)
    /// Try again at `at` (epoch ms).
    case retry(at: Int64, reason: String)
    case failed(reason: String, status: Int?)
    case aborted(reason: String)
    /// Not sent by rule (frequency cap, quiet hours); logged, never retried.
    case skipped(reason: String)
}

/// The dispatches and the message queue, in the database so a crash loses nothing: messages are
/// taken (`sending`) and settled in transactions, and `recoverInFlight` requeues what a crash left
/// half-done, under the same message id.
public final class SendQueue: Sendable {
    let database: any SQLDatabase
    let clock: any BeckonClock

    public init(database: any SQLDatabase, clock: any BeckonClock) {
        self.database = database
        self.clock = clock
    }

    var now: Int64 { BrazeTime.epochMilliseconds(clock.now()) }

    /// Records a dispatch; a second call with the same id does nothing.
    public func enqueue(
        id: String, workspaceID: Int64, campaignID: String?, kind: String, definition: JSONValue, triggerProperties: JSONValue,
        recipients: JSONValue?, scheduledAt: Int64, sendID: String? = nil
    ) async throws {
        let now = self.now
        try await database.write { connection in
            try connection.execute(
                """
                INSERT INTO dispatches (id, workspace_id, campaign_id, kind, send_id, definition, trigger_properties, recipients, state,
                    cursor, scheduled_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?) ON CONFLICT (id) DO NOTHING
                """,
                [.text(id), .integer(workspaceID), .text(campaignID), .text(kind), .text(sendID), .text(definition.serialized()),
                 .text(triggerProperties.serialized()), .text(recipients?.serialized()), .integer(scheduledAt), .integer(now)])
        }
    }

    /// Messages of a campaign by state (`queued`, `sending`, `delivered`, `failed`, `aborted`, `control`, `cancelled`).
    public func messageCounts(campaignID: String) async throws -> [String: Int] {
        try await database.read { connection in
            let rows = try connection.query("SELECT state, COUNT(*) FROM messages WHERE campaign_id = ? GROUP BY state", [.text(campaignID)])
            return Dictionary(uniqueKeysWithValues: rows.map { ($0[0].string ?? "", Int($0[1].int ?? 0)) })
        }
    }

    /// Makes the dispatch of every active scheduled campaign whose time has come.
    public func startDueCampaigns() async throws -> Int {
        let now = self.now
        return try await database.write { connection in
            let due = try connection.query(
                "SELECT id, workspace_id, definition, next_run_at FROM campaigns WHERE state = 'active' AND next_run_at IS NOT NULL AND next_run_at <= ?",
                [.integer(now)])
            for row in due {
                let campaignID = row[0].string ?? ""
                let runAt = row[3].int ?? now
                try connection.execute(
                    """
                    INSERT INTO dispatches (id, workspace_id, campaign_id, kind, definition, trigger_properties, recipients, state, cursor,
                        scheduled_at, created_at) VALUES (?, ?, ?, 'scheduled', ?, '{}', NULL, 'pending', 0, ?, ?) ON CONFLICT (id) DO NOTHING
                    """,
                    [.text("dsp_\(campaignID)_\(runAt)"), row[1], .text(campaignID), row[2], .integer(runAt), .integer(now)])
                try connection.execute(
                    "UPDATE campaigns SET next_run_at = ? WHERE id = ?", [.integer(Self.nextRecurrence(after: runAt, definition: row[2])), .text(campaignID)])
            }
            return due.count
        }
    }

    /// The workspace's time zone (UTC when unknown), for users without their own.
    public func workspaceTimeZone(_ workspaceID: Int64) async throws -> TimeZone {
        let name = try await database.read { connection in
            try connection.first("SELECT time_zone FROM workspaces WHERE id = ?", [.integer(workspaceID)])?[0].string
        }
        return name.flatMap(TimeZone.init(identifier:)) ?? TimeZone(identifier: "UTC")!
    }

    /// Dispatches to expand now: those due within a minute, so the audience is read close to send time.
    /// The run after `runAt` for a recurring campaign (skipping runs already past), or `nil`.
    static func nextRecurrence(after runAt: Int64, definition: SQLValue) -> Int64? {
        guard let json = json(definition), let parsed = try? CampaignDefinition.parse(json), let recurrence = parsed.recurrence,
            case .scheduled(_, let localTime) = parsed.delivery
        else { return nil }
        let period = Int64(recurrence.periodDays) * 86_400_000
        let next = runAt + period
        // Local-time runs start 14 hours before the wall-clock time they send at.
        let sendTime = localTime == nil ? next : next + 14 * 3_600_000
        if let until = recurrence.until, sendTime > BrazeTime.epochMilliseconds(until) { return nil }
        return next
    }

    public func pendingDispatches(limit: Int) async throws -> [Dispatch] {
        let horizon = now + 60_000
        return try await database.read { connection in
            try connection.query(
                """
                SELECT id, workspace_id, campaign_id, kind, definition, trigger_properties, recipients, cursor, scheduled_at
                FROM dispatches WHERE state = 'pending' AND scheduled_at <= ? ORDER BY scheduled_at, created_at LIMIT ?
                """, [.integer(horizon), .integer(Int64(limit))]
            ).map { row in
                Dispatch(
                    id: row[0].string ?? "", workspaceID: row[1].int ?? 0, campaignID: row[2].string, kind: row[3].string ?? "",
                    definition: Self.json(row[4]) ?? .object([:]), triggerProperties: Self.json(row[5]) ?? .object([:]),
                    recipients: Self.json(row[6]), cursor: row[7].int ?? 0, scheduledAt: row[8].int ?? 0)
            }
        }
    }

    /// A message to add while expanding a dispatch.
    public struct NewMessage: Sendable {
        public let userID: Int64
        public let variant: String
        public let notBefore: Int64
        public let triggerProperties: JSONValue?
        /// Control-group users get a settled `control` row instead of a queued message.
        public let isControl: Bool
        /// Whether the message counts toward frequency caps.
        public let capped: Bool
    }

    /// Adds one page of a dispatch's messages and moves its cursor, in one transaction. With a
    /// campaign rate limit, each new message gets the next slot (`intervalMilliseconds` apart),
    /// and the next free slot is stored so the pace holds across restarts.
    public func addMessages(
        _ messages: [NewMessage], dispatch: Dispatch, channel: String, cursor: Int64, finished: Bool, intervalMilliseconds: Int64?
    ) async throws {
        let now = self.now
        try await database.write { connection in
            var nextSlot = now
            if let campaignID = dispatch.campaignID, intervalMilliseconds != nil {
                nextSlot = max(now, try connection.first("SELECT next_slot FROM campaign_pacing WHERE campaign_id = ?", [.text(campaignID)])?[0].int ?? now)
            }
            for message in messages {
                let id = Self.messageID(dispatchID: dispatch.id, userID: message.userID, channel: channel)
                var notBefore = message.notBefore
                if let interval = intervalMilliseconds, !message.isControl {
                    notBefore = max(notBefore, nextSlot)
                    nextSlot = notBefore + interval
                }
                try connection.execute(
                    """
                    INSERT INTO messages (id, workspace_id, dispatch_id, campaign_id, user_id, channel, variant, state, attempts, not_before,
                        trigger_properties, capped, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)
                        ON CONFLICT (id) DO NOTHING
                    """,
                    [.text(id), .integer(dispatch.workspaceID), .text(dispatch.id), .text(dispatch.campaignID), .integer(message.userID),
                     .text(channel), .text(message.variant), .text(message.isControl ? "control" : "queued"), .integer(notBefore),
                     .text(message.triggerProperties?.serialized()), .bool(message.capped), .integer(now), .integer(now)])
                if message.isControl {
                    try Self.insertEvent(
                        connection, workspaceID: dispatch.workspaceID, time: now, type: "control", campaignID: dispatch.campaignID,
                        dispatchID: dispatch.id, messageID: id, variant: message.variant, userID: message.userID, channel: channel, details: nil)
                }
            }
            if let campaignID = dispatch.campaignID, intervalMilliseconds != nil {
                try connection.execute("DELETE FROM campaign_pacing WHERE campaign_id = ?", [.text(campaignID)])
                try connection.execute("INSERT INTO campaign_pacing (campaign_id, next_slot) VALUES (?, ?)", [.text(campaignID), .integer(nextSlot)])
            }
            try connection.execute(
                "UPDATE dispatches SET cursor = ?, state = ?, expanded_at = ? WHERE id = ?",
                [.integer(cursor), .text(finished ? "expanded" : "pending"), finished ? .integer(now) : .null, .text(dispatch.id)])
        }
    }

    /// Takes up to `limit` due messages of active (or campaign-less) dispatches and marks them `sending`.
    public func claim(limit: Int) async throws -> [QueuedMessage] {
        let now = self.now
        let lock = database.dialect.skipLocked("m")
        return try await database.write { connection in
            let rows = try connection.query(
                """
                SELECT m.id, m.workspace_id, m.dispatch_id, m.campaign_id, m.user_id, m.channel, m.variant, m.attempts, m.trigger_properties
                FROM messages m WHERE m.state = 'queued' AND m.not_before <= ?
                AND (m.campaign_id IS NULL OR m.campaign_id IN (SELECT id FROM campaigns WHERE state = 'active'))
                ORDER BY m.not_before LIMIT ?\(lock)
                """, [.integer(now), .integer(Int64(limit))])
            for chunk in stride(from: 0, to: rows.count, by: 500) {
                let ids = rows[chunk..<min(chunk + 500, rows.count)].map { $0[0] }
                try connection.execute(
                    "UPDATE messages SET state = 'sending', attempts = attempts + 1, updated_at = ? WHERE id IN (\(ids.map { _ in "?" }.joined(separator: ", ")))",
                    [.integer(now)] + ids)
            }
            return rows.map { row in
                QueuedMessage(
                    id: row[0].string ?? "", workspaceID: row[1].int ?? 0, dispatchID: row[2].string ?? "", campaignID: row[3].string,
                    userID: row[4].int ?? 0, channel: row[5].string ?? "", variant: row[6].string ?? "", attempts: Int(row[7].int ?? 0) + 1,
                    triggerProperties: Self.json(row[8]))
            }
        }
    }

    /// Settles messages and writes their engagement events, in one transaction.
    public func settle(_ results: [(message: QueuedMessage, externalID: String?, outcome: MessageOutcome)]) async throws {
        guard !results.isEmpty else { return }
        let now = self.now
        try await database.write { connection in
            for (message, externalID, outcome) in results {
                var state: String
                var notBefore: Int64?
                var error: String?
                var events: [(String, String?)] = []
                switch outcome {
                case .delivered(let status):
                    state = "delivered"
                    events = [("send", nil), ("delivery", "HTTP \(status)")]
                case .retry(let at, let reason):
                    state = "queued"
                    notBefore = at
                    error = reason
                case .failed(let reason, _):
                    state = "failed"
                    error = reason
                    events = [("send", nil), ("failure", reason)]
                case .aborted(let reason):
                    state = "aborted"
                    error = reason
                    events = [("abort", reason)]
                case .skipped(let reason):
                    state = "skipped"
                    error = reason
                    events = [("skip", reason)]
                }
                try connection.execute(
                    "UPDATE messages SET state = ?, not_before = COALESCE(?, not_before), last_error = ?, updated_at = ? WHERE id = ?",
                    [.text(state), .integer(notBefore), .text(error), .integer(now), .text(message.id)])
                for (type, details) in events {
                    try Self.insertEvent(
                        connection, workspaceID: message.workspaceID, time: now, type: type, campaignID: message.campaignID,
                        dispatchID: message.dispatchID, messageID: message.id, variant: message.variant, userID: message.userID,
                        channel: message.channel, details: details, externalID: externalID)
                }
            }
            let sentCampaigns = Set(results.compactMap { result -> String? in
                switch result.outcome {
                case .delivered, .failed: return result.message.campaignID
                default: return nil
                }
            })
            for campaignID in sentCampaigns.sorted() {
                try connection.execute(
                    "UPDATE campaigns SET first_sent_at = COALESCE(first_sent_at, ?), last_sent_at = ? WHERE id = ?",
                    [.integer(now), .integer(now), .text(campaignID)])
            }
        }
        Self.count(results)
    }

    /// Engagement events of a campaign by type (`send`, `delivery`, `failure`, `abort`, `skip`, `control`, `conversion`).
    public func engagementCounts(campaignID: String) async throws -> [String: Int] {
        try await database.read { connection in
            let rows = try connection.query("SELECT type, COUNT(*) FROM engagement_events WHERE campaign_id = ? GROUP BY type", [.text(campaignID)])
            return Dictionary(uniqueKeysWithValues: rows.map { ($0[0].string ?? "", Int($0[1].int ?? 0)) })
        }
    }

    /// One day of a campaign's `/campaigns/data_series`.
    public struct DailyStats: Sendable {
        public var day: Int64
        /// Sends and failures per variant.
        public var sent: [String: Int] = [:]
        public var errors: [String: Int] = [:]
        public var uniqueRecipients = 0
        /// Conversions by label (A–D) on the day they happened, and on the day of the send.
        public var conversions: [String: Int] = [:]
        public var conversionsBySendTime: [String: Int] = [:]

        public init(day: Int64) { self.day = day }
    }

    /// Per-day engagement of a campaign between `start` and `end` (epoch ms), days counted from
    /// `offsetMilliseconds` (the workspace's UTC offset).
    public func dailyStats(campaignID: String, start: Int64, end: Int64, offsetMilliseconds: Int64) async throws -> [Int64: DailyStats] {
        try await database.read { connection in
            var days: [Int64: DailyStats] = [:]
            let offset = SQLValue.integer(offsetMilliseconds)
            let range: [SQLValue] = [.text(campaignID), .integer(start), .integer(end)]
            for row in try connection.query(
                """
                SELECT (time + ?) / 86400000, type, variant, COUNT(*) FROM engagement_events
                WHERE campaign_id = ? AND time >= ? AND time <= ? AND type IN ('send', 'failure') GROUP BY 1, 2, 3
                """, [offset] + range)
            {
                let day = row[0].int ?? 0
                var stats = days[day] ?? DailyStats(day: day)
                let count = Int(row[3].int ?? 0)
                if row[1].string == "send" { stats.sent[row[2].string ?? "", default: 0] += count } else { stats.errors[row[2].string ?? "", default: 0] += count }
                days[day] = stats
            }
            for row in try connection.query(
                """
                SELECT (time + ?) / 86400000, COUNT(DISTINCT user_id) FROM engagement_events
                WHERE campaign_id = ? AND time >= ? AND time <= ? AND type = 'send' GROUP BY 1
                """, [offset] + range)
            {
                let day = row[0].int ?? 0
                days[day, default: DailyStats(day: day)].uniqueRecipients = Int(row[1].int ?? 0)
            }
            for row in try connection.query(
                """
                SELECT (c.time + ?) / 86400000, (s.time + ?) / 86400000, c.details, COUNT(*) FROM engagement_events c
                JOIN engagement_events s ON s.message_id = c.message_id AND s.type = 'send'
                WHERE c.campaign_id = ? AND c.time >= ? AND c.time <= ? AND c.type = 'conversion' GROUP BY 1, 2, 3
                """, [offset, offset] + range)
            {
                let label = row[2].string ?? "A"
                let count = Int(row[3].int ?? 0)
                let day = row[0].int ?? 0
                days[day, default: DailyStats(day: day)].conversions[label, default: 0] += count
                let sendDay = row[1].int ?? 0
                days[sendDay, default: DailyStats(day: sendDay)].conversionsBySendTime[label, default: 0] += count
            }
            return days
        }
    }

    /// Delivered messages counting toward caps that `userID` got since `since` (epoch ms), on `channel` or any.
    public func deliveredCount(userID: Int64, since: Int64, channel: String?) async throws -> Int {
        try await database.read { connection in
            var sql = "SELECT COUNT(*) FROM messages WHERE user_id = ? AND state = 'delivered' AND capped = 1 AND updated_at >= ?"
            var arguments: [SQLValue] = [.integer(userID), .integer(since)]
            if let channel {
                sql += " AND channel = ?"
                arguments.append(.text(channel))
            }
            return Int(try connection.first(sql, arguments)?[0].int ?? 0)
        }
    }

    /// Whether `userID` has (or is about to get) this campaign: a message not cancelled, aborted or
    /// skipped since `since` (epoch ms; `nil`: ever), or a trigger still waiting to be expanded.
    public func hasCampaign(campaignID: String, userID: Int64, since: Int64?) async throws -> Bool {
        try await database.read { connection in
            let pending = try connection.first(
                "SELECT 1 FROM dispatches WHERE campaign_id = ? AND id LIKE ? AND state = 'pending'",
                [.text(campaignID), .text("dsp:\(campaignID):\(userID):%")])
            if pending != nil { return true }
            return try connection.first(
                """
                SELECT 1 FROM messages WHERE campaign_id = ? AND user_id = ? AND state IN ('queued', 'sending', 'delivered', 'failed', 'control')
                AND created_at >= ?
                """, [.text(campaignID), .integer(userID), .integer(since ?? 0)]) != nil
        }
    }

    /// Records whether `userID` is inside the segment an entered-segment campaign watches; returns
    /// true only when the user was outside before (a new entry).
    public func noteSegmentMembership(campaignID: String, userID: Int64, inside: Bool) async throws -> Bool {
        let now = self.now
        return try await database.write { connection in
            let known = try connection.first(
                "SELECT 1 FROM segment_entries WHERE campaign_id = ? AND user_id = ?", [.text(campaignID), .integer(userID)]) != nil
            if inside, !known {
                try connection.execute(
                    "INSERT INTO segment_entries (campaign_id, user_id, entered_at) VALUES (?, ?, ?)",
                    [.text(campaignID), .integer(userID), .integer(now)])
                return true
            }
            if !inside, known {
                try connection.execute("DELETE FROM segment_entries WHERE campaign_id = ? AND user_id = ?", [.text(campaignID), .integer(userID)])
            }
            return false
        }
    }

    /// Cancels what a campaign has queued or pending for `userID`; returns how many messages.
    @discardableResult
    public func cancelPending(campaignID: String, userID: Int64) async throws -> Int {
        let now = self.now
        return try await database.write { connection in
            try connection.execute(
                "UPDATE dispatches SET state = 'cancelled' WHERE campaign_id = ? AND id LIKE ? AND state = 'pending'",
                [.text(campaignID), .text("dsp:\(campaignID):\(userID):%")])
            let count = try connection.first(
                "SELECT COUNT(*) FROM messages WHERE campaign_id = ? AND user_id = ? AND state = 'queued'", [.text(campaignID), .integer(userID)])?[0].int ?? 0
            try connection.execute(
                "UPDATE messages SET state = 'cancelled', updated_at = ? WHERE campaign_id = ? AND user_id = ? AND state = 'queued'",
                [.integer(now), .text(campaignID), .integer(userID)])
            return Int(count)
        }
    }

    /// Records conversion `label` (A–D) for a user who got the campaign within `windowMilliseconds`
    /// before `time`, once per user per campaign per label. Returns whether it was recorded.
    @discardableResult
    public func recordConversion(
        workspaceID: Int64, campaignID: String, userID: Int64, label: String, time: Int64, windowMilliseconds: Int64
    ) async throws -> Bool {
        try await database.write { connection in
            guard let sent = try connection.first(
                """
                SELECT message_id, dispatch_id, variant, channel FROM engagement_events WHERE workspace_id = ? AND campaign_id = ? AND user_id = ?
                AND type = 'send' AND time <= ? AND time >= ? ORDER BY time DESC LIMIT 1
                """, [.integer(workspaceID), .text(campaignID), .integer(userID), .integer(time), .integer(time - windowMilliseconds)])
            else { return false }
            let already = try connection.first(
                "SELECT 1 FROM engagement_events WHERE campaign_id = ? AND user_id = ? AND type = 'conversion' AND details = ?",
                [.text(campaignID), .integer(userID), .text(label)])
            guard already == nil else { return false }
            try Self.insertEvent(
                connection, workspaceID: workspaceID, time: time, type: "conversion", campaignID: campaignID, dispatchID: sent[1].string ?? "",
                messageID: sent[0].string ?? "", variant: sent[2].string ?? "", userID: userID, channel: sent[3].string ?? "", details: label)
            return true
        }
    }

    /// Moves a dispatch that has not been expanded yet to `scheduledAt`; false when it is already
    /// expanded, cancelled or unknown.
    public func reschedule(dispatchID: String, workspaceID: Int64, scheduledAt: Int64, triggerProperties: JSONValue?) async throws -> Bool {
        try await database.write { connection in
            guard try connection.first(
                "SELECT 1 FROM dispatches WHERE id = ? AND workspace_id = ? AND state = 'pending' AND cursor = 0",
                [.text(dispatchID), .integer(workspaceID)]) != nil
            else { return false }
            try connection.execute("UPDATE dispatches SET scheduled_at = ? WHERE id = ?", [.integer(scheduledAt), .text(dispatchID)])
            if let triggerProperties {
                try connection.execute(
                    "UPDATE dispatches SET trigger_properties = ? WHERE id = ?", [.text(triggerProperties.serialized()), .text(dispatchID)])
            }
            return true
        }
    }

    /// Cancels a dispatch not yet sent, with its queued messages; false when there is nothing to cancel.
    public func cancel(dispatchID: String, workspaceID: Int64) async throws -> Bool {
        let now = self.now
        return try await database.write { connection in
            guard try connection.first(
                "SELECT 1 FROM dispatches WHERE id = ? AND workspace_id = ? AND state IN ('pending', 'expanded')",
                [.text(dispatchID), .integer(workspaceID)]) != nil
            else { return false }
            try connection.execute("UPDATE dispatches SET state = 'cancelled' WHERE id = ?", [.text(dispatchID)])
            try connection.execute(
                "UPDATE messages SET state = 'cancelled', updated_at = ? WHERE dispatch_id = ? AND state = 'queued'", [.integer(now), .text(dispatchID)])
            return true
        }
    }

    /// `beckon_messages_total{channel, outcome}` for `/metrics`.
    static func count(_ results: [(message: QueuedMessage, externalID: String?, outcome: MessageOutcome)]) {
        var counts: [String: Int] = [:]
        for result in results {
            let outcome: String
            switch result.outcome {
            case .delivered: outcome = "delivered"
            case .retry: outcome = "retried"
            case .failed: outcome = "failed"
            case .aborted: outcome = "aborted"
            case .skipped: outcome = "skipped"
            }
            counts["\(result.message.channel)|\(outcome)", default: 0] += 1
        }
        for (key, count) in counts {
            let parts = key.split(separator: "|").map(String.init)
            Counter(label: "beckon_messages_total", dimensions: [("channel", parts[0]), ("outcome", parts[1])]).increment(by: count)
        }
    }

    /// Requeues messages a crash left in `sending`; they go out again under the same id.
    @discardableResult
    public func recoverInFlight() async throws -> Int {
        try await database.write { connection in
            let count = try connection.first("SELECT COUNT(*) FROM messages WHERE state = 'sending'")?[0].int ?? 0
            try connection.execute("UPDATE messages SET state = 'queued' WHERE state = 'sending'")
            return Int(count)
        }
    }

    static func insertEvent(
        _ connection: any SQLConnection, workspaceID: Int64, time: Int64, type: String, campaignID: String?, dispatchID: String,
        messageID: String, variant: String, userID: Int64, channel: String, details: String?, externalID: String? = nil
    ) throws {
        try connection.execute(
            """
            INSERT INTO engagement_events (workspace_id, time, type, campaign_id, dispatch_id, message_id, variant, user_id, external_id,
                channel, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [.integer(workspaceID), .integer(time), .text(type), .text(campaignID), .text(dispatchID), .text(messageID), .text(variant),
             .integer(userID), .text(externalID), .text(channel), .text(details)])
    }

    /// `msg_` and 24 hex digits of SHA-256(dispatch, user, channel): stable across retries and restarts.
    static func messageID(dispatchID: String, userID: Int64, channel: String) -> String {
        let digest = SHA256.hash(data: Data("\(dispatchID)|\(userID)|\(channel)".utf8))
        let hex = String(unsafeUninitializedCapacity: 24) { buffer in
            for (index, byte) in digest.prefix(12).enumerated() {
                buffer[index * 2] = hexDigits[Int(byte >> 4)]
                buffer[index * 2 + 1] = hexDigits[Int(byte & 0x0F)]
            }
            return 24
        }
        return "msg_" + hex
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    static func json(_ value: SQLValue) -> JSONValue? {
        guard let text = value.string else { return nil }
        return try? JSONValue.parse(Array(text.utf8))
    }
}
