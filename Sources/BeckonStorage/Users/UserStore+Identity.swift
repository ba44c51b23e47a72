import BeckonCore

/// `prioritization` values of `/users/identify` and `/users/delete` for email and phone lookups.
public enum Prioritization: String, Sendable, CaseIterable {
    case identified, unidentified
    case mostRecentlyUpdated = "most_recently_updated"
    case leastRecentlyUpdated = "least_recently_updated"
}

/// One identification: the profile an identifier names gets `externalID` (or merges into its owner).
public struct IdentifyRequestItem: Sendable {
    public let externalID: String
    public let identifier: UserIdentifier
    public let prioritization: [Prioritization]

    public init(externalID: String, identifier: UserIdentifier, prioritization: [Prioritization] = []) {
        self.externalID = externalID
        self.identifier = identifier
        self.prioritization = prioritization
    }
}

/// A user to delete: an identifier, with a prioritization for email and phone.
public struct DeleteRequestItem: Sendable {
    public let identifier: UserIdentifier
    public let prioritization: [Prioritization]

    public init(identifier: UserIdentifier, prioritization: [Prioritization] = []) {
        self.identifier = identifier
        self.prioritization = prioritization
    }
}

/// `/users/alias/new` entry: add the alias to `externalID`'s profile, or create an alias-only profile.
public struct NewAlias: Sendable {
    public let alias: UserAlias
    public let externalID: String?

    public init(alias: UserAlias, externalID: String?) {
        self.alias = alias
        self.externalID = externalID
    }
}

/// Per-item problems of the identity endpoints, reported next to the processed count.
public struct IdentityResult: Sendable {
    public var processed = 0
    public var errors: [String] = []
}

/// Tables whose rows belong to one user, keyed by `user_id`, and how a merge combines them.
enum UserOwnedTable {
    /// Logs and per-user rows that simply move to the surviving user.
    static let moved = ["events", "purchases", "sessions"]
    /// Everything deleted with a user.
    static let all = [
        "user_aliases", "user_attribute_values", "subscription_group_states", "push_tokens", "events", "event_daily",
        "event_property_daily", "purchases", "purchase_daily", "sessions", "session_daily", "app_usage", "devices",
    ]
}

extension UserStore {
    /// `/users/alias/new`: adds aliases to existing users or creates alias-only users.
    public func createAliases(workspaceID: Int64, aliases: [NewAlias]) async throws -> IdentityResult {
        let now = nowMillis
        return try await committer.write { connection, _ in
            var result = IdentityResult()
            let ws = SQLValue.integer(workspaceID)
            for (index, item) in aliases.enumerated() {
                if try connection.first(
                    "SELECT 1 FROM user_aliases WHERE workspace_id = ? AND alias_label = ? AND alias_name = ?",
                    [ws, .text(item.alias.label), .text(item.alias.name)]) != nil
                {
                    result.errors.append("user_aliases[\(index)]: the alias '\(item.alias.label):\(item.alias.name)' already exists")
                    continue
                }
                let userID: Int64
                if let externalID = item.externalID {
                    guard let found = try self.resolve(
                        .externalID(externalID), workspaceID: workspaceID, create: false, connection: connection, now: now)
                    else {
                        result.errors.append("user_aliases[\(index)]: no user with external_id '\(externalID)'; alias not added")
                        continue
                    }
                    if try connection.first(
                        "SELECT 1 FROM user_aliases WHERE user_id = ? AND alias_label = ?", [.integer(found), .text(item.alias.label)])
                        != nil
                    {
                        result.errors.append("user_aliases[\(index)]: the user already has an alias with label '\(item.alias.label)'")
                        continue
                    }
                    userID = found
                } else {
                    userID = try self.insertUser(workspaceID: workspaceID, externalID: nil, connection: connection, now: now)
                }
                try connection.execute(
                    "INSERT INTO user_aliases (workspace_id, alias_label, alias_name, user_id) VALUES (?, ?, ?, ?)",
                    [ws, .text(item.alias.label), .text(item.alias.name), .integer(userID)])
                result.processed += 1
            }
            return result
        }
    }

    /// `/users/identify`: gives unidentified profiles an external id, merging into an existing profile.
    public func identify(workspaceID: Int64, items: [IdentifyRequestItem]) async throws -> IdentityResult {
        let now = nowMillis
        return try await committer.write(flushesAggregates: true) { connection, _ in
            var result = IdentityResult()
            for (index, item) in items.enumerated() {
                let candidates = try self.candidates(
                    item.identifier, prioritization: item.prioritization, workspaceID: workspaceID, connection: connection)
                guard candidates.count == 1, let sourceID = candidates.first else {
                    result.errors.append(
                        candidates.isEmpty
                            ? "item \(index): no user with \(item.identifier)"
                            : "item \(index): \(candidates.count) users match \(item.identifier) after prioritization; nothing done")
                    continue
                }
                let source = try connection.first("SELECT external_id FROM users WHERE id = ?", [.integer(sourceID)])
                if let existing = source?[0].string {
                    if existing != item.externalID {
                        result.errors.append("item \(index): \(item.identifier) already belongs to external_id '\(existing)'")
                    } else {
                        result.processed += 1
                    }
                    continue
                }
                if let targetID = try self.resolve(
                    .externalID(item.externalID), workspaceID: workspaceID, create: false, connection: connection, now: now)
                {
                    if case .alias(let alias) = item.identifier,
                        try connection.first(
                            "SELECT 1 FROM user_aliases WHERE user_id = ? AND alias_label = ?",
                            [.integer(targetID), .text(alias.label)]) != nil
                    {
                        result.errors.append("item \(index): external_id '\(item.externalID)' already has an alias labelled '\(alias.label)'; not merged")
                        continue
                    }
                    try self.merge(sourceID: sourceID, into: targetID, connection: connection, now: now)
                } else {
                    try connection.execute(
                        "UPDATE users SET external_id = ?, updated_at = ? WHERE id = ?",
                        [.text(item.externalID), .integer(now), .integer(sourceID)])
                }
                result.processed += 1
            }
            return result
        }
    }

    /// `/users/delete`: removes the profiles and everything derived from them. Returns how many were deleted.
    public func delete(workspaceID: Int64, items: [DeleteRequestItem]) async throws -> Int {
        try await committer.write(flushesAggregates: true) { connection, _ in
            var userIDs: Set<Int64> = []
            for item in items {
                let matches = try self.candidates(
                    item.identifier, prioritization: item.prioritization, workspaceID: workspaceID, connection: connection)
                if matches.count == 1 { userIDs.insert(matches[0]) }
            }
            for userID in userIDs.sorted() {
                try self.deleteRows(of: userID, connection: connection)
            }
            return userIDs.count
        }
    }

    func deleteRows(of userID: Int64, connection: any SQLConnection) throws {
        for table in UserOwnedTable.all {
            try connection.execute("DELETE FROM \(table) WHERE user_id = ?", [.integer(userID)])
        }
        try connection.execute("DELETE FROM users WHERE id = ?", [.integer(userID)])
    }

    /// The users an identifier names, narrowed by `prioritization` (Braze's rules for email and phone).
    func candidates(
        _ identifier: UserIdentifier, prioritization: [Prioritization], workspaceID: Int64, connection: any SQLConnection
    ) throws -> [Int64] {
        let ws = SQLValue.integer(workspaceID)
        let column: String
        let value: String
        switch identifier {
        case .email(let email):
            column = "email"
            value = email
        case .phone(let phone):
            column = "phone"
            value = phone
        default:
            let found = try resolve(identifier, workspaceID: workspaceID, create: false, connection: connection, now: 0)
            return found.map { [$0] } ?? []
        }
        var rows = try connection.query(
            "SELECT id, external_id, updated_at FROM users WHERE workspace_id = ? AND \(column) = ? ORDER BY id",
            [ws, .text(value)]
        ).map { (id: $0[0].int ?? 0, identified: !$0[1].isNull, updated: $0[2].int ?? 0) }
        for rule in prioritization {
            switch rule {
            case .identified: rows = rows.filter(\.identified)
            case .unidentified: rows = rows.filter { !$0.identified }
            case .mostRecentlyUpdated:
                if let newest = rows.map(\.updated).max() { rows = rows.filter { $0.updated == newest } }
            case .leastRecentlyUpdated:
                if let oldest = rows.map(\.updated).min() { rows = rows.filter { $0.updated == oldest } }
            }
        }
        return rows.map(\.id)
    }

    /// Merges profile `sourceID` into `targetID` (Braze's rules) and deletes the source.
    ///
    /// Fields only the source has are copied; counts are summed; first times take the earlier and
    /// last times the later value; logs, tokens, aliases and subscription states move over.
    func merge(sourceID: Int64, into targetID: Int64, connection: any SQLConnection, now: Int64) throws {
        let source = SQLValue.integer(sourceID)
        let target = SQLValue.integer(targetID)
        let profileColumns = [
            "email", "phone", "first_name", "last_name", "country", "language", "time_zone", "gender", "dob", "home_city",
            "image_url", "longitude", "latitude",
        ]
        let copies = profileColumns.map { "\($0) = COALESCE(\($0), (SELECT \($0) FROM users WHERE id = ?))" }
        try connection.execute(
            "UPDATE users SET \(copies.joined(separator: ", ")), total_revenue = total_revenue + (SELECT total_revenue FROM users WHERE id = ?), updated_at = ? WHERE id = ?",
            Array(repeating: source, count: profileColumns.count) + [source, .integer(now), target])
        if let rows = try connection.first(
            "SELECT s.custom_attributes, t.custom_attributes, t.workspace_id FROM users s, users t WHERE s.id = ? AND t.id = ?",
            [source, target])
        {
            let sourceAttributes = try rows[0].storedObject(table: "users", row: "\(sourceID)", column: "custom_attributes")
            var targetAttributes = try rows[1].storedObject(table: "users", row: "\(targetID)", column: "custom_attributes")
            let added = sourceAttributes.filter { targetAttributes[$0.key] == nil }
            if !added.isEmpty {
                targetAttributes.merge(added) { current, _ in current }
                try connection.execute(
                    "UPDATE users SET custom_attributes = ? WHERE id = ?", [.text(JSONValue.object(targetAttributes).serialized()), target])
                try reindexAttributes(
                    Set(added.keys), values: targetAttributes, userID: targetID, workspaceID: rows[2].int ?? 0,
                    connection: connection)
            }
        }
        for table in UserOwnedTable.moved {
            try connection.execute("UPDATE \(table) SET user_id = ? WHERE user_id = ?", [target, source])
        }
        try connection.execute("UPDATE push_tokens SET user_id = ? WHERE user_id = ?", [target, source])
        try connection.execute(
            """
            UPDATE user_aliases SET user_id = ? WHERE user_id = ?
            AND alias_label NOT IN (SELECT alias_label FROM user_aliases WHERE user_id = ?)
            """, [target, source, target])
        try connection.execute(
            """
            INSERT INTO subscription_group_states (user_id, group_id, workspace_id, state, updated_at)
            SELECT ?, group_id, workspace_id, state, updated_at FROM subscription_group_states WHERE user_id = ?
            ON CONFLICT (user_id, group_id) DO NOTHING
            """, [target, source])
        let dialect = connection.dialect
        let mergedAggregates: [(table: String, key: String, sums: [String])] = [
            ("event_daily", "name, day", ["count"]),
            ("event_property_daily", "name, property, value, day", ["count"]),
            ("purchase_daily", "product_id, day", ["count", "quantity", "revenue"]),
            ("session_daily", "app_id, day", ["count"]),
        ]
        for aggregate in mergedAggregates {
            let columns = aggregate.key + ", workspace_id, " + aggregate.sums.joined(separator: ", ") + ", first_time, last_time"
            let updates = aggregate.sums.map { "\($0) = \(aggregate.table).\($0) + excluded.\($0)" } + [
                "first_time = \(dialect.least("\(aggregate.table).first_time", "excluded.first_time"))",
                "last_time = \(dialect.greatest("\(aggregate.table).last_time", "excluded.last_time"))",
            ]
            try connection.execute(
                """
                INSERT INTO \(aggregate.table) (user_id, \(columns)) SELECT ?, \(columns) FROM \(aggregate.table) WHERE user_id = ?
                ON CONFLICT (user_id, \(aggregate.key)) DO UPDATE SET \(updates.joined(separator: ", "))
                """, [target, source])
        }
        try connection.execute(
            """
            INSERT INTO app_usage (user_id, app_id, workspace_id, platform, app_version, sessions, first_used, last_used)
            SELECT ?, app_id, workspace_id, platform, app_version, sessions, first_used, last_used FROM app_usage WHERE user_id = ?
            ON CONFLICT (user_id, app_id) DO UPDATE SET sessions = app_usage.sessions + excluded.sessions,
                first_used = \(dialect.least("app_usage.first_used", "excluded.first_used")),
                last_used = \(dialect.greatest("app_usage.last_used", "excluded.last_used"))
            """, [target, source])
        try connection.execute(
            """
            INSERT INTO devices (user_id, device_id, workspace_id, model, os_version, carrier, ad_tracking_enabled, updated_at)
            SELECT ?, device_id, workspace_id, model, os_version, carrier, ad_tracking_enabled, updated_at FROM devices WHERE user_id = ?
            ON CONFLICT (user_id, device_id) DO NOTHING
            """, [target, source])
        try deleteRows(of: sourceID, connection: connection)
    }
}
