import BeckonCore
import Crypto
import Foundation

/// A tenant: one company or app group. All data is scoped to one.
public struct Workspace: Sendable, Hashable, Codable {
    public let id: Int64
    public let name: String
    /// The identifier app SDKs send (not a credential).
    public let appID: String
    public let timeZone: String
    public let createdAt: Int64
}

/// A REST API key as stored: never the key itself, only its hash and a hint.
public struct APIKeyRecord: Sendable, Hashable {
    public let id: Int64
    public let workspaceID: Int64
    public let name: String
    /// The first characters of the key, so people can tell keys apart.
    public let hint: String
    public let permissions: Set<String>
    /// IPs or CIDR blocks allowed to use the key; empty means any.
    public let ipAllowlist: [String]
    public let createdAt: Int64
    public let lastUsedAt: Int64?
    public let revokedAt: Int64?
}

/// A problem with an administrative request (unknown workspace, bad permission name …).
public struct AdminError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Workspaces and their API keys.
public final class WorkspaceStore: Sendable {
    private let database: any SQLDatabase
    private let clock: any BeckonClock

    public init(database: any SQLDatabase, clock: any BeckonClock) {
        self.database = database
        self.clock = clock
    }

    /// Creates a workspace; its SDK app identifier is generated.
    public func createWorkspace(name: String, timeZone: String = "UTC") async throws -> Workspace {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.count <= 100 else {
            throw AdminError("workspace name must be 1 to 100 characters")
        }
        guard TimeZone(identifier: timeZone) != nil else {
            throw AdminError("time zone '\(timeZone)' is not an IANA time zone such as 'Asia/Seoul'")
        }
        let appID = UUID().uuidString.lowercased()
        let now = BrazeTime.epochMilliseconds(clock.now())
        return try await database.write { connection in
            if try connection.first("SELECT 1 FROM workspaces WHERE name = ?", [.text(trimmed)]) != nil {
                throw AdminError("a workspace named '\(trimmed)' already exists")
            }
            let row = try connection.first(
                "INSERT INTO workspaces (name, app_id, time_zone, created_at) VALUES (?, ?, ?, ?) RETURNING id",
                [.text(trimmed), .text(appID), .text(timeZone), .integer(now)])
            guard let id = row?[0].int else { throw AdminError("could not create workspace") }
            return Workspace(id: id, name: trimmed, appID: appID, timeZone: timeZone, createdAt: now)
        }
    }

    public func workspaces() async throws -> [Workspace] {
        try await database.read { connection in
            try connection.query("SELECT id, name, app_id, time_zone, created_at FROM workspaces ORDER BY id", [])
                .map(Self.workspace)
        }
    }

    /// The workspace named or numbered `reference`.
    public func workspace(_ reference: String) async throws -> Workspace {
        let found = try await database.read { connection in
            try connection.first(
                "SELECT id, name, app_id, time_zone, created_at FROM workspaces WHERE name = ? OR CAST(id AS TEXT) = ?",
                [.text(reference), .text(reference)]
            ).map(Self.workspace)
        }
        guard let found else { throw AdminError("no workspace named '\(reference)'") }
        return found
    }

    /// The workspace whose SDK app identifier is `appID`.
    public func workspace(appID: String) async throws -> Workspace? {
        try await database.read { connection in
            try connection.first(
                "SELECT id, name, app_id, time_zone, created_at FROM workspaces WHERE app_id = ?", [.text(appID)]
            ).map(Self.workspace)
        }
    }

    public func workspace(id: Int64) async throws -> Workspace? {
        try await database.read { connection in
            try connection.first(
                "SELECT id, name, app_id, time_zone, created_at FROM workspaces WHERE id = ?", [.integer(id)]
            ).map(Self.workspace)
        }
    }

    private static func workspace(_ row: SQLRow) -> Workspace {
        Workspace(
            id: row[0].int ?? 0, name: row[1].string ?? "", appID: row[2].string ?? "", timeZone: row[3].string ?? "UTC",
            createdAt: row[4].int ?? 0)
    }

    /// Creates an API key and returns it with the key text, which is shown this once and never stored.
    ///
    /// - Parameter key: the key text to use (for `BECKON_ADMIN_KEY`); a random one when `nil`.
    public func createAPIKey(
        workspaceID: Int64, name: String, permissions: [String], ipAllowlist: [String] = [], key: String? = nil
    ) async throws -> (record: APIKeyRecord, key: String) {
        var canonical: [String] = []
        var unknown: [String] = []
        for permission in permissions.map({ $0.trimmingCharacters(in: .whitespaces) }) where !permission.isEmpty {
            if permission == "all" || permission == "*" {
                canonical.append(contentsOf: Permission.all)
            } else if let known = Permission.canonical(permission) {
                canonical.append(known)
            } else {
                unknown.append(permission)
            }
        }
        guard unknown.isEmpty else {
            throw AdminError("unknown permission\(unknown.count > 1 ? "s" : ""): \(unknown.joined(separator: ", ")) (Braze permission names such as users.track, segments.data_series)")
        }
        guard !canonical.isEmpty else { throw AdminError("at least one permission is required") }
        for entry in ipAllowlist where IPAllowlist.parse(entry) == nil {
            throw AdminError("'\(entry)' in the IP allowlist is not an IPv4/IPv6 address or CIDR block")
        }
        let keyText = key ?? Self.generateKey()
        guard keyText.count >= 16 else { throw AdminError("an API key must be at least 16 characters") }
        let hash = Self.hash(keyText)
        let hint = String(keyText.prefix(8))
        let permissionSet = Set(canonical)
        let now = BrazeTime.epochMilliseconds(clock.now())
        let keyName = name.isEmpty ? "key" : name
        let id = try await database.write { connection -> Int64 in
            guard try connection.first("SELECT 1 FROM workspaces WHERE id = ?", [.integer(workspaceID)]) != nil else {
                throw AdminError("workspace \(workspaceID) does not exist")
            }
            if try connection.first("SELECT 1 FROM api_keys WHERE key_hash = ?", [.text(hash)]) != nil {
                throw AdminError("that API key already exists")
            }
            let row = try connection.first(
                """
                INSERT INTO api_keys (workspace_id, name, key_hash, key_hint, permissions, ip_allowlist, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id
                """,
                [.integer(workspaceID), .text(keyName), .text(hash), .text(hint),
                 .text(permissionSet.sorted().joined(separator: ",")), .text(ipAllowlist.joined(separator: ",")),
                 .integer(now)])
            guard let id = row?[0].int else { throw AdminError("could not create API key") }
            return id
        }
        let record = APIKeyRecord(
            id: id, workspaceID: workspaceID, name: keyName, hint: hint, permissions: permissionSet,
            ipAllowlist: ipAllowlist, createdAt: now, lastUsedAt: nil, revokedAt: nil)
        return (record, keyText)
    }

    public func apiKeys(workspaceID: Int64) async throws -> [APIKeyRecord] {
        try await database.read { connection in
            try connection.query("\(Self.keyColumns) WHERE workspace_id = ? ORDER BY id", [.integer(workspaceID)])
                .map(Self.apiKey)
        }
    }

    /// Revokes key `id`; a revoked key answers 401 from then on.
    public func revokeAPIKey(id: Int64) async throws {
        let now = BrazeTime.epochMilliseconds(clock.now())
        let changed = try await database.write { connection -> Bool in
            guard try connection.first("SELECT 1 FROM api_keys WHERE id = ? AND revoked_at IS NULL", [.integer(id)]) != nil
            else { return false }
            try connection.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", [.integer(now), .integer(id)])
            return true
        }
        guard changed else { throw AdminError("no active API key with id \(id)") }
    }

    /// The active key whose text is `key`, or `nil`.
    public func authenticate(key: String) async throws -> APIKeyRecord? {
        let hash = Self.hash(key)
        return try await database.read { connection in
            try connection.first("\(Self.keyColumns) WHERE key_hash = ? AND revoked_at IS NULL", [.text(hash)]).map(Self.apiKey)
        }
    }

    /// Records that key `id` was used now.
    public func touchAPIKey(id: Int64) async throws {
        let now = BrazeTime.epochMilliseconds(clock.now())
        try await database.write { connection in
            try connection.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", [.integer(now), .integer(id)])
        }
    }

    /// Whether the database has no workspace yet (first start).
    public func isEmpty() async throws -> Bool {
        try await database.read { connection in try connection.first("SELECT 1 FROM workspaces LIMIT 1") == nil }
    }

    private static let keyColumns = """
        SELECT id, workspace_id, name, key_hint, permissions, ip_allowlist, created_at, last_used_at, revoked_at FROM api_keys
        """

    private static func apiKey(_ row: SQLRow) -> APIKeyRecord {
        let permissions = (row[4].string ?? "").split(separator: ",").map(String.init)
        let allowlist = (row[5].string ?? "").split(separator: ",").map(String.init)
        return APIKeyRecord(
            id: row[0].int ?? 0, workspaceID: row[1].int ?? 0, name: row[2].string ?? "", hint: row[3].string ?? "",
            permissions: Set(permissions), ipAllowlist: allowlist, createdAt: row[6].int ?? 0, lastUsedAt: row[7].int,
            revokedAt: row[8].int)
    }

    static func hash(_ key: String) -> String {
        SHA256.hash(data: Data(key.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// A new random key in Braze's format (a lower-case UUID).
    static func generateKey() -> String {
        UUID().uuidString.lowercased()
    }
}
