import BeckonCore
import Foundation

/// A workspace's Connected Content limits and allowlist.
public struct ConnectedContentSettings: Sendable, Hashable, Codable {
    /// How long a call may take, response body included.
    public var timeoutMilliseconds = 2_000
    /// Calls per second to one destination host; `nil` means unlimited.
    public var rateLimitPerSecond: Int? = 100
    /// How long a call may wait for the rate limit before its message fails.
    public var maxWaitMilliseconds = 10_000
    /// `host` or `host:port` entries this workspace may call beyond ports 80/443 on public addresses.
    public var allowedHosts: [String] = []

    public init() {}

    /// Accepted ranges, so a typo cannot disable a limit.
    public static let timeoutRange = 100...30_000
    public static let rateLimitRange = 1...100_000
    public static let maxWaitRange = 0...120_000

    enum CodingKeys: String, CodingKey {
        case timeoutMilliseconds = "timeout_ms"
        case rateLimitPerSecond = "rate_limit_per_second"
        case maxWaitMilliseconds = "max_wait_ms"
        case allowedHosts = "allowed_hosts"
    }
}

/// Reads and writes each workspace's `ConnectedContentSettings` (defaults when none were saved).
public final class ConnectedContentSettingsStore: Sendable {
    private let database: any SQLDatabase
    private let clock: any BeckonClock

    public init(database: any SQLDatabase, clock: any BeckonClock) {
        self.database = database
        self.clock = clock
    }

    public func settings(workspaceID: Int64) async throws -> ConnectedContentSettings {
        let text = try await database.read { connection in
            try connection.first("SELECT settings FROM connected_content_settings WHERE workspace_id = ?", [.integer(workspaceID)])?[0]
                .string
        }
        guard let text else { return ConnectedContentSettings() }
        do {
            return try JSONDecoder().decode(ConnectedContentSettings.self, from: Data(text.utf8))
        } catch {
            throw StoredDataError(table: "connected_content_settings", row: "\(workspaceID)", column: "settings", problem: "\(error)")
        }
    }

    public func save(workspaceID: Int64, settings: ConnectedContentSettings) async throws {
        let text = String(decoding: try JSONEncoder().encode(settings), as: UTF8.self)
        let now = BrazeTime.epochMilliseconds(clock.now())
        try await database.write { connection in
            try connection.execute("DELETE FROM connected_content_settings WHERE workspace_id = ?", [.integer(workspaceID)])
            try connection.execute(
                "INSERT INTO connected_content_settings (workspace_id, settings, updated_at) VALUES (?, ?, ?)",
                [.integer(workspaceID), .text(text), .integer(now)])
        }
    }
}
