import BeckonCore

/// One device token (or Web Push subscription) of a user, as the push channel sends to it.
public struct PushDeviceToken: Sendable, Hashable {
    public let token: String
    public let platform: PushPlatformName
    /// `authorized`, `provisional`, `denied` or `blocked`.
    public let authorization: String
    /// Web Push subscription keys (`p256dh`, `auth`, base64url), empty for app tokens.
    public let webPushKeys: [String: String]
    /// When the token was last registered (epoch ms): APNs' 410 timestamp rule compares with it.
    public let updatedAt: Int64

    public init(token: String, platform: PushPlatformName, authorization: String, webPushKeys: [String: String], updatedAt: Int64) {
        self.token = token
        self.platform = platform
        self.authorization = authorization
        self.webPushKeys = webPushKeys
        self.updatedAt = updatedAt
    }
}

/// What the push channel needs from storage, implemented by the messaging target: tokens,
/// credentials, token invalidation (with its `bounce` event), the tokens a retried message
/// already reached, and pausing a provider on a configuration error.
public protocol PushDirectory: Sendable {
    /// The workspace's credentials and paused providers (cached briefly by implementations).
    func credentials(workspaceID: Int64) async throws -> PushCredentials
    /// The user's valid tokens, most recently registered first, at most `limit`.
    func tokens(workspaceID: Int64, userID: Int64, limit: Int) async throws -> [PushDeviceToken]
    /// The valid tokens of several users at once (the same rule and order per user as `tokens`).
    func tokens(workspaceID: Int64, userIDs: [Int64], limit: Int) async throws -> [Int64: [PushDeviceToken]]
    /// Tokens an earlier attempt of `messageID` already delivered to.
    func deliveredTokens(messageID: String) async throws -> Set<String>
    /// Records tokens `messageID` reached, when the message is retried for its other tokens.
    func recordDelivered(messageID: String, tokens: [String]) async throws
    /// Marks a dead token invalid and records a `bounce` for the message — unless it was
    /// registered again after `invalidSince` (epoch ms; APNs' 410 timestamp).
    func invalidate(_ token: PushDeviceToken, recipient: Recipient, reason: String, invalidSince: Int64?) async throws
    /// Pauses a provider for the workspace with the reason (once; storing its credential again resumes it).
    func pause(workspaceID: Int64, provider: PushProvider, reason: String) async throws
}
