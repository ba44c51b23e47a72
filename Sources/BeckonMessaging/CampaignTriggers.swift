import BeckonCore
import BeckonSegments
import BeckonStorage
import Foundation
import Logging
import Synchronization

/// Reacts to what users do, through the trigger outbox: ingestion writes the facts active
/// campaigns react to in the same transaction as the data (`interest`), and `processOutbox`
/// turns them into dispatches, cancellations (`cancel_if`), conversions and segment entries in
/// one transaction that also deletes them — so a crash at any point loses nothing and repeats
/// nothing. One node consumes the outbox at a time (advisory lock); a once-only campaign is
/// enforced by the `campaign_entries` key, not by a check before an insert.
public final class CampaignTriggers: Sendable {
    let database: any SQLDatabase
    let users: UserStore
    let segments: SegmentService
    let clock: any BeckonClock
    let logger: Logger

    /// An active campaign that reacts to actions.
    struct ReactingCampaign: Sendable {
        let id: String
        let definition: CampaignDefinition
        let json: JSONValue
    }

    /// Active campaigns that react to actions, per workspace, with when they were read.
    private let cache = Mutex<[Int64: (campaigns: [ReactingCampaign], readAt: ContinuousClock.Instant)]>([:])

    public init(database: any SQLDatabase, users: UserStore, segments: SegmentService, clock: any BeckonClock, logger: Logger) {
        self.database = database
        self.users = users
        self.segments = segments
        self.clock = clock
        self.logger = logger
    }

    /// Forgets the workspace's campaigns after one changed (other nodes notice within 2 s).
    public func invalidate(workspaceID: Int64) {
        cache.withLock { _ = $0.removeValue(forKey: workspaceID) }
    }

    /// The facts ingestion must write to the outbox for `workspaceID`: those its active
    /// campaigns trigger on, cancel on or count as conversions.
    public func interest(workspaceID: Int64) async throws -> TriggerInterest {
        var interest = TriggerInterest()
        func add(_ action: CampaignDefinition.Action) {
            switch action {
            case .event(let name, _): interest.eventNames.insert(name)
            case .purchase: interest.purchases = true
            case .sessionStart: interest.sessionStarts = true
            case .enteredSegment: interest.profileUpdates = true
            case .pushOpened: interest.pushOpens = true
            }
        }
        for campaign in try await reactingCampaigns(workspaceID: workspaceID) {
            campaign.definition.conversionEvents.forEach { add($0.action) }
            if case .actionBased(let delivery) = campaign.definition.delivery {
                add(delivery.trigger)
                delivery.cancelIf.forEach(add)
            }
        }
        return interest
    }

    /// Facts waiting in the outbox (for `/metrics` and tests).
    public func outboxDepth() async throws -> Int {
        try await database.read { connection in Int(try connection.first("SELECT COUNT(*) FROM trigger_outbox")?[0].int ?? 0) }
    }

    /// Consumes up to `limit` outbox facts, oldest first. Returns how many were consumed (0 when
    /// there were none, or another node is consuming).
    @discardableResult
    public func processOutbox(limit: Int = 500) async throws -> Int {
        let facts = try await database.read { connection in
            try connection.query(
                "SELECT id, workspace_id, user_id, kind, name, properties, time, observed_at FROM trigger_outbox ORDER BY id LIMIT ?",
                [.integer(Int64(limit))]
            ).map { row -> OutboxFact in
                let id = row[0].int ?? 0
                guard let kind = OutboxFact.Kind(rawValue: row[3].string ?? "") else {
                    throw StoredDataError(table: "trigger_outbox", row: "\(id)", column: "kind", problem: "unknown kind '\(row[3].string ?? "")'")
                }
                return OutboxFact(
                    id: id, workspaceID: row[1].int ?? 0, userID: row[2].int ?? 0, kind: kind, name: row[4].string,
                    properties: try row[5].storedObject(table: "trigger_outbox", row: "\(id)", column: "properties"), time: row[6].int ?? 0,
                    observedAt: row[7].int ?? 0)
            }
        }
        guard !facts.isEmpty else { return 0 }
        let plan = try await prepare(facts)
        let consumed = try await database.write { connection -> Int in
            guard try SingletonJob.triggerOutbox.tryLock(connection) else { return 0 }
            let ids = facts.map { SQLValue.integer($0.id) }
            var deleted = 0
            for start in stride(from: 0, to: ids.count, by: 500) {
                let chunk = Array(ids[start..<min(start + 500, ids.count)])
                deleted += try connection.query(
                    "DELETE FROM trigger_outbox WHERE id IN (\(chunk.map { _ in "?" }.joined(separator: ", "))) RETURNING id", chunk).count
            }
            // Another consumer took some of them first: roll back and read again.
            guard deleted == facts.count else { throw OutboxRace() }
            var segmentChecked: Set<String> = []
            for fact in facts {
                for campaign in plan.campaigns[fact.workspaceID] ?? [] {
                    try self.apply(fact, campaign: campaign, plan: plan, segmentChecked: &segmentChecked, connection: connection)
                }
            }
            return facts.count
        }
        return consumed
    }

    /// What applying a batch needs from outside the transaction: campaigns, segment membership
    /// of the users for entered-segment campaigns, and time zones for local-time delays.
    struct Plan: Sendable {
        var campaigns: [Int64: [ReactingCampaign]] = [:]
        /// `campaign|user` → inside the watched segment now.
        var membership: [String: Bool] = [:]
        var userZones: [Int64: String] = [:]
        var workspaceZones: [Int64: TimeZone] = [:]
    }

    private func prepare(_ facts: [OutboxFact]) async throws -> Plan {
        var plan = Plan()
        var localTimeUsers: Set<Int64> = []
        for workspaceID in Set(facts.map(\.workspaceID)).sorted() {
            let campaigns = try await reactingCampaigns(workspaceID: workspaceID)
            plan.campaigns[workspaceID] = campaigns
            let userIDs = Array(Set(facts.filter { $0.workspaceID == workspaceID }.map(\.userID))).sorted()
            for campaign in campaigns {
                guard case .actionBased(let delivery) = campaign.definition.delivery else { continue }
                if case .atLocalTime = delivery.delay { localTimeUsers.formUnion(userIDs) }
                guard case .enteredSegment(let segmentID) = delivery.trigger else { continue }
                let segment: Segment
                do {
                    segment = try await segments.segment(workspaceID: workspaceID, id: segmentID)
                } catch let error as SegmentError where error.kind == .notFound {
                    // The watched segment was deleted: nobody can enter it.
                    logger.warning("entered-segment campaign watches a deleted segment", metadata: ["campaign": "\(campaign.id)", "segment": "\(segmentID)"])
                    continue
                }
                let inside = Set(try await segments.memberIDs(
                    workspaceID: workspaceID, filter: segment.filter, among: userIDs, after: 0, limit: userIDs.count))
                for userID in userIDs { plan.membership["\(campaign.id)|\(userID)"] = inside.contains(userID) }
            }
            plan.workspaceZones[workspaceID] = try await workspaceTimeZone(workspaceID)
        }
        if !localTimeUsers.isEmpty { plan.userZones = try await users.timeZones(ids: localTimeUsers.sorted()) }
        return plan
    }

    private func apply(
        _ fact: OutboxFact, campaign: ReactingCampaign, plan: Plan, segmentChecked: inout Set<String>, connection: any SQLConnection
    ) throws {
        let action = ObservedAction(fact)
        let now = fact.observedAt
        for (index, conversion) in campaign.definition.conversionEvents.enumerated() where conversion.action.matches(action, campaignID: campaign.id) {
            try Self.recordConversion(
                connection, workspaceID: fact.workspaceID, campaignID: campaign.id, userID: fact.userID, label: ["A", "B", "C", "D"][index],
                time: now, windowMilliseconds: Int64(conversion.windowSeconds) * 1_000)
        }
        guard case .actionBased(let delivery) = campaign.definition.delivery else { return }
        if delivery.cancelIf.contains(where: { $0.matches(action, campaignID: campaign.id) }) {
            try Self.cancelPending(connection, campaignID: campaign.id, userID: fact.userID, now: now)
        }
        let key = "\(campaign.id)|\(fact.userID)"
        if case .enteredSegment = delivery.trigger {
            guard segmentChecked.insert(key).inserted, let inside = plan.membership[key] else { return }
            guard try Self.noteSegmentMembership(connection, campaignID: campaign.id, userID: fact.userID, inside: inside, now: now) else { return }
        } else if !delivery.trigger.matches(action, campaignID: campaign.id) {
            return
        }
        let dispatchID = DispatchID.derived("action", campaign.id, String(fact.userID), String(fact.id))
        guard try Self.claimEntry(
            connection, campaignID: campaign.id, userID: fact.userID, dispatchID: dispatchID, now: now,
            reeligibleAfterMilliseconds: delivery.reeligibleAfterDays.map { Int64($0) * 86_400_000 })
        else { return }
        let sendAt: Int64
        switch delivery.delay {
        case .seconds(let seconds):
            sendAt = now + Int64(seconds) * 1_000
        case .atLocalTime(let hour, let minute, let afterDays):
            let zone = plan.userZones[fact.userID].flatMap(TimeZone.init(identifier:)) ?? plan.workspaceZones[fact.workspaceID]
                ?? TimeZone(identifier: "UTC")!
            sendAt = Self.localTime(
                hour: hour, minute: minute, afterDays: afterDays, from: Date(timeIntervalSince1970: Double(now) / 1_000), in: zone)
        }
        try SendQueue.insertDispatch(
            NewDispatch(
                id: dispatchID, workspaceID: fact.workspaceID, campaignID: campaign.id, kind: .actionBased, definition: campaign.json,
                triggerProperties: .object(fact.properties), recipients: .array([.object(["beckon_user_id": .int(fact.userID)])]),
                scheduledAt: sendAt, userID: fact.userID),
            connection: connection, now: now)
    }

    // MARK: Effects (inside the consuming transaction)

    /// Makes `userID` an entrant of the campaign: true when the user may get it now — never
    /// entered, or (with re-eligibility) entered longer ago than the period. The primary key on
    /// (campaign, user) decides, so concurrent triggers cannot both enter.
    static func claimEntry(
        _ connection: any SQLConnection, campaignID: String, userID: Int64, dispatchID: String, now: Int64, reeligibleAfterMilliseconds: Int64?
    ) throws -> Bool {
        let values: [SQLValue] = [.text(campaignID), .integer(userID), .integer(now), .text(dispatchID)]
        let insert = "INSERT INTO campaign_entries (campaign_id, user_id, entered_at, dispatch_id) VALUES (?, ?, ?, ?) ON CONFLICT (campaign_id, user_id)"
        guard let period = reeligibleAfterMilliseconds else {
            return try !connection.query(insert + " DO NOTHING RETURNING user_id", values).isEmpty
        }
        return try !connection.query(
            insert + " DO UPDATE SET entered_at = excluded.entered_at, dispatch_id = excluded.dispatch_id WHERE campaign_entries.entered_at <= ? RETURNING user_id",
            values + [.integer(now - period)]).isEmpty
    }

    /// Records whether `userID` is inside the segment an entered-segment campaign watches; true
    /// only when the user was outside before (a new entry).
    static func noteSegmentMembership(_ connection: any SQLConnection, campaignID: String, userID: Int64, inside: Bool, now: Int64) throws -> Bool {
        if inside {
            return try !connection.query(
                "INSERT INTO segment_entries (campaign_id, user_id, entered_at) VALUES (?, ?, ?) ON CONFLICT (campaign_id, user_id) DO NOTHING RETURNING user_id",
                [.text(campaignID), .integer(userID), .integer(now)]).isEmpty
        }
        try connection.execute("DELETE FROM segment_entries WHERE campaign_id = ? AND user_id = ?", [.text(campaignID), .integer(userID)])
        return false
    }

    /// Cancels what a campaign has pending or queued for `userID`; the user may enter again.
    static func cancelPending(_ connection: any SQLConnection, campaignID: String, userID: Int64, now: Int64) throws {
        let campaign = SQLValue.text(campaignID)
        let user = SQLValue.integer(userID)
        var dispatchIDs = try connection.query(
            "UPDATE dispatches SET state = ? WHERE campaign_id = ? AND user_id = ? AND state = ? RETURNING id",
            [DispatchState.cancelled.sql, campaign, user, DispatchState.pending.sql]).compactMap { $0[0].string }
        dispatchIDs += try connection.query(
            "UPDATE messages SET state = ?, updated_at = ? WHERE user_id = ? AND campaign_id = ? AND \(connection.dialect.withoutIndex("state")) = ? RETURNING dispatch_id",
            [MessageState.cancelled.sql, .integer(now), user, campaign, MessageState.queued.sql]).compactMap { $0[0].string }
        for dispatchID in Set(dispatchIDs).sorted() {
            try connection.execute(
                "DELETE FROM campaign_entries WHERE campaign_id = ? AND user_id = ? AND dispatch_id = ?", [campaign, user, .text(dispatchID)])
        }
    }

    /// Records conversion `label` (A–D) for a user sent the campaign within `windowMilliseconds`
    /// before `time`, once per user per campaign per label (a primary key decides).
    static func recordConversion(
        _ connection: any SQLConnection, workspaceID: Int64, campaignID: String, userID: Int64, label: String, time: Int64,
        windowMilliseconds: Int64
    ) throws {
        guard let sent = try connection.first(
            """
            SELECT id, dispatch_id, variant, channel FROM messages WHERE user_id = ? AND campaign_id = ? AND \(connection.dialect.withoutIndex("state")) IN (?, ?)
            AND updated_at <= ? AND updated_at >= ? ORDER BY updated_at DESC LIMIT 1
            """,
            [.integer(userID), .text(campaignID), MessageState.delivered.sql, MessageState.failed.sql, .integer(time),
             .integer(time - windowMilliseconds)])
        else { return }
        let recorded = try connection.query(
            """
            INSERT INTO campaign_conversions (campaign_id, user_id, label, time) VALUES (?, ?, ?, ?)
            ON CONFLICT (campaign_id, user_id, label) DO NOTHING RETURNING user_id
            """, [.text(campaignID), .integer(userID), .text(label), .integer(time)])
        guard !recorded.isEmpty else { return }
        try SendQueue.insertEvents(connection, [SendQueue.eventRow(
            workspaceID: workspaceID, time: time, type: "conversion", campaignID: campaignID, dispatchID: sent[1].string ?? "",
            messageID: sent[0].string ?? "", variant: sent[2].string ?? "", userID: userID, externalID: nil, channel: sent[3].string ?? "",
            details: label)])
    }

    /// Epoch ms of `hour:minute` on the day `afterDays` after `date`, in `zone`.
    static func localTime(hour: Int, minute: Int, afterDays: Int, from date: Date, in zone: TimeZone) -> Int64 {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let day = calendar.date(byAdding: .day, value: afterDays, to: date) ?? date
        let target = calendar.date(bySettingHour: hour, minute: minute, second: 0, of: day) ?? day
        return BrazeTime.epochMilliseconds(target)
    }

    private func workspaceTimeZone(_ workspaceID: Int64) async throws -> TimeZone {
        let name = try await database.read { connection in
            try connection.first("SELECT time_zone FROM workspaces WHERE id = ?", [.integer(workspaceID)])?[0].string
        }
        return name.flatMap(TimeZone.init(identifier:)) ?? TimeZone(identifier: "UTC")!
    }

    private func reactingCampaigns(workspaceID: Int64) async throws -> [ReactingCampaign] {
        let now = ContinuousClock.now
        if let cached = cache.withLock({ $0[workspaceID] }), now - cached.readAt < .seconds(2) { return cached.campaigns }
        let rows = try await database.read { connection in
            try connection.query("SELECT id, definition FROM campaigns WHERE workspace_id = ? AND state = 'active'", [.integer(workspaceID)])
        }
        var campaigns: [ReactingCampaign] = []
        for row in rows {
            let id = row[0].string ?? ""
            let definition: CampaignDefinition
            let json: JSONValue
            do {
                json = try row[1].storedJSON(table: "campaigns", row: id, column: "definition") ?? .null
                definition = try CampaignDefinition.parse(json, channels: nil)
            } catch {
                // A definition that no longer validates cannot send; it must not stop the others.
                logger.error("active campaign cannot be read; its triggers are not evaluated", metadata: ["campaign": "\(id)", "error": "\(error)"])
                continue
            }
            let reacts: Bool
            if case .actionBased = definition.delivery { reacts = true } else { reacts = !definition.conversionEvents.isEmpty }
            if reacts { campaigns.append(ReactingCampaign(id: id, definition: definition, json: json)) }
        }
        cache.withLock { $0[workspaceID] = (campaigns, now) }
        return campaigns
    }
}

/// Another consumer deleted some of the facts this one read: its transaction rolls back.
struct OutboxRace: Error {}

extension ObservedAction {
    /// The action an outbox fact records.
    init(_ fact: OutboxFact) {
        let kind: Kind
        switch fact.kind {
        case .event: kind = .event(fact.name ?? "")
        case .purchase: kind = .purchase(productID: fact.name ?? "")
        case .sessionStart: kind = .sessionStart
        case .profileUpdate: kind = .profileUpdate
        case .pushOpen: kind = .pushOpen(campaignID: fact.name ?? "")
        }
        self.init(kind: kind, properties: fact.properties)
    }
}
