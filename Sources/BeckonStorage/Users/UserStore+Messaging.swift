import BeckonCore

extension UserStore {
    /// The internal id of the user `identifier` names (most recently updated on ties), or `nil`.
    public func userID(workspaceID: Int64, identifier: UserIdentifier) async throws -> Int64? {
        try await database.read { connection in
            try self.candidates(identifier, prioritization: [.mostRecentlyUpdated], workspaceID: workspaceID, connection: connection).first
        }
    }

    /// The profile fields messages render from: standard attributes, custom attributes and
    /// subscription groups (`/users/export/ids` shapes).
    public static let messagingFields: Set<String> = [
        "external_id", "braze_id", "email", "phone", "first_name", "last_name", "country", "language", "time_zone", "gender", "dob",
        "home_city", "email_subscribe", "push_subscribe", "custom_attributes", "random_bucket", "created_at", "subscription_groups",
    ]

    /// Profiles (`messagingFields`) of the users with these internal ids, for rendering messages,
    /// read with two queries per 500 users; unknown ids are left out, and rows that do not decode
    /// are returned in `unreadable` with the reason (the caller fails those messages, not the batch).
    public func profiles(ids: [Int64]) async throws -> MessagingProfiles {
        try await database.read { connection in
            var profiles: [Int64: [String: JSONValue]] = [:]
            var unreadable: [Int64: String] = [:]
            for start in stride(from: 0, to: ids.count, by: 500) {
                let chunk = ids[start..<min(start + 500, ids.count)].map { SQLValue.integer($0) }
                let placeholders = chunk.map { _ in "?" }.joined(separator: ", ")
                for row in try connection.query("SELECT id, \(Self.profileColumns) FROM users WHERE id IN (\(placeholders))", chunk) {
                    guard let id = row[0].int else { continue }
                    do {
                        profiles[id] = try Self.profileFields(SQLRow(Array(row.values.dropFirst())), userID: id, fields: Self.messagingFields)
                    } catch {
                        unreadable[id] = "\(error)"
                    }
                }
                let groups = try connection.query(
                    "SELECT user_id, group_id, state FROM subscription_group_states WHERE user_id IN (\(placeholders)) ORDER BY user_id, group_id",
                    chunk)
                for row in groups {
                    guard let id = row[0].int, profiles[id] != nil else { continue }
                    var list = profiles[id]?["subscription_groups"]?.arrayValue ?? []
                    list.append(Self.subscriptionGroupJSON(id: row[1].string, state: row[2].string))
                    profiles[id]?["subscription_groups"] = .array(list)
                }
            }
            return MessagingProfiles(profiles: profiles.mapValues { JSONValue.object($0) }, unreadable: unreadable)
        }
    }
}

/// The profiles a send batch renders with, and the users whose stored profile does not decode.
public struct MessagingProfiles: Sendable {
    public var profiles: [Int64: JSONValue]
    /// User id → why the row cannot be read.
    public var unreadable: [Int64: String]

    public subscript(userID: Int64) -> JSONValue? { profiles[userID] }
}

extension UserStore {
    /// Each user's IANA time zone, where set.
    public func timeZones(ids: [Int64]) async throws -> [Int64: String] {
        guard !ids.isEmpty else { return [:] }
        return try await database.read { connection in
            let placeholders = ids.map { _ in "?" }.joined(separator: ", ")
            let rows = try connection.query(
                "SELECT id, time_zone FROM users WHERE time_zone IS NOT NULL AND id IN (\(placeholders))", ids.map { .integer($0) })
            return Dictionary(rows.compactMap { row in row[0].int.flatMap { id in row[1].string.map { (id, $0) } } }) { first, _ in first }
        }
    }
}
