import BeckonCore
import BeckonStorage
import Foundation
import Metrics
import Synchronization

/// One decision to send — a scheduled run, an API trigger, an action trigger, a `/messages/send`
/// call — with the definition it was made with and who it is for.
public struct Dispatch: Sendable {
    public let id: String
    public let workspaceID: Int64
    public let campaignID: String?
    public let kind: DispatchKind
    public let definition: JSONValue
    public let triggerProperties: JSONValue
    /// Explicit recipients (`nil`: the whole audience): `[{"identifier": {...}, "trigger_properties": {...}}]`
    /// or `[{"beckon_user_id": N}]`.
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
    case delivered(detail: String)
    /// Try again at `at` (epoch ms); holds (quiet hours, a paused channel) do not use up an attempt.
    case retry(at: Int64, reason: String, countsAsAttempt: Bool)
    /// `addressInvalid`: the channel found the user's address dead (a campaign's `channel_priority` then tries the next channel).
    case failed(reason: String, status: Int?, logType: String, addressInvalid: Bool = false)
    case aborted(reason: String)
    /// Not sent by rule (frequency cap, quiet hours); logged, never retried.
    case skipped(reason: String)
}

/// A new dispatch to record (see `SendQueue.insertDispatch`).
public struct NewDispatch: Sendable {
    public var id: String
    public var workspaceID: Int64
    public var campaignID: String?
    public var kind: DispatchKind
    public var definition: JSONValue
    public var triggerProperties: JSONValue
    public var recipients: JSONValue?
    public var scheduledAt: Int64
    public var sendID: String?
    /// The one user an action trigger is for (so its cancellations find it by index).
    public var userID: Int64?

    public init(
        id: String, workspaceID: Int64, campaignID: String?, kind: DispatchKind, definition: JSONValue, triggerProperties: JSONValue,
        recipients: JSONValue?, scheduledAt: Int64, sendID: String? = nil, userID: Int64? = nil
    ) {
        self.id = id
        self.workspaceID = workspaceID
        self.campaignID = campaignID
        self.kind = kind
        self.definition = definition
        self.triggerProperties = triggerProperties
        self.recipients = recipients
        self.scheduledAt = scheduledAt
        self.sendID = sendID
        self.userID = userID
    }
}

/// A page of a dispatch expanded by another node (or another round) first; the page is skipped.
struct ExpansionRace: Error {}

/// The dispatches and the message queue, in the database so a crash loses nothing and several
/// nodes never send one message twice at once: a node claims messages under a lease it renews
/// while it works; settling requires the lease; any node re-queues claims whose lease expired.
public final class SendQueue: Sendable {
    let database: any SQLDatabase
    let clock: any BeckonClock
    public let node: NodeIdentity

    /// SQLite: ids claimed in memory and not yet released, left out of the next claims.
    private let inFlight = Mutex<Set<String>>([])

    public init(database: any SQLDatabase, clock: any BeckonClock, node: NodeIdentity = NodeIdentity()) {
        self.database = database
        self.clock = clock
        self.node = node
    }

    var now: Int64 { BrazeTime.epochMilliseconds(clock.now()) }

    // MARK: Dispatches

    /// Records a dispatch; a second call with the same id does nothing.
    public func enqueue(_ dispatch: NewDispatch) async throws {
        let now = self.now
        _ = try await database.write { connection in try Self.insertDispatch(dispatch, connection: connection, now: now) }
    }

    /// Inside a transaction: records `dispatch` unless its id exists. Returns whether it was new.
    @discardableResult
    public static func insertDispatch(_ dispatch: NewDispatch, connection: any SQLConnection, now: Int64) throws -> Bool {
        let rows = try connection.query(
            """
            INSERT INTO dispatches (id, workspace_id, campaign_id, kind, send_id, definition, trigger_properties, recipients, state,
                cursor, scheduled_at, created_at, user_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?) ON CONFLICT (id) DO NOTHING
                RETURNING id
            """,
            [.text(dispatch.id), .integer(dispatch.workspaceID), .text(dispatch.campaignID), .text(dispatch.kind.rawValue),
             .text(dispatch.sendID), .text(dispatch.definition.serialized()), .text(dispatch.triggerProperties.serialized()),
             .text(dispatch.recipients?.serialized()), DispatchState.pending.sql, .integer(dispatch.scheduledAt), .integer(now),
             .integer(dispatch.userID)])
        return !rows.isEmpty
    }

    /// Messages of a campaign by state.
    public func messageCounts(campaignID: String) async throws -> [String: Int] {
        try await database.read { connection in
            let rows = try connection.query("SELECT state, COUNT(*) FROM messages WHERE campaign_id = ? GROUP BY state", [.text(campaignID)])
            return Dictionary(uniqueKeysWithValues: rows.map { ($0[0].string ?? "", Int($0[1].int ?? 0)) })
        }
    }

    /// Makes the dispatch of every active scheduled campaign whose time has come. One node does
    /// it at a time (advisory lock); the dispatch id comes from campaign and run time, and the
    /// next run moves only from the run just made, so even two schedulers would make one dispatch.
    public func startDueCampaigns() async throws -> Int {
        let now = self.now
        return try await database.write { connection in
            guard try SingletonJob.scheduler.tryLock(connection) else { return 0 }
            let due = try connection.query(
                "SELECT id, workspace_id, definition, next_run_at FROM campaigns WHERE state = 'active' AND next_run_at IS NOT NULL AND next_run_at <= ?",
                [.integer(now)])
            for row in due {
                let campaignID = row[0].string ?? ""
                guard let runAt = row[3].int, let definition = try row[2].storedJSON(table: "campaigns", row: campaignID, column: "definition")
                else { continue }
                try Self.insertDispatch(
                    NewDispatch(
                        id: DispatchID.derived("scheduled", campaignID, String(runAt)), workspaceID: row[1].int ?? 0, campaignID: campaignID,
                        kind: .scheduled, definition: definition, triggerProperties: .object([:]), recipients: nil, scheduledAt: runAt),
                    connection: connection, now: now)
                let next = try Self.nextRecurrence(after: runAt, definition: definition, campaignID: campaignID)
                try connection.execute(
                    "UPDATE campaigns SET next_run_at = ? WHERE id = ? AND next_run_at = ?", [.integer(next), .text(campaignID), .integer(runAt)])
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

    /// The run after `runAt` for a recurring campaign (skipping runs already past), or `nil`.
    static func nextRecurrence(after runAt: Int64, definition json: JSONValue, campaignID: String) throws -> Int64? {
        let parsed: CampaignDefinition
        do {
            parsed = try CampaignDefinition.parse(json, channels: nil)
        } catch {
            throw StoredDataError(table: "campaigns", row: campaignID, column: "definition", problem: error.description)
        }
        guard let recurrence = parsed.recurrence, case .scheduled(_, let localTime) = parsed.delivery else { return nil }
        let period = Int64(recurrence.periodDays) * 86_400_000
        let next = runAt + period
        // Local-time runs start 14 hours before the wall-clock time they send at.
        let sendTime = localTime == nil ? next : next + 14 * 3_600_000
        if let until = recurrence.until, sendTime > BrazeTime.epochMilliseconds(until) { return nil }
        return next
    }

    /// Dispatches to expand now: those due within a minute, so the audience is read close to send time.
    public func pendingDispatches(limit: Int) async throws -> [Dispatch] {
        let horizon = now + 60_000
        return try await database.read { connection in
            try connection.query(
                """
                SELECT id, workspace_id, campaign_id, kind, definition, trigger_properties, recipients, cursor, scheduled_at
                FROM dispatches WHERE state = ? AND scheduled_at <= ? ORDER BY scheduled_at, created_at LIMIT ?
                """, [DispatchState.pending.sql, .integer(horizon), .integer(Int64(limit))]
            ).map { row in
                let id = row[0].string ?? ""
                guard let kind = DispatchKind(rawValue: row[3].string ?? "") else {
                    throw StoredDataError(table: "dispatches", row: id, column: "kind", problem: "unknown kind '\(row[3].string ?? "")'")
                }
                guard let definition = try row[4].storedJSON(table: "dispatches", row: id, column: "definition") else {
                    throw StoredDataError(table: "dispatches", row: id, column: "definition", problem: "missing")
                }
                return Dispatch(
                    id: id, workspaceID: row[1].int ?? 0, campaignID: row[2].string, kind: kind, definition: definition,
                    triggerProperties: try row[5].storedJSON(table: "dispatches", row: id, column: "trigger_properties") ?? .object([:]),
                    recipients: try row[6].storedJSON(table: "dispatches", row: id, column: "recipients"), cursor: row[7].int ?? 0,
                    scheduledAt: row[8].int ?? 0)
            }
        }
    }

    /// A message to add while expanding a dispatch.
    public struct NewMessage: Sendable {
        public let userID: Int64
        public let channel: String
        public let variant: String
        public let notBefore: Int64
        public let triggerProperties: JSONValue?
        /// Control-group users get a settled `control` row instead of a queued message.
        public let isControl: Bool
        /// Whether the message counts toward frequency caps.
        public let capped: Bool
    }

    /// Adds one page of a dispatch's messages and moves its cursor, in one transaction that first
    /// moves the cursor from where this round read it (so a page two nodes expand at once is added
    /// once: the second rolls back). With a campaign rate limit, each new message gets the next
    /// slot (`intervalMilliseconds` apart), and the next free slot is stored so the pace holds
    /// across restarts and nodes.
    public func addMessages(
        _ messages: [NewMessage], dispatch: Dispatch, cursor: Int64, finished: Bool, intervalMilliseconds: Int64?
    ) async throws {
        let now = self.now
        do {
            try await database.write { connection in
                let moved = try connection.query(
                    "UPDATE dispatches SET cursor = ?, state = ?, expanded_at = ? WHERE id = ? AND cursor = ? AND state = ? RETURNING id",
                    [.integer(cursor), (finished ? DispatchState.expanded : .pending).sql, finished ? .integer(now) : .null, .text(dispatch.id),
                     .integer(dispatch.cursor), DispatchState.pending.sql])
                guard !moved.isEmpty else { throw ExpansionRace() }
                var nextSlot = now
                if let campaignID = dispatch.campaignID, intervalMilliseconds != nil {
                    try connection.execute(
                        "INSERT INTO campaign_pacing (campaign_id, next_slot) VALUES (?, ?) ON CONFLICT (campaign_id) DO NOTHING",
                        [.text(campaignID), .integer(now)])
                    let lock = connection.dialect.kind == .postgres ? " FOR UPDATE" : ""
                    nextSlot = max(now, try connection.first(
                        "SELECT next_slot FROM campaign_pacing WHERE campaign_id = ?\(lock)", [.text(campaignID)])?[0].int ?? now)
                }
                var rows: [[SQLValue]] = []
                var events: [[SQLValue]] = []
                for message in messages {
                    let id = Self.messageID(dispatchID: dispatch.id, userID: message.userID, channel: message.channel)
                    var notBefore = message.notBefore
                    if let interval = intervalMilliseconds, !message.isControl {
                        notBefore = max(notBefore, nextSlot)
                        nextSlot = notBefore + interval
                    }
                    rows.append([
                        .text(id), .integer(dispatch.workspaceID), .text(dispatch.id), .text(dispatch.campaignID), .integer(message.userID),
                        .text(message.channel), .text(message.variant), (message.isControl ? MessageState.control : .queued).sql, .integer(0),
                        .integer(notBefore), .text(message.triggerProperties?.serialized()), .bool(message.capped), .integer(now), .integer(now),
                    ])
                    if message.isControl {
                        events.append(Self.eventRow(
                            workspaceID: dispatch.workspaceID, time: now, type: "control", campaignID: dispatch.campaignID, dispatchID: dispatch.id,
                            messageID: id, variant: message.variant, userID: message.userID, externalID: nil, channel: message.channel, details: nil))
                    }
                }
                try connection.insertRows(into: "messages",
                    columns: ["id", "workspace_id", "dispatch_id", "campaign_id", "user_id", "channel", "variant", "state", "attempts", "not_before",
                              "trigger_properties", "capped", "created_at", "updated_at"],
                    rows: rows, suffix: " ON CONFLICT (id) DO NOTHING")
                try Self.insertEvents(connection, events)
                if let campaignID = dispatch.campaignID, intervalMilliseconds != nil {
                    try connection.execute("UPDATE campaign_pacing SET next_slot = ? WHERE campaign_id = ?", [.integer(nextSlot), .text(campaignID)])
                }
            }
        } catch is ExpansionRace {
            return
        }
    }

    // MARK: Claims and leases

    /// Whether claims are written: on PostgreSQL several nodes share the queue, so a claim marks
    /// its messages `sending` under this node's lease. SQLite is one node by construction (the
    /// serving process locks its data folder) and a node holds one claim batch at a time, so a
    /// claim is held in memory: each message is written once when expanded and once when settled.
    var claimsAreLeased: Bool { database.dialect.kind == .postgres }

    /// Takes up to `limit` due messages of active (or campaign-less) dispatches. On PostgreSQL they
    /// are marked `sending` under this node's lease, and rows another node is claiming are skipped.
    public func claim(limit: Int) async throws -> [QueuedMessage] {
        let now = self.now
        let node = self.node
        let leased = claimsAreLeased
        let lock = database.dialect.skipLocked("m")
        let select = """
            SELECT m.id, m.workspace_id, m.dispatch_id, m.campaign_id, m.user_id, m.channel, m.variant, m.attempts, m.trigger_properties
            FROM messages m WHERE m.state = ? AND m.not_before <= ?
            AND (m.campaign_id IS NULL OR m.campaign_id IN (SELECT id FROM campaigns WHERE state = 'active'))
            ORDER BY m.not_before LIMIT ?\(lock)
            """
        // In memory (SQLite), claimed messages stay `queued` until settled: read past them.
        let held = leased ? [] : inFlight.withLock { $0 }
        let arguments: [SQLValue] = [MessageState.queued.sql, .integer(now), .integer(Int64(limit + held.count))]
        let work: @Sendable (any SQLConnection) throws -> [QueuedMessage] = { connection in
            let rows = Array(try connection.query(select, arguments).lazy.filter { !held.contains($0[0].string ?? "") }.prefix(limit))
            if leased {
                for chunk in stride(from: 0, to: rows.count, by: 500) {
                    let ids = rows[chunk..<min(chunk + 500, rows.count)].map { $0[0] }
                    try connection.execute(
                        """
                        UPDATE messages SET state = ?, lease_owner = ?, lease_expires_at = ?
                        WHERE id IN (\(ids.map { _ in "?" }.joined(separator: ", ")))
                        """,
                        [MessageState.sending.sql, .text(node.nodeID), .integer(now + node.leaseMilliseconds)] + ids)
                }
            }
            return try rows.map { row in
                let id = row[0].string ?? ""
                return QueuedMessage(
                    id: id, workspaceID: row[1].int ?? 0, dispatchID: row[2].string ?? "", campaignID: row[3].string,
                    userID: row[4].int ?? 0, channel: row[5].string ?? "", variant: row[6].string ?? "", attempts: Int(row[7].int ?? 0) + 1,
                    triggerProperties: try row[8].storedJSON(table: "messages", row: id, column: "trigger_properties"))
            }
        }
        if leased { return try await database.write(work) }
        let claimed = try await database.read(work)
        inFlight.withLock { $0.formUnion(claimed.map(\.id)) }
        return claimed
    }

    /// Messages no longer out (settled, or given up after an error): later claims may take them.
    func release(_ ids: [String]) {
        guard !claimsAreLeased else { return }
        inFlight.withLock { $0.subtract(ids) }
    }

    /// Forgets every in-memory claim (after a failed round: unsettled messages are sent again
    /// under their ids).
    func releaseAll() {
        inFlight.withLock { $0.removeAll() }
    }

    /// Extends the leases of every message this node is sending.
    public func renewLeases() async throws {
        guard claimsAreLeased else { return }
        let now = self.now
        let node = self.node
        try await database.write { connection in
            try connection.execute(
                "UPDATE messages SET lease_expires_at = ? WHERE state = ? AND lease_owner = ?",
                [.integer(now + node.leaseMilliseconds), MessageState.sending.sql, .text(node.nodeID)])
        }
    }

    /// Re-queues claims whose lease expired (their node stopped renewing: it died or lost the
    /// database), and — when `includingOwn` — every claim under this node's id (a previous run of
    /// this node). They go out again under the same message id. Returns how many.
    @discardableResult
    public func requeueExpiredLeases(includingOwn: Bool = false) async throws -> Int {
        let now = self.now
        let node = self.node
        return try await database.write { connection in
            var sql = "UPDATE messages SET state = ?, lease_owner = NULL, lease_expires_at = NULL WHERE state = ? AND (lease_expires_at IS NULL OR lease_expires_at < ?"
            var arguments: [SQLValue] = [MessageState.queued.sql, MessageState.sending.sql, .integer(now)]
            if includingOwn {
                sql += " OR lease_owner = ?"
                arguments.append(.text(node.nodeID))
            }
            return try connection.query(sql + ") RETURNING id", arguments).count
        }
    }

    // MARK: Settling

    /// A settled message with the profile's external id (for engagement events and the log).
    public struct Settlement: Sendable {
        public let message: QueuedMessage
        public let externalID: String?
        public let outcome: MessageOutcome
        /// The next channel of the campaign's `channel_priority` to queue for this user in the
        /// same transaction (after a dead address), and whether its send counts toward caps.
        public var fallback: (channel: String, capped: Bool)? = nil
    }

    /// Settles messages this node still holds and writes their engagement events, in one
    /// transaction. A message whose lease was lost (another node took it over) is left alone.
    /// Returns the settlements that took effect.
    @discardableResult
    public func settle(_ results: [Settlement]) async throws -> [Settlement] {
        guard !results.isEmpty else { return [] }
        let now = self.now
        let node = self.node
        let leased = claimsAreLeased
        // Messages that end the same way are updated with one statement.
        struct Change: Hashable {
            let state: MessageState
            let attempts: Int
            let notBefore: Int64?
            let error: String?
        }
        var groups: [Change: [Int]] = [:]
        var order: [Change] = []
        var eventTypes: [[(String, String?)]] = []
        for (index, result) in results.enumerated() {
            let change: Change
            var types: [(String, String?)] = []
            switch result.outcome {
            case .delivered(let detail):
                change = Change(state: .delivered, attempts: result.message.attempts, notBefore: nil, error: nil)
                types = [("delivery", detail)]
            case .retry(let at, let reason, let countsAsAttempt):
                change = Change(
                    state: .queued, attempts: countsAsAttempt ? result.message.attempts : result.message.attempts - 1, notBefore: at, error: reason)
            case .failed(let reason, _, _, _):
                change = Change(state: .failed, attempts: result.message.attempts, notBefore: nil, error: reason)
                types = [("failure", reason)]
            case .aborted(let reason):
                change = Change(state: .aborted, attempts: result.message.attempts, notBefore: nil, error: reason)
                types = [("abort", reason)]
            case .skipped(let reason):
                change = Change(state: .skipped, attempts: result.message.attempts, notBefore: nil, error: reason)
                types = [("skip", reason)]
            }
            if groups[change] == nil { order.append(change) }
            groups[change, default: []].append(index)
            eventTypes.append(types)
        }
        let plan = order.map { ($0, groups[$0] ?? []) }
        let types = eventTypes
        let settledIndexes = try await database.write { connection -> [Int] in
            // Only messages this node still holds: leased to it (PostgreSQL), or still queued (SQLite).
            let state = connection.dialect.withoutIndex("state")
            let held = leased ? "\(state) = ? AND lease_owner = ?" : "\(state) = ?"
            let holder: [SQLValue] = leased ? [MessageState.sending.sql, .text(node.nodeID)] : [MessageState.queued.sql]
            var settled: [Int] = []
            for (change, indexes) in plan {
                for start in stride(from: 0, to: indexes.count, by: 500) {
                    let chunk = indexes[start..<min(start + 500, indexes.count)]
                    var position: [String: Int] = [:]
                    for index in chunk { position[results[index].message.id] = index }
                    let updated = try connection.query(
                        """
                        UPDATE messages SET state = ?, attempts = ?, not_before = COALESCE(?, not_before), last_error = ?, lease_owner = NULL,
                            lease_expires_at = NULL, updated_at = ?
                        WHERE id IN (\(chunk.map { _ in "?" }.joined(separator: ", "))) AND \(held) RETURNING id
                        """,
                        [change.state.sql, .integer(Int64(change.attempts)), .integer(change.notBefore), .text(change.error), .integer(now)]
                            + chunk.map { .text(results[$0].message.id) } + holder)
                    settled += updated.compactMap { $0[0].string.flatMap { position[$0] } }
                }
            }
            settled.sort()
            var events: [[SQLValue]] = []
            var sentCampaigns: Set<String> = []
            for index in settled {
                let result = results[index]
                let message = result.message
                for (type, details) in types[index] {
                    events.append(Self.eventRow(
                        workspaceID: message.workspaceID, time: now, type: type, campaignID: message.campaignID, dispatchID: message.dispatchID,
                        messageID: message.id, variant: message.variant, userID: message.userID, externalID: result.externalID,
                        channel: message.channel, details: details))
                }
                guard let campaignID = message.campaignID else { continue }
                switch result.outcome {
                case .delivered, .failed:
                    sentCampaigns.insert(campaignID)
                case .aborted, .skipped:
                    // A trigger that ended in an abort or skip did not reach the user: they may enter again.
                    try connection.execute(
                        "DELETE FROM campaign_entries WHERE campaign_id = ? AND user_id = ? AND dispatch_id = ?",
                        [.text(campaignID), .integer(message.userID), .text(message.dispatchID)])
                case .retry:
                    break
                }
            }
            try Self.insertEvents(connection, events)
            // Fallback channels: one message per (dispatch, user, channel), so a repeat adds nothing.
            let fallbacks = settled.compactMap { index -> [SQLValue]? in
                let result = results[index]
                guard let fallback = result.fallback else { return nil }
                let message = result.message
                return [
                    .text(Self.messageID(dispatchID: message.dispatchID, userID: message.userID, channel: fallback.channel)),
                    .integer(message.workspaceID), .text(message.dispatchID), .text(message.campaignID), .integer(message.userID),
                    .text(fallback.channel), .text(message.variant), MessageState.queued.sql, .integer(0), .integer(now),
                    .text(message.triggerProperties?.serialized()), .bool(fallback.capped), .integer(now), .integer(now),
                ]
            }
            try connection.insertRows(into: "messages",
                columns: ["id", "workspace_id", "dispatch_id", "campaign_id", "user_id", "channel", "variant", "state", "attempts", "not_before",
                          "trigger_properties", "capped", "created_at", "updated_at"],
                rows: fallbacks, suffix: " ON CONFLICT (id) DO NOTHING")
            for campaignID in sentCampaigns.sorted() {
                try connection.execute(
                    "UPDATE campaigns SET first_sent_at = COALESCE(first_sent_at, ?), last_sent_at = ? WHERE id = ?",
                    [.integer(now), .integer(now), .text(campaignID)])
            }
            return settled
        }
        let settled = settledIndexes.map { results[$0] }
        Self.count(settled)
        return settled
    }

    /// Engagement events of a campaign by type (`delivery`, `failure`, `abort`, `skip`, `control`,
    /// `conversion`) and `send`: every message handed to its channel, delivered or failed (one row
    /// per settled message stands for both its send and its outcome).
    public func engagementCounts(campaignID: String) async throws -> [String: Int] {
        try await database.read { connection in
            let rows = try connection.query("SELECT type, COUNT(*) FROM engagement_events WHERE campaign_id = ? GROUP BY type", [.text(campaignID)])
            var counts = Dictionary(uniqueKeysWithValues: rows.map { ($0[0].string ?? "", Int($0[1].int ?? 0)) })
            let sent = (counts["delivery"] ?? 0) + (counts["failure"] ?? 0)
            if sent > 0 { counts["send"] = sent }
            return counts
        }
    }

    /// Queued messages of a campaign, counted up to `limit` (the expansion's look-ahead).
    public func queuedCount(campaignID: String, limit: Int) async throws -> Int {
        try await database.read { connection in
            Int(try connection.first(
                "SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE campaign_id = ? AND state = ? LIMIT ?) AS ahead",
                [.text(campaignID), MessageState.queued.sql, .integer(Int64(limit))])?[0].int ?? 0)
        }
    }

    /// Delivered messages counting toward caps that `userID` got since `since` (epoch ms), on `channel` or any.
    public func deliveredCount(userID: Int64, since: Int64, channel: String?) async throws -> Int {
        try await database.read { connection in
            var sql = "SELECT COUNT(*) FROM messages WHERE user_id = ? AND \(connection.dialect.withoutIndex("state")) = ? AND capped = 1 AND updated_at >= ?"
            var arguments: [SQLValue] = [.integer(userID), MessageState.delivered.sql, .integer(since)]
            if let channel {
                sql += " AND channel = ?"
                arguments.append(.text(channel))
            }
            return Int(try connection.first(sql, arguments)?[0].int ?? 0)
        }
    }

    /// Moves a dispatch that has not been expanded yet to `scheduledAt`; false when it is already
    /// expanded, cancelled or unknown.
    public func reschedule(dispatchID: String, workspaceID: Int64, scheduledAt: Int64, triggerProperties: JSONValue?) async throws -> Bool {
        try await database.write { connection in
            var sql = "UPDATE dispatches SET scheduled_at = ?"
            var arguments: [SQLValue] = [.integer(scheduledAt)]
            if let triggerProperties {
                sql += ", trigger_properties = ?"
                arguments.append(.text(triggerProperties.serialized()))
            }
            sql += " WHERE id = ? AND workspace_id = ? AND state = ? AND cursor = 0 RETURNING id"
            arguments += [.text(dispatchID), .integer(workspaceID), DispatchState.pending.sql]
            return try !connection.query(sql, arguments).isEmpty
        }
    }

    /// Cancels a dispatch not yet sent, with its queued messages; false when there is nothing to cancel.
    public func cancel(dispatchID: String, workspaceID: Int64) async throws -> Bool {
        let now = self.now
        return try await database.write { connection in
            let cancelled = try connection.query(
                "UPDATE dispatches SET state = ? WHERE id = ? AND workspace_id = ? AND state IN (?, ?) RETURNING campaign_id",
                [DispatchState.cancelled.sql, .text(dispatchID), .integer(workspaceID), DispatchState.pending.sql, DispatchState.expanded.sql])
            guard let row = cancelled.first else { return false }
            // Through the campaign's queued messages (`messages (campaign_id, state)`): a dispatch
            // without a campaign (`/messages/send`) cannot be scheduled, so never cancelled here.
            try connection.execute(
                "UPDATE messages SET state = ?, updated_at = ? WHERE campaign_id = ? AND state = ? AND dispatch_id = ?",
                [MessageState.cancelled.sql, .integer(now), row[0], MessageState.queued.sql, .text(dispatchID)])
            return true
        }
    }

    // MARK: Rows

    /// `beckon_messages_total{channel, outcome}` for `/metrics`.
    static func count(_ results: [Settlement]) {
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

    static let eventColumns = [
        "workspace_id", "time", "type", "campaign_id", "dispatch_id", "message_id", "variant", "user_id", "external_id", "channel", "details",
    ]

    static func eventRow(
        workspaceID: Int64, time: Int64, type: String, campaignID: String?, dispatchID: String, messageID: String, variant: String,
        userID: Int64, externalID: String?, channel: String, details: String?
    ) -> [SQLValue] {
        [.integer(workspaceID), .integer(time), .text(type), .text(campaignID), .text(dispatchID), .text(messageID), .text(variant),
         .integer(userID), .text(externalID), .text(channel), .text(details)]
    }

    static func insertEvents(_ connection: any SQLConnection, _ rows: [[SQLValue]]) throws {
        try connection.insertRows(into: "engagement_events", columns: eventColumns, rows: rows)
    }

    /// `msg_`, 16 hex digits of SHA-256(dispatch, channel) and the user id as 16 hex digits:
    /// stable across retries, restarts and nodes, and in user order within a dispatch, so a page of
    /// new messages lands in one place of the primary-key index instead of on random pages.
    static func messageID(dispatchID: String, userID: Int64, channel: String) -> String {
        "msg_" + Hex.digest("\(dispatchID)|\(channel)", digits: 16) + Hex.fixedWidth(UInt64(bitPattern: userID))
    }
}
