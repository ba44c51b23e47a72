import BeckonChannels
import BeckonCore
import BeckonStorage
import Foundation
import Synchronization

/// What `GET /beckon/v1/push` shows of one provider: its settings, never its secret.
public struct PushProviderSummary: Sendable {
    public let provider: PushProvider
    public let settings: JSONValue
    public let pausedReason: String?
    public let pausedAt: Int64?
    public let updatedAt: Int64
}

/// Push credentials per workspace (secrets sealed with the server's `SecretBox`), the users'
/// tokens as the push channel reads and retires them, and the tokens a retried message already
/// reached. Credentials are cached per node for `cacheSeconds`, so a key stored on one node is
/// used by the others within that time.
public final class PushStore: PushDirectory, Sendable {
    let database: any SQLDatabase
    private let box: SecretBox
    private let clock: any BeckonClock
    private let cacheSeconds: Double
    private let cache = Mutex<[Int64: (credentials: PushCredentials, loadedAt: Date)]>([:])

    public init(database: any SQLDatabase, box: SecretBox, clock: any BeckonClock, cacheSeconds: Double = 5) {
        self.database = database
        self.box = box
        self.clock = clock
        self.cacheSeconds = cacheSeconds
    }

    private var now: Int64 { BrazeTime.epochMilliseconds(clock.now()) }

    // MARK: Credentials

    /// Stores (or replaces) APNs credentials; resumes APNs if it was paused.
    public func save(workspaceID: Int64, apns: APNsCredentials) async throws {
        var settings: [String: JSONValue] = [
            "team_id": .string(apns.teamID), "key_id": .string(apns.keyID), "bundle_id": .string(apns.bundleID),
            "environment": .string(apns.environment),
        ]
        if let endpoint = apns.endpoint { settings["endpoint"] = .string(endpoint) }
        try await save(workspaceID: workspaceID, provider: .apns, settings: .object(settings), secret: apns.privateKeyPEM)
    }

    /// Stores (or replaces) the FCM service account; resumes FCM if it was paused.
    public func save(workspaceID: Int64, fcm: FCMCredentials) async throws {
        var settings: [String: JSONValue] = [
            "project_id": .string(fcm.projectID), "client_email": .string(fcm.clientEmail), "token_uri": .string(fcm.tokenURI),
        ]
        if let id = fcm.privateKeyID { settings["private_key_id"] = .string(id) }
        if let endpoint = fcm.endpoint { settings["endpoint"] = .string(endpoint) }
        try await save(workspaceID: workspaceID, provider: .fcm, settings: .object(settings), secret: fcm.privateKeyPEM)
    }

    /// Creates the VAPID key pair unless one exists (or `rotate`); returns the stored pair and
    /// whether it was made now.
    public func createVAPID(workspaceID: Int64, rotate: Bool) async throws -> (WebPushCredentials, created: Bool) {
        if !rotate, let existing = try await load(workspaceID: workspaceID).web { return (existing, false) }
        let subject = try await load(workspaceID: workspaceID).web?.subject
        let pair = WebPushCredentials.generate(subject: subject)
        try await saveWeb(workspaceID: workspaceID, pair)
        return (pair, true)
    }

    /// Sets the VAPID subject; throws `PushCredentialError` when no key pair exists yet.
    public func setVAPIDSubject(workspaceID: Int64, subject: String) async throws -> WebPushCredentials {
        guard let existing = try await load(workspaceID: workspaceID).web else {
            throw PushCredentialError("subject", "create the VAPID key pair first (POST /beckon/v1/push/web/vapid)")
        }
        let updated = WebPushCredentials(privateKey: existing.privateKey, publicKey: existing.publicKey, subject: subject)
        try await saveWeb(workspaceID: workspaceID, updated)
        return updated
    }

    private func saveWeb(workspaceID: Int64, _ pair: WebPushCredentials) async throws {
        var settings: [String: JSONValue] = ["vapid_public_key": .string(pair.publicKey)]
        if let subject = pair.subject { settings["subject"] = .string(subject) }
        try await save(workspaceID: workspaceID, provider: .web, settings: .object(settings), secret: pair.privateKey)
    }

    private func save(workspaceID: Int64, provider: PushProvider, settings: JSONValue, secret: String) async throws {
        let sealed = try box.seal(secret)
        let now = self.now
        try await database.write { connection in
            try connection.execute(
                """
                INSERT INTO push_credentials (workspace_id, provider, settings, sealed_secret, paused_reason, paused_at, created_at, updated_at)
                VALUES (?, ?, ?, ?, NULL, NULL, ?, ?)
                ON CONFLICT (workspace_id, provider) DO UPDATE SET settings = excluded.settings, sealed_secret = excluded.sealed_secret,
                    paused_reason = NULL, paused_at = NULL, updated_at = excluded.updated_at
                """,
                [.integer(workspaceID), .text(provider.rawValue), .text(settings.serialized()), .text(sealed), .integer(now), .integer(now)])
        }
        forget(workspaceID)
    }

    /// Removes a provider's credentials; false when there were none.
    public func delete(workspaceID: Int64, provider: PushProvider) async throws -> Bool {
        let deleted = try await database.write { connection in
            try connection.query(
                "DELETE FROM push_credentials WHERE workspace_id = ? AND provider = ? RETURNING provider",
                [.integer(workspaceID), .text(provider.rawValue)]).count > 0
        }
        forget(workspaceID)
        return deleted
    }

    /// What is configured, without secrets.
    public func summaries(workspaceID: Int64) async throws -> [PushProviderSummary] {
        try await database.read { connection in
            try connection.query(
                "SELECT provider, settings, paused_reason, paused_at, updated_at FROM push_credentials WHERE workspace_id = ? ORDER BY provider",
                [.integer(workspaceID)]
            ).compactMap { row in
                guard let provider = row[0].string.flatMap(PushProvider.init(rawValue:)) else { return nil }
                return PushProviderSummary(
                    provider: provider,
                    settings: try row[1].storedJSON(table: "push_credentials", row: "\(workspaceID)/\(provider.rawValue)", column: "settings") ?? .null,
                    pausedReason: row[2].string, pausedAt: row[3].int, updatedAt: row[4].int ?? 0)
            }
        }
    }

    private func forget(_ workspaceID: Int64) {
        _ = cache.withLock { $0.removeValue(forKey: workspaceID) }
    }

    /// The workspace's credentials, opened; cached for `cacheSeconds`.
    public func credentials(workspaceID: Int64) async throws -> PushCredentials {
        let now = clock.now()
        if let cached = cache.withLock({ $0[workspaceID] }), now.timeIntervalSince(cached.loadedAt) < cacheSeconds, now >= cached.loadedAt {
            return cached.credentials
        }
        let loaded = try await load(workspaceID: workspaceID)
        cache.withLock { $0[workspaceID] = (loaded, now) }
        return loaded
    }

    /// Reads and opens every provider's row; a row that does not decode is an error naming it.
    private func load(workspaceID: Int64) async throws -> PushCredentials {
        let rows = try await database.read { connection in
            try connection.query(
                "SELECT provider, settings, sealed_secret, paused_reason FROM push_credentials WHERE workspace_id = ?", [.integer(workspaceID)])
        }
        var credentials = PushCredentials()
        for row in rows {
            let name = row[0].string ?? ""
            let rowName = "\(workspaceID)/\(name)"
            guard let provider = PushProvider(rawValue: name) else {
                throw StoredDataError(table: "push_credentials", row: rowName, column: "provider", problem: "unknown provider '\(name)'")
            }
            var settings = try row[1].storedObject(table: "push_credentials", row: rowName, column: "settings")
            let secret = try box.open(row[2].string ?? "")
            if let reason = row[3].string { credentials.paused[provider] = reason }
            do {
                switch provider {
                case .apns:
                    settings["private_key"] = .string(secret)
                    credentials.apns = try APNsCredentials.parse(.object(settings))
                case .fcm:
                    var account = settings
                    let endpoint = account.removeValue(forKey: "endpoint")
                    account["private_key"] = .string(secret)
                    var body: [String: JSONValue] = ["service_account": .object(account)]
                    if let endpoint { body["endpoint"] = endpoint }
                    credentials.fcm = try FCMCredentials.parse(.object(body))
                case .web:
                    guard let publicKey = settings["vapid_public_key"]?.stringValue else {
                        throw PushCredentialError("vapid_public_key", "missing")
                    }
                    credentials.web = WebPushCredentials(privateKey: secret, publicKey: publicKey, subject: settings["subject"]?.stringValue)
                }
            } catch let error as PushCredentialError {
                throw StoredDataError(table: "push_credentials", row: rowName, column: "settings", problem: error.description)
            }
        }
        return credentials
    }

    public func pause(workspaceID: Int64, provider: PushProvider, reason: String) async throws {
        let now = self.now
        try await database.write { connection in
            try connection.execute(
                "UPDATE push_credentials SET paused_reason = ?, paused_at = ? WHERE workspace_id = ? AND provider = ? AND paused_reason IS NULL",
                [.text(String(reason.prefix(500))), .integer(now), .integer(workspaceID), .text(provider.rawValue)])
        }
        forget(workspaceID)
    }

    // MARK: Tokens

    public func tokens(workspaceID: Int64, userID: Int64, limit: Int) async throws -> [PushDeviceToken] {
        try await tokens(workspaceID: workspaceID, userIDs: [userID], limit: limit)[userID] ?? []
    }

    public func tokens(workspaceID: Int64, userIDs: [Int64], limit: Int) async throws -> [Int64: [PushDeviceToken]] {
        var tokens: [Int64: [PushDeviceToken]] = [:]
        for start in stride(from: 0, to: userIDs.count, by: 500) {
            let chunk = Array(userIDs[start..<min(start + 500, userIDs.count)])
            let rows = try await database.read { connection in
                try connection.query(
                    """
                    SELECT user_id, token, platform, authorization_state, web_push_keys, updated_at FROM push_tokens
                    WHERE user_id IN (\(chunk.map { _ in "?" }.joined(separator: ", "))) AND workspace_id = ? AND invalidated_at IS NULL
                    ORDER BY user_id, updated_at DESC, token
                    """, chunk.map(SQLValue.integer) + [.integer(workspaceID)])
            }
            for row in rows {
                let userID = row[0].int ?? 0
                guard tokens[userID, default: []].count < limit else { continue }
                guard let platform = row[2].string.flatMap(PushPlatformName.init(rawValue:)) else {
                    throw StoredDataError(table: "push_tokens", row: "\(userID)", column: "platform", problem: "unknown platform '\(row[2].string ?? "")'")
                }
                let keys = try row[4].storedObject(table: "push_tokens", row: "\(userID)", column: "web_push_keys")
                tokens[userID, default: []].append(PushDeviceToken(
                    token: row[1].string ?? "", platform: platform, authorization: row[3].string ?? "authorized",
                    webPushKeys: keys.compactMapValues(\.stringValue), updatedAt: row[5].int ?? 0))
            }
        }
        return tokens
    }

    public func deliveredTokens(messageID: String) async throws -> Set<String> {
        try await database.read { connection in
            Set(try connection.query("SELECT token FROM push_deliveries WHERE message_id = ?", [.text(messageID)]).compactMap { $0[0].string })
        }
    }

    public func recordDelivered(messageID: String, tokens: [String]) async throws {
        let now = self.now
        try await database.write { connection in
            for token in tokens {
                try connection.execute(
                    "INSERT INTO push_deliveries (message_id, token, delivered_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    [.text(messageID), .text(token), .integer(now)])
            }
        }
    }

    public func invalidate(_ token: PushDeviceToken, recipient: Recipient, reason: String, invalidSince: Int64?) async throws {
        let now = self.now
        try await database.write { connection in
            // APNs' rule: a token registered again after Apple learned it was invalid stays.
            var sql = "UPDATE push_tokens SET invalidated_at = ?, invalid_reason = ? WHERE workspace_id = ? AND token = ? AND invalidated_at IS NULL"
            var arguments: [SQLValue] = [.integer(now), .text(String(reason.prefix(300))), .integer(recipient.workspaceID), .text(token.token)]
            if let invalidSince {
                sql += " AND updated_at <= ?"
                arguments.append(.integer(invalidSince))
            }
            let retired = try connection.query(sql + " RETURNING token", arguments).count > 0
            guard retired else { return }
            try connection.execute(
                """
                INSERT INTO engagement_events (workspace_id, time, type, campaign_id, dispatch_id, message_id, variant, user_id, external_id, channel, details)
                VALUES (?, ?, 'bounce', ?, ?, ?, ?, ?, ?, 'push', ?)
                """,
                [.integer(recipient.workspaceID), .integer(now), .text(recipient.campaignID), .text(recipient.dispatchID), .text(recipient.messageID),
                 .text(recipient.variant), .integer(recipient.userID), .text(recipient.externalID),
                 .text("\(token.platform.rawValue): \(reason.prefix(200))")])
        }
    }
}
