import BeckonChannels
import BeckonCore
import BeckonStorage
import Foundation
import Synchronization

/// The workspace's SMS vendor (secrets sealed with the server's `SecretBox`) and whether a
/// configuration error paused SMS; cached per node for `cacheSeconds`, so settings stored on one
/// node are used by the others within that time.
public final class SMSStore: SMSVendorDirectory, Sendable {
    /// What `GET /beckon/v1/sms/vendor` shows: the settings, never the secrets.
    public struct Summary: Sendable {
        public let type: String
        public let settings: JSONValue
        public let pausedReason: String?
        public let updatedAt: Int64
    }

    let database: any SQLDatabase
    private let box: SecretBox
    private let clock: any BeckonClock
    private let cacheSeconds: Double
    private let cache = Mutex<[Int64: (vendor: (vendor: SMSVendor, pausedReason: String?)?, loadedAt: Date)]>([:])

    public init(database: any SQLDatabase, box: SecretBox, clock: any BeckonClock, cacheSeconds: Double = 5) {
        self.database = database
        self.box = box
        self.clock = clock
        self.cacheSeconds = cacheSeconds
    }

    /// Stores (or replaces) the vendor; resumes SMS if it was paused.
    public func save(workspaceID: Int64, vendor: SMSVendor) async throws {
        let sealed = try box.seal(vendor.secret.serialized())
        let now = BrazeTime.epochMilliseconds(clock.now())
        try await database.write { connection in
            try connection.execute(
                """
                INSERT INTO sms_vendors (workspace_id, type, settings, sealed_secret, paused_reason, paused_at, updated_at)
                VALUES (?, ?, ?, ?, NULL, NULL, ?)
                ON CONFLICT (workspace_id) DO UPDATE SET type = excluded.type, settings = excluded.settings,
                    sealed_secret = excluded.sealed_secret, paused_reason = NULL, paused_at = NULL, updated_at = excluded.updated_at
                """,
                [.integer(workspaceID), .text(vendor.type), .text(vendor.settings.serialized()), .text(sealed), .integer(now)])
        }
        cache.withLock { _ = $0.removeValue(forKey: workspaceID) }
    }

    /// Removes the vendor; false when there was none.
    public func delete(workspaceID: Int64) async throws -> Bool {
        let deleted = try await database.write { connection in
            try connection.query("DELETE FROM sms_vendors WHERE workspace_id = ? RETURNING workspace_id", [.integer(workspaceID)]).count > 0
        }
        cache.withLock { _ = $0.removeValue(forKey: workspaceID) }
        return deleted
    }

    public func summary(workspaceID: Int64) async throws -> Summary? {
        try await database.read { connection in
            guard let row = try connection.first(
                "SELECT type, settings, paused_reason, updated_at FROM sms_vendors WHERE workspace_id = ?", [.integer(workspaceID)])
            else { return nil }
            return Summary(
                type: row[0].string ?? "", settings: .object(try row[1].storedObject(table: "sms_vendors", row: "\(workspaceID)", column: "settings")),
                pausedReason: row[2].string, updatedAt: row[3].int ?? 0)
        }
    }

    public func vendor(workspaceID: Int64) async throws -> (vendor: SMSVendor, pausedReason: String?)? {
        let now = clock.now()
        if let cached = cache.withLock({ $0[workspaceID] }), now.timeIntervalSince(cached.loadedAt) < cacheSeconds { return cached.vendor }
        let row = try await database.read { connection in
            try connection.first(
                "SELECT type, settings, sealed_secret, paused_reason FROM sms_vendors WHERE workspace_id = ?", [.integer(workspaceID)])
        }
        var loaded: (vendor: SMSVendor, pausedReason: String?)?
        if let row {
            let name = "\(workspaceID)"
            let settings = JSONValue.object(try row[1].storedObject(table: "sms_vendors", row: name, column: "settings"))
            let secretText: String
            do {
                secretText = try box.open(row[2].string ?? "")
            } catch {
                throw StoredDataError(table: "sms_vendors", row: name, column: "sealed_secret", problem: "cannot be unsealed with this server's secret key: \(error)")
            }
            let secret: JSONValue
            do {
                secret = try JSONValue.parse(Array(secretText.utf8))
            } catch {
                throw StoredDataError(table: "sms_vendors", row: name, column: "sealed_secret", problem: "is not JSON once unsealed")
            }
            do {
                loaded = (try SMSVendor.stored(type: row[0].string ?? "", settings: settings, secret: secret), row[3].string)
            } catch {
                throw StoredDataError(table: "sms_vendors", row: name, column: "settings", problem: error.description)
            }
        }
        cache.withLock { $0[workspaceID] = (loaded, now) }
        return loaded
    }

    public func pause(workspaceID: Int64, reason: String) async throws {
        let now = BrazeTime.epochMilliseconds(clock.now())
        try await database.write { connection in
            try connection.execute(
                "UPDATE sms_vendors SET paused_reason = ?, paused_at = ? WHERE workspace_id = ? AND paused_reason IS NULL",
                [.text(String(reason.prefix(500))), .integer(now), .integer(workspaceID)])
        }
        cache.withLock { _ = $0.removeValue(forKey: workspaceID) }
    }
}
