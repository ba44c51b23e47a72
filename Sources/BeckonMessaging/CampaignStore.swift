import BeckonChannels
import BeckonCore
import BeckonStorage
import Foundation

/// A stored campaign: its definition as JSON and where it is in its life.
public struct Campaign: Sendable {
    /// `draft` → `active` (launched) ⇄ `paused`; any → `archived`.
    public enum State: String, Sendable { case draft, active, paused, archived }

    public let id: String
    public let workspaceID: Int64
    public let name: String
    public let tags: [String]
    public let definition: JSONValue
    public let state: State
    public let deliveryType: String
    /// When the scheduler next makes a dispatch (epoch ms), for scheduled campaigns.
    public let nextRunAt: Int64?
    public let createdAt: Int64
    public let updatedAt: Int64
    public let firstSentAt: Int64?
    public let lastSentAt: Int64?
}

/// Why a campaign operation failed.
public struct CampaignError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable { case notFound, invalid, conflict }
    public let kind: Kind
    public let problems: [String]
    public var description: String { problems.joined(separator: "; ") }

    init(_ kind: Kind, _ problems: [String]) {
        self.kind = kind
        self.problems = problems
    }
}

/// Campaigns: create, read, update, delete, and the launch / pause / archive transitions.
public final class CampaignStore: Sendable {
    let database: any SQLDatabase
    let clock: any BeckonClock
    let channels: ChannelCatalog

    public init(database: any SQLDatabase, clock: any BeckonClock, channels: ChannelCatalog) {
        self.database = database
        self.clock = clock
        self.channels = channels
    }

    static let columns = "id, workspace_id, name, tags, definition, state, delivery_type, next_run_at, created_at, updated_at, first_sent_at, last_sent_at"

    public func create(workspaceID: Int64, body: JSONValue) async throws -> Campaign {
        let definition = try definition(body)
        let id = "cmp_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20)
        let now = BrazeTime.epochMilliseconds(clock.now())
        let tags = JSONValue.array(definition.tags.map(JSONValue.string)).serialized()
        try await database.write { connection in
            try connection.execute(
                "INSERT INTO campaigns (\(Self.columns)) VALUES (?, ?, ?, ?, ?, 'draft', ?, NULL, ?, ?, NULL, NULL)",
                [.text(id), .integer(workspaceID), .text(definition.name), .text(tags), .text(body.serialized()),
                 .text(definition.delivery.type), .integer(now), .integer(now)])
        }
        return try await campaign(workspaceID: workspaceID, id: id)
    }

    /// Replaces the definition. A launched campaign keeps running: dispatches already made keep the
    /// definition they were made with; a scheduled one is rescheduled to its new time.
    public func update(workspaceID: Int64, id: String, body: JSONValue) async throws -> Campaign {
        let definition = try definition(body)
        let existing = try await campaign(workspaceID: workspaceID, id: id)
        guard existing.state != .archived else { throw CampaignError(.conflict, ["campaign \(id) is archived; it cannot be edited"]) }
        let now = BrazeTime.epochMilliseconds(clock.now())
        // Only a schedule that has not fired yet moves; a dispatch already made is never made again.
        let nextRun = existing.nextRunAt == nil ? nil : try Self.nextRun(definition, now: now, launching: false)
        let tags = JSONValue.array(definition.tags.map(JSONValue.string)).serialized()
        try await database.write { connection in
            try connection.execute(
                "UPDATE campaigns SET name = ?, tags = ?, definition = ?, delivery_type = ?, next_run_at = ?, updated_at = ? WHERE id = ?",
                [.text(definition.name), .text(tags), .text(body.serialized()), .text(definition.delivery.type), .integer(nextRun),
                 .integer(now), .text(id)])
        }
        return try await campaign(workspaceID: workspaceID, id: id)
    }

    public func campaign(workspaceID: Int64, id: String) async throws -> Campaign {
        let found = try await database.read { connection in
            try connection.first("SELECT \(Self.columns) FROM campaigns WHERE workspace_id = ? AND id = ?", [.integer(workspaceID), .text(id)])
                .map(Self.campaign)
        }
        guard let found else { throw CampaignError(.notFound, ["no campaign with id '\(id)'"]) }
        return found
    }

    /// 100 per page, oldest first unless `newestFirst`.
    public func list(workspaceID: Int64, page: Int, includeArchived: Bool, newestFirst: Bool, editedAfter: Int64? = nil) async throws -> [Campaign] {
        var sql = "SELECT \(Self.columns) FROM campaigns WHERE workspace_id = ?"
        var arguments: [SQLValue] = [.integer(workspaceID)]
        if !includeArchived { sql += " AND state <> 'archived'" }
        if let editedAfter {
            sql += " AND updated_at > ?"
            arguments.append(.integer(editedAfter))
        }
        sql += " ORDER BY created_at \(newestFirst ? "DESC" : "ASC"), id LIMIT 100 OFFSET ?"
        arguments.append(.integer(Int64(page) * 100))
        let (query, bound) = (sql, arguments)
        return try await database.read { connection in try connection.query(query, bound).map(Self.campaign) }
    }

    /// Deletes a campaign that is not active, with its queued messages; sent history stays.
    public func delete(workspaceID: Int64, id: String) async throws {
        let existing = try await campaign(workspaceID: workspaceID, id: id)
        guard existing.state != .active else { throw CampaignError(.conflict, ["campaign \(id) is active; pause or archive it first"]) }
        try await database.write { connection in
            try connection.execute("DELETE FROM messages WHERE campaign_id = ? AND state = ?", [.text(id), MessageState.queued.sql])
            try connection.execute("DELETE FROM campaigns WHERE id = ?", [.text(id)])
        }
    }

    /// Validates everything (definition, referenced segments, schedule in the future) and activates.
    public func launch(workspaceID: Int64, id: String) async throws -> Campaign {
        let existing = try await campaign(workspaceID: workspaceID, id: id)
        guard existing.state == .draft || existing.state == .paused else {
            throw CampaignError(.conflict, ["campaign \(id) is \(existing.state.rawValue); only drafts and paused campaigns can be launched"])
        }
        let definition = try definition(existing.definition)
        let now = BrazeTime.epochMilliseconds(clock.now())
        var problems: [String] = []
        let segmentIDs = definition.audience.segmentIDs
        let missing = try await database.read { connection in
            try segmentIDs.filter { segmentID in
                try connection.first("SELECT 1 FROM segments WHERE workspace_id = ? AND id = ?", [.integer(workspaceID), .text(segmentID)]) == nil
            }
        }
        for segmentID in missing { problems.append("audience.segment_ids: no segment with id '\(segmentID)'") }
        var nextRun = existing.nextRunAt
        if existing.state == .draft {
            do {
                nextRun = try Self.nextRun(definition, now: now, launching: true)
            } catch let error as CampaignError {
                problems += error.problems
            }
        }
        guard problems.isEmpty else { throw CampaignError(.invalid, problems) }
        let firstRun = nextRun
        try await database.write { connection in
            try connection.execute(
                "UPDATE campaigns SET state = 'active', next_run_at = ?, updated_at = ? WHERE id = ?",
                [.integer(firstRun), .integer(now), .text(id)])
        }
        return try await campaign(workspaceID: workspaceID, id: id)
    }

    /// Stops sending: queued messages wait until the campaign is launched again.
    public func pause(workspaceID: Int64, id: String) async throws -> Campaign {
        let existing = try await campaign(workspaceID: workspaceID, id: id)
        guard existing.state == .active else { throw CampaignError(.conflict, ["campaign \(id) is \(existing.state.rawValue), not active"]) }
        try await setState(.paused, id: id)
        return try await campaign(workspaceID: workspaceID, id: id)
    }

    /// Ends the campaign: messages not yet sent are cancelled.
    public func archive(workspaceID: Int64, id: String) async throws -> Campaign {
        _ = try await campaign(workspaceID: workspaceID, id: id)
        let now = BrazeTime.epochMilliseconds(clock.now())
        try await database.write { connection in
            try connection.execute(
                "UPDATE messages SET state = ?, updated_at = ? WHERE campaign_id = ? AND state = ?",
                [MessageState.cancelled.sql, .integer(now), .text(id), MessageState.queued.sql])
            try connection.execute(
                "UPDATE campaigns SET state = 'archived', next_run_at = NULL, updated_at = ? WHERE id = ?", [.integer(now), .text(id)])
        }
        return try await campaign(workspaceID: workspaceID, id: id)
    }

    private func setState(_ state: Campaign.State, id: String) async throws {
        let now = BrazeTime.epochMilliseconds(clock.now())
        try await database.write { connection in
            try connection.execute("UPDATE campaigns SET state = ?, updated_at = ? WHERE id = ?", [.text(state.rawValue), .integer(now), .text(id)])
        }
    }

    func definition(_ body: JSONValue) throws -> CampaignDefinition {
        do {
            return try CampaignDefinition.parse(body, channels: channels)
        } catch {
            throw CampaignError(.invalid, error.problems)
        }
    }

    /// When the scheduler should make the dispatch: the send time, or 14 hours earlier for
    /// local-time sends (the first zone to reach it). Launching a schedule in the past is an error.
    static func nextRun(_ definition: CampaignDefinition, now: Int64, launching: Bool) throws -> Int64? {
        guard case .scheduled(let at, let localTime) = definition.delivery else { return nil }
        let wallClock = BrazeTime.epochMilliseconds(at)
        if localTime != nil {
            if launching, wallClock + 12 * 3_600_000 < now {
                throw CampaignError(.invalid, ["delivery.at: \(localTime ?? "") has already passed in every time zone"])
            }
            return wallClock - 14 * 3_600_000
        }
        if launching, wallClock < now - 60_000, definition.recurrence == nil {
            throw CampaignError(.invalid, ["delivery.at: \(BrazeTime.format(at)) is in the past"])
        }
        return wallClock
    }

    /// A `campaigns` row; one that does not decode is an error naming it.
    static func campaign(_ row: SQLRow) throws -> Campaign {
        let id = row[0].string ?? ""
        let tags = try row[3].storedJSON(table: "campaigns", row: id, column: "tags")?.arrayValue?.compactMap(\.stringValue) ?? []
        guard let definition = try row[4].storedJSON(table: "campaigns", row: id, column: "definition") else {
            throw StoredDataError(table: "campaigns", row: id, column: "definition", problem: "missing")
        }
        guard let state = Campaign.State(rawValue: row[5].string ?? "") else {
            throw StoredDataError(table: "campaigns", row: id, column: "state", problem: "unknown state '\(row[5].string ?? "")'")
        }
        return Campaign(
            id: id, workspaceID: row[1].int ?? 0, name: row[2].string ?? "", tags: tags, definition: definition, state: state,
            deliveryType: row[6].string ?? "", nextRunAt: row[7].int, createdAt: row[8].int ?? 0, updatedAt: row[9].int ?? 0,
            firstSentAt: row[10].int, lastSentAt: row[11].int)
    }
}
