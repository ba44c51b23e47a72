import BeckonCore
import Crypto
import Foundation

/// `Idempotency-Key` request headers of the endpoints that start sends, scoped to workspace and
/// endpoint and kept 24 hours: a retry gets the first answer and does nothing new; the same key
/// with another body is refused. The key row is written in the transaction that does the work,
/// and its primary key makes concurrent requests with one key do the work once.
public enum IdempotencyKeys {
    /// How long a key is remembered.
    public static let retentionMilliseconds: Int64 = 24 * 3_600_000

    /// A request that carries a key.
    public struct Request: Sendable {
        public let workspaceID: Int64
        public let endpoint: String
        public let key: String
        /// SHA-256 of the request body as parsed (so whitespace does not matter).
        public let requestHash: String

        public init(workspaceID: Int64, endpoint: String, key: String, body: JSONValue) {
            self.workspaceID = workspaceID
            self.endpoint = endpoint
            self.key = key
            let digest = SHA256.hash(data: Data(body.serialized().utf8))
            requestHash = digest.map { String(format: "%02x", $0) }.joined()
        }
    }

    /// What a request with a key should do.
    public enum Claim: Sendable, Equatable {
        /// The key is new: do the work (the answer was stored with the key).
        case claimed
        /// The key was used within 24 hours with the same body: answer this again.
        case replay(status: Int, response: String)
        /// The key was used within 24 hours with another body.
        case conflict
    }

    /// Validates the header: 1 to 255 printable ASCII characters.
    public static func validate(_ key: String) -> String? {
        guard !key.isEmpty, key.utf8.count <= 255, key.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            return "Idempotency-Key: must be 1 to 255 printable ASCII characters without spaces"
        }
        return nil
    }

    /// The stored answer for `request`, without claiming (a fast path before any work).
    public static func lookup(_ request: Request, connection: any SQLConnection, now: Int64) throws -> Claim? {
        guard let row = try connection.first(
            """
            SELECT request_hash, status, response FROM idempotency_keys
            WHERE workspace_id = ? AND endpoint = ? AND idempotency_key = ? AND created_at >= ?
            """, [.integer(request.workspaceID), .text(request.endpoint), .text(request.key), .integer(now - retentionMilliseconds)])
        else { return nil }
        guard row[0].string == request.requestHash else { return .conflict }
        return .replay(status: Int(row[1].int ?? 200), response: row[2].string ?? "")
    }

    /// Inside the transaction that does the work: claims the key with the answer the work will
    /// give, or reports the stored answer of an earlier (or concurrent, now committed) request.
    public static func claim(
        _ request: Request, status: Int, response: String, connection: any SQLConnection, now: Int64
    ) throws -> Claim {
        let scope: [SQLValue] = [.integer(request.workspaceID), .text(request.endpoint), .text(request.key)]
        try connection.execute(
            "DELETE FROM idempotency_keys WHERE workspace_id = ? AND endpoint = ? AND idempotency_key = ? AND created_at < ?",
            scope + [.integer(now - retentionMilliseconds)])
        let inserted = try connection.query(
            """
            INSERT INTO idempotency_keys (workspace_id, endpoint, idempotency_key, request_hash, status, response, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, endpoint, idempotency_key) DO NOTHING RETURNING status
            """, scope + [.text(request.requestHash), .integer(Int64(status)), .text(response), .integer(now)])
        if !inserted.isEmpty { return .claimed }
        return try lookup(request, connection: connection, now: now) ?? .conflict
    }

    /// Forgets keys older than 24 hours; returns how many.
    @discardableResult
    public static func purge(_ database: any SQLDatabase, now: Int64) async throws -> Int {
        try await database.write { connection in
            try connection.query(
                "DELETE FROM idempotency_keys WHERE created_at < ? RETURNING workspace_id", [.integer(now - retentionMilliseconds)]).count
        }
    }
}
