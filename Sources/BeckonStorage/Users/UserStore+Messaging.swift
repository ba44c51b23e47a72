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

    /// Profiles of the users with these internal ids, with `fields` (all when `nil`), for rendering
    /// messages; unknown ids are left out.
    public func profiles(ids: [Int64], fields: Set<String>? = UserStore.messagingFields) async throws -> [Int64: JSONValue] {
        try await database.read { connection in
            var profiles: [Int64: JSONValue] = [:]
            for id in ids {
                if let profile = try self.exportUser(id, fields: fields, connection: connection) { profiles[id] = profile }
            }
            return profiles
        }
    }
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
