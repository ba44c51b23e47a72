import BeckonCore
import Foundation

/// A named secret that `{% connected_content … :basic_auth NAME %}` sends.
public enum ConnectedContentCredential: Sendable, Hashable {
    /// Sent as `Authorization: Basic base64(username:password)`.
    case basic(username: String, password: String)
    /// Sent as `Authorization: Bearer token`.
    case bearer(token: String)

    public var kind: String {
        switch self {
        case .basic: return "basic"
        case .bearer: return "bearer"
        }
    }

    /// The `Authorization` header value.
    public var authorizationHeader: String {
        switch self {
        case .basic(let username, let password): return "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
        case .bearer(let token): return "Bearer " + token
        }
    }
}

/// What may be shown about a stored credential: never its secret.
public struct ConnectedContentCredentialSummary: Sendable, Hashable {
    public let name: String
    public let kind: String
    public let username: String?
    public let createdAt: Int64
    public let updatedAt: Int64
}

/// Per-workspace named credentials for Connected Content, sealed at rest with a `SecretBox`.
public final class ConnectedContentCredentialStore: Sendable {
    private let database: any SQLDatabase
    private let box: SecretBox
    private let clock: any BeckonClock

    public init(database: any SQLDatabase, box: SecretBox, clock: any BeckonClock) {
        self.database = database
        self.box = box
        self.clock = clock
    }

    /// Creates or replaces the credential `name`; returns whether it was new.
    @discardableResult
    public func save(workspaceID: Int64, name: String, credential: ConnectedContentCredential) async throws -> Bool {
        let (username, secret): (String?, String)
        switch credential {
        case .basic(let user, let password): (username, secret) = (user, password)
        case .bearer(let token): (username, secret) = (nil, token)
        }
        let sealed = try box.seal(secret)
        let now = BrazeTime.epochMilliseconds(clock.now())
        let kind = credential.kind
        return try await database.write { connection in
            let existed = try connection.first(
                "SELECT 1 FROM connected_content_credentials WHERE workspace_id = ? AND name = ?",
                [.integer(workspaceID), .text(name)]) != nil
            if existed {
                try connection.execute(
                    """
                    UPDATE connected_content_credentials SET kind = ?, username = ?, sealed_secret = ?, updated_at = ?
                    WHERE workspace_id = ? AND name = ?
                    """,
                    [.text(kind), .text(username), .text(sealed), .integer(now), .integer(workspaceID), .text(name)])
            } else {
                try connection.execute(
                    """
                    INSERT INTO connected_content_credentials (workspace_id, name, kind, username, sealed_secret, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                    [.integer(workspaceID), .text(name), .text(kind), .text(username), .text(sealed), .integer(now), .integer(now)])
            }
            return !existed
        }
    }

    public func summaries(workspaceID: Int64) async throws -> [ConnectedContentCredentialSummary] {
        try await database.read { connection in
            try connection.query(
                """
                SELECT name, kind, username, created_at, updated_at FROM connected_content_credentials
                WHERE workspace_id = ? ORDER BY name
                """, [.integer(workspaceID)]
            ).map { row in
                ConnectedContentCredentialSummary(
                    name: row[0].string ?? "", kind: row[1].string ?? "", username: row[2].string, createdAt: row[3].int ?? 0,
                    updatedAt: row[4].int ?? 0)
            }
        }
    }

    /// Deletes the credential; returns whether it existed.
    public func delete(workspaceID: Int64, name: String) async throws -> Bool {
        try await database.write { connection in
            let existed = try connection.first(
                "SELECT 1 FROM connected_content_credentials WHERE workspace_id = ? AND name = ?",
                [.integer(workspaceID), .text(name)]) != nil
            try connection.execute(
                "DELETE FROM connected_content_credentials WHERE workspace_id = ? AND name = ?",
                [.integer(workspaceID), .text(name)])
            return existed
        }
    }

    /// The credential with its secret opened, or `nil` when there is none by that name.
    public func credential(workspaceID: Int64, name: String) async throws -> ConnectedContentCredential? {
        let row = try await database.read { connection in
            try connection.first(
                "SELECT kind, username, sealed_secret FROM connected_content_credentials WHERE workspace_id = ? AND name = ?",
                [.integer(workspaceID), .text(name)])
        }
        guard let row else { return nil }
        let secret = try box.open(row[2].string ?? "")
        if row[0].string == "bearer" { return .bearer(token: secret) }
        return .basic(username: row[1].string ?? "", password: secret)
    }
}
