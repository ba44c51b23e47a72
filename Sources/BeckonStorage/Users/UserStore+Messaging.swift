import BeckonCore

extension UserStore {
    /// The internal id of the user `identifier` names (most recently updated on ties), or `nil`.
    public func userID(workspaceID: Int64, identifier: UserIdentifier) async throws -> Int64? {
        try await database.read { connection in
            try self.candidates(identifier, prioritization: [.mostRecentlyUpdated], workspaceID: workspaceID, connection: connection).first
        }
    }

    /// Full profiles (as `/users/export/ids` shapes them) of the users with these internal ids,
    /// for rendering messages; unknown ids are left out.
    public func profiles(ids: [Int64]) async throws -> [Int64: JSONValue] {
        try await database.read { connection in
            var profiles: [Int64: JSONValue] = [:]
            for id in ids {
                if let profile = try self.exportUser(id, fields: nil, connection: connection) { profiles[id] = profile }
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
