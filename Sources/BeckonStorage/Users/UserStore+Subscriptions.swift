import BeckonCore
import Foundation

/// A workspace's subscription group (email, SMS or WhatsApp): what `subscription_groups` states refer to.
public struct SubscriptionGroup: Sendable, Equatable {
    public static let channels = ["email", "sms", "whatsapp"]
    public let id: String
    public let name: String
    public let channel: String
    public let createdAt: Int64
    public let updatedAt: Int64
}

/// Why a subscription group change was refused.
public struct SubscriptionGroupError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable { case invalid, notFound, conflict }
    public let kind: Kind
    public let description: String
    init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}

extension UserStore {
    // MARK: Groups

    public func createSubscriptionGroup(workspaceID: Int64, name: String, channel: String) async throws -> SubscriptionGroup {
        try Self.checkGroup(name: name, channel: channel)
        let id = "sg_" + (0..<12).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let now = nowMillis
        return try await committer.write(flushesAggregates: false) { connection, _ in
            if try connection.first("SELECT 1 FROM subscription_groups WHERE workspace_id = ? AND name = ?", [.integer(workspaceID), .text(name)]) != nil {
                throw SubscriptionGroupError(.conflict, "name: a subscription group named '\(name)' exists already")
            }
            try connection.execute(
                "INSERT INTO subscription_groups (workspace_id, id, name, channel, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                [.integer(workspaceID), .text(id), .text(name), .text(channel), .integer(now), .integer(now)])
            return SubscriptionGroup(id: id, name: name, channel: channel, createdAt: now, updatedAt: now)
        }
    }

    public func subscriptionGroups(workspaceID: Int64) async throws -> [SubscriptionGroup] {
        try await database.read { connection in
            try connection.query(
                "SELECT id, name, channel, created_at, updated_at FROM subscription_groups WHERE workspace_id = ? ORDER BY name", [.integer(workspaceID)]
            ).map(Self.group)
        }
    }

    public func subscriptionGroup(workspaceID: Int64, id: String) async throws -> SubscriptionGroup? {
        try await database.read { connection in
            try connection.first(
                "SELECT id, name, channel, created_at, updated_at FROM subscription_groups WHERE workspace_id = ? AND id = ?",
                [.integer(workspaceID), .text(id)]
            ).map(Self.group)
        }
    }

    public func renameSubscriptionGroup(workspaceID: Int64, id: String, name: String) async throws -> SubscriptionGroup {
        try Self.checkGroupName(name)
        let now = nowMillis
        let updated = try await committer.write(flushesAggregates: false) { connection, _ in
            if try connection.first(
                "SELECT 1 FROM subscription_groups WHERE workspace_id = ? AND name = ? AND id <> ?", [.integer(workspaceID), .text(name), .text(id)]) != nil
            {
                throw SubscriptionGroupError(.conflict, "name: a subscription group named '\(name)' exists already")
            }
            return try connection.query(
                "UPDATE subscription_groups SET name = ?, updated_at = ? WHERE workspace_id = ? AND id = ? RETURNING id",
                [.text(name), .integer(now), .integer(workspaceID), .text(id)]).count
        }
        guard updated > 0, let group = try await subscriptionGroup(workspaceID: workspaceID, id: id) else {
            throw SubscriptionGroupError(.notFound, "no subscription group '\(id)'")
        }
        return group
    }

    /// Deletes the group and every user's state in it.
    public func deleteSubscriptionGroup(workspaceID: Int64, id: String) async throws -> Bool {
        try await committer.write(flushesAggregates: false) { connection, _ in
            try connection.execute("DELETE FROM subscription_group_states WHERE workspace_id = ? AND group_id = ?", [.integer(workspaceID), .text(id)])
            return try connection.query(
                "DELETE FROM subscription_groups WHERE workspace_id = ? AND id = ? RETURNING id", [.integer(workspaceID), .text(id)]).count > 0
        }
    }

    static func checkGroupName(_ name: String) throws {
        guard !name.trimmingCharacters(in: .whitespaces).isEmpty, name.count <= 200 else {
            throw SubscriptionGroupError(.invalid, "name: is required (at most 200 characters)")
        }
    }

    static func checkGroup(name: String, channel: String) throws {
        try checkGroupName(name)
        guard SubscriptionGroup.channels.contains(channel) else {
            throw SubscriptionGroupError(.invalid, "channel: must be one of \(SubscriptionGroup.channels.joined(separator: ", "))")
        }
    }

    static func group(_ row: SQLRow) -> SubscriptionGroup {
        SubscriptionGroup(
            id: row[0].string ?? "", name: row[1].string ?? "", channel: row[2].string ?? "", createdAt: row[3].int ?? 0, updatedAt: row[4].int ?? 0)
    }

    // MARK: States

    /// Sets `state` (`subscribed` or `unsubscribed`) in `groupID` for each user the identifiers
    /// name, recording when and from where; returns the identifiers that named no user (none is created).
    public func setSubscription(
        workspaceID: Int64, groupID: String, state: String, users: [UserIdentifier], source: String
    ) async throws -> [UserIdentifier] {
        let now = nowMillis
        return try await committer.write(flushesAggregates: false) { connection, _ in
            var missing: [UserIdentifier] = []
            for identifier in users {
                guard let userID = try self.resolve(identifier, workspaceID: workspaceID, create: false, connection: connection, now: now) else {
                    missing.append(identifier)
                    continue
                }
                try connection.execute(
                    """
                    INSERT INTO subscription_group_states (user_id, group_id, workspace_id, state, updated_at, source) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (user_id, group_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at, source = excluded.source
                    """, [.integer(userID), .text(groupID), .integer(workspaceID), .text(state), .integer(now), .text(source)])
            }
            return missing
        }
    }

    /// Each identifier's state in the group: `subscribed`, `unsubscribed`, or nil (unknown: no user, or never set).
    public func subscriptionStates(workspaceID: Int64, groupID: String, users: [UserIdentifier]) async throws -> [(UserIdentifier, String?)] {
        let now = nowMillis
        return try await database.read { connection in
            try users.map { identifier in
                guard let userID = try self.resolve(identifier, workspaceID: workspaceID, create: false, connection: connection, now: now) else {
                    return (identifier, nil)
                }
                let state = try connection.first(
                    "SELECT state FROM subscription_group_states WHERE user_id = ? AND group_id = ?", [.integer(userID), .text(groupID)])?[0].string
                return (identifier, state)
            }
        }
    }
}
