import BeckonCore
import Foundation
import Synchronization

/// Profiles, identities, events and purchases of users: the writes behind Braze's user API.
///
/// Every write of one request commits atomically through the group committer: once a method
/// returns, its changes are durable, and a failing request leaves nothing behind.
public final class UserStore: Sendable {
    let database: any SQLDatabase
    let committer: GroupCommitter
    let clock: any BeckonClock
    let limits: TrackLimits
    private let segmentableCache = Mutex<[Int64: (loadedAt: Date, properties: [String: [String]])]>([:])

    public init(database: any SQLDatabase, clock: any BeckonClock, limits: TrackLimits = TrackLimits()) {
        self.database = database
        self.committer = GroupCommitter(database: database)
        self.clock = clock
        self.limits = limits
    }

    var nowMillis: Int64 { BrazeTime.epochMilliseconds(clock.now()) }

    // MARK: Identity resolution

    /// The user `identifier` names, created when missing and `create` is true.
    ///
    /// Email and phone pick the most recently updated profile with an external id, else the most
    /// recently updated one; a new email/phone-only profile is created when none has it.
    func resolve(
        _ identifier: UserIdentifier, workspaceID: Int64, create: Bool, connection: any SQLConnection, now: Int64
    ) throws -> Int64? {
        let ws = SQLValue.integer(workspaceID)
        switch identifier {
        case .externalID(let id):
            if let row = try connection.first("SELECT id FROM users WHERE workspace_id = ? AND external_id = ?", [ws, .text(id)]) {
                return row[0].int
            }
            guard create else { return nil }
            return try insertUser(workspaceID: workspaceID, externalID: id, connection: connection, now: now)
        case .alias(let alias):
            if let row = try connection.first(
                "SELECT user_id FROM user_aliases WHERE workspace_id = ? AND alias_label = ? AND alias_name = ?",
                [ws, .text(alias.label), .text(alias.name)])
            {
                return row[0].int
            }
            guard create else { return nil }
            let userID = try insertUser(workspaceID: workspaceID, externalID: nil, connection: connection, now: now)
            try connection.execute(
                "INSERT INTO user_aliases (workspace_id, alias_label, alias_name, user_id) VALUES (?, ?, ?, ?)",
                [ws, .text(alias.label), .text(alias.name), .integer(userID)])
            return userID
        case .brazeID(let id):
            return try connection.first("SELECT id FROM users WHERE workspace_id = ? AND braze_id = ?", [ws, .text(id)])?[0].int
        case .email(let email):
            return try resolveContact(column: "email", value: email, workspaceID: workspaceID, create: create, connection: connection, now: now)
        case .phone(let phone):
            return try resolveContact(column: "phone", value: phone, workspaceID: workspaceID, create: create, connection: connection, now: now)
        }
    }

    /// Email or phone: the most recently updated profile with an external id, else the most
    /// recently updated one; a new email/phone-only profile when none has it and `create` holds.
    private func resolveContact(
        column: String, value: String, workspaceID: Int64, create: Bool, connection: any SQLConnection, now: Int64
    ) throws -> Int64? {
        if let row = try connection.first(
            """
            SELECT id FROM users WHERE workspace_id = ? AND \(column) = ?
            ORDER BY CASE WHEN external_id IS NULL THEN 1 ELSE 0 END, updated_at DESC, id DESC LIMIT 1
            """, [.integer(workspaceID), .text(value)])
        {
            return row[0].int
        }
        guard create else { return nil }
        let userID = try insertUser(workspaceID: workspaceID, externalID: nil, connection: connection, now: now)
        try connection.execute("UPDATE users SET \(column) = ? WHERE id = ?", [.text(value), .integer(userID)])
        return userID
    }

    func insertUser(workspaceID: Int64, externalID: String?, connection: any SQLConnection, now: Int64) throws -> Int64 {
        let row = try connection.first(
            """
            INSERT INTO users (workspace_id, external_id, braze_id, random_bucket, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?) RETURNING id
            """,
            [.integer(workspaceID), .text(externalID), .text(Self.newBrazeID()), .integer(Int64.random(in: 0...9999)),
             .integer(now), .integer(now)])
        guard let id = row?[0].int else { throw SQLError(message: "inserting a user returned no id", sql: "INSERT INTO users") }
        return id
    }

    /// A 24-hex-character id in the shape of Braze's `braze_id`.
    static func newBrazeID() -> String {
        let high = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let low = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        return String(repeating: "0", count: 16 - high.count) + high + String(repeating: "0", count: 8 - low.count) + low
    }

    // MARK: Segmentable properties

    /// Marks property `property` of event `eventName` as segmentable: from now on its values are
    /// counted per user per day, so segment filters on it read aggregates instead of the log.
    public func markSegmentable(workspaceID: Int64, eventName: String, property: String) async throws {
        guard !eventName.isEmpty, eventName.count <= 255 else {
            throw AdminError("event name must be 1 to 255 characters")
        }
        guard !property.isEmpty, property.count <= 255, !property.hasPrefix("$") else {
            throw AdminError("property must be 1 to 255 characters and must not start with '$'")
        }
        let now = nowMillis
        try await database.write { connection in
            try connection.execute(
                """
                INSERT INTO segmentable_properties (workspace_id, event_name, property, created_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (workspace_id, event_name, property) DO NOTHING
                """, [.integer(workspaceID), .text(eventName), .text(property), .integer(now)])
        }
        _ = segmentableCache.withLock { $0.removeValue(forKey: workspaceID) }
    }

    /// Unmarks a segmentable property; its existing aggregates are dropped.
    public func unmarkSegmentable(workspaceID: Int64, eventName: String, property: String) async throws {
        try await committer.write(flushesAggregates: true) { connection, _ in
            try connection.execute(
                "DELETE FROM segmentable_properties WHERE workspace_id = ? AND event_name = ? AND property = ?",
                [.integer(workspaceID), .text(eventName), .text(property)])
            try connection.execute(
                "DELETE FROM event_property_daily WHERE workspace_id = ? AND name = ? AND property = ?",
                [.integer(workspaceID), .text(eventName), .text(property)])
        }
        _ = segmentableCache.withLock { $0.removeValue(forKey: workspaceID) }
    }

    /// Event name → segmentable property names, for a workspace.
    public func segmentableProperties(workspaceID: Int64) async throws -> [String: [String]] {
        let now = clock.now()
        if let cached = segmentableCache.withLock({ $0[workspaceID] }), now.timeIntervalSince(cached.loadedAt) < 5 {
            return cached.properties
        }
        let rows = try await database.read { connection in
            try connection.query(
                "SELECT event_name, property FROM segmentable_properties WHERE workspace_id = ? ORDER BY event_name, property",
                [.integer(workspaceID)])
        }
        var properties: [String: [String]] = [:]
        for row in rows {
            properties[row[0].string ?? "", default: []].append(row[1].string ?? "")
        }
        segmentableCache.withLock { $0[workspaceID] = (now, properties) }
        return properties
    }

    /// The string a scalar property value is counted under (and segment filters compare with),
    /// or `nil` for arrays, objects and null.
    public static func segmentValue(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let text)?: return text
        case .int(let number)?: return String(number)
        case .double(let number)?: return number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
        case .bool(let flag)?: return flag ? "true" : "false"
        default: return nil
        }
    }

    /// Reads a dotted property path (`item.brand`) from an event's properties.
    static func property(_ path: String, in properties: [String: JSONValue]) -> JSONValue? {
        if let direct = properties[path] { return direct }
        var current: JSONValue = .object(properties)
        for part in path.split(separator: ".") {
            guard let next = current[String(part)] else { return nil }
            current = next
        }
        return current
    }
}
