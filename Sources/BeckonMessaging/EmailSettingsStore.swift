import BeckonChannels
import BeckonCore
import BeckonStorage
import Foundation

/// Each workspace's email sending settings, the SMTP password and DKIM private key sealed with
/// the server's `SecretBox`.
public final class EmailSettingsStore: Sendable {
    let database: any SQLDatabase
    private let box: SecretBox
    private let clock: any BeckonClock

    public init(database: any SQLDatabase, box: SecretBox, clock: any BeckonClock) {
        self.database = database
        self.box = box
        self.clock = clock
    }

    public func settings(workspaceID: Int64) async throws -> EmailSettings? {
        guard let row = try await database.read({ connection in
            try connection.first("SELECT settings, sealed_secret FROM email_settings WHERE workspace_id = ?", [.integer(workspaceID)])
        }) else { return nil }
        let name = "\(workspaceID)"
        let settings = JSONValue.object(try row[0].storedObject(table: "email_settings", row: name, column: "settings"))
        let secret: JSONValue
        do {
            secret = try JSONValue.parse(Array(try box.open(row[1].string ?? "").utf8))
        } catch {
            throw StoredDataError(table: "email_settings", row: name, column: "sealed_secret", problem: "cannot be unsealed with this server's secret key: \(error)")
        }
        do {
            return try EmailSettings.stored(settings: settings, secret: secret)
        } catch {
            throw StoredDataError(table: "email_settings", row: name, column: "settings", problem: error.description)
        }
    }

    public func save(workspaceID: Int64, _ settings: EmailSettings) async throws {
        let sealed = try box.seal(settings.secretJSON.serialized())
        let now = BrazeTime.epochMilliseconds(clock.now())
        try await database.write { connection in
            try connection.execute(
                """
                INSERT INTO email_settings (workspace_id, settings, sealed_secret, updated_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (workspace_id) DO UPDATE SET settings = excluded.settings, sealed_secret = excluded.sealed_secret, updated_at = excluded.updated_at
                """,
                [.integer(workspaceID), .text(settings.settingsJSON.serialized()), .text(sealed), .integer(now)])
        }
    }

    public func delete(workspaceID: Int64) async throws -> Bool {
        try await database.write { connection in
            try connection.query("DELETE FROM email_settings WHERE workspace_id = ? RETURNING workspace_id", [.integer(workspaceID)]).count > 0
        }
    }
}
