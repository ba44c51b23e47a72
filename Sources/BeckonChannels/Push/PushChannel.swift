import BeckonCore
import BeckonOutboundHTTP
import Foundation
import Liquid
import Synchronization

/// App and browser push: APNs (iOS), FCM HTTP v1 (Android) and Web Push, one message per user
/// fanned out to each of the user's valid tokens (most recent first, at most `maxTokensPerUser`),
/// every token's delivery under a stable id. Dead tokens are retired with a `bounce`; a
/// configuration error pauses that provider for the workspace and the message waits.
public struct PushChannel: MessageChannel {
    public let name = "push"
    /// Tokens one message is sent to at most (a user's newest devices).
    public static let maxTokensPerUser = 10
    public let concurrencyPerCampaign: Int

    private let directory: any PushDirectory
    private let apns: APNsClient
    private let fcm: FCMClient
    private let webPush: WebPushClient
    private let prefetched = PrefetchedTokens()

    /// - Parameters:
    ///   - concurrencyPerCampaign: pushes of one campaign in flight at once: the HTTP/2 streams
    ///     multiplexed on the provider connection.
    public init(
        outbound: OutboundHTTPClient, allowlist: @escaping @Sendable (Int64) async throws -> HostAllowlist, directory: any PushDirectory,
        clock: any BeckonClock, timeoutMilliseconds: Int = 10_000, concurrencyPerCampaign: Int = 256
    ) {
        let transport = PushTransport(outbound: outbound, allowlist: allowlist, clock: clock, timeoutMilliseconds: timeoutMilliseconds)
        self.directory = directory
        apns = APNsClient(transport: transport)
        fcm = FCMClient(transport: transport)
        webPush = WebPushClient(transport: transport)
        self.concurrencyPerCampaign = concurrencyPerCampaign
    }

    public func validate(_ message: JSONValue, path: String, rules: MessageRules, problems: inout [String]) {
        _ = PushMessageSpec.parse(message, path: path, problems: &problems)
    }

    public func prepare(_ message: JSONValue, rules: MessageRules) throws -> any PreparedMessage {
        var problems: [String] = []
        guard let spec = PushMessageSpec.parse(message, path: "push", problems: &problems) else {
            throw MessageRenderError("the stored push message is not valid: \(problems.joined(separator: "; "))")
        }
        return PreparedPush(spec: spec, advertising: rules.isAdvertising ? rules.advertising : nil, isAdvertising: rules.isAdvertising)
    }

    /// Users with a valid token on one of the message's platforms whose authorization allows it
    /// (authorized or provisional; denied too on platforms where the push is silent) and who did
    /// not unsubscribe. A stored message that does not parse is not filtered here: `prepare` fails
    /// it, so each of its messages fails with that reason in the activity log.
    public func reachability(_ message: JSONValue) -> SegmentFilter? {
        var problems: [String] = []
        guard let spec = PushMessageSpec.parse(message, path: "push", problems: &problems) else { return nil }
        let visible = spec.platforms.filter { !spec.silentPlatforms.contains($0) }.map(\.rawValue)
        let silent = spec.platforms.filter { spec.silentPlatforms.contains($0) }.map(\.rawValue)
        var filters: [SegmentFilter] = []
        if !visible.isEmpty { filters.append(.pushToken(platforms: visible, authorizations: ["authorized", "provisional"])) }
        if !silent.isEmpty { filters.append(.pushToken(platforms: silent, authorizations: ["authorized", "provisional", "denied"])) }
        return filters.count == 1 ? filters[0] : .any(filters)
    }

    public func send(_ message: RenderedMessage, to recipient: Recipient) async -> ChannelOutcome {
        let credentials: PushCredentials
        let devices: [PushDeviceToken]
        var reached: Set<String> = []
        do {
            credentials = try await directory.credentials(workspaceID: recipient.workspaceID)
            if let loaded = prefetched.take(workspaceID: recipient.workspaceID, userID: recipient.userID) {
                devices = loaded
            } else {
                devices = try await directory.tokens(workspaceID: recipient.workspaceID, userID: recipient.userID, limit: Self.maxTokensPerUser)
            }
            if recipient.attempt > 1 { reached = try await directory.deliveredTokens(messageID: recipient.messageID) }
        } catch {
            return .retryable(reason: "cannot read the push tokens or credentials: \(error)", after: nil, status: nil)
        }
        let targets = Self.targets(devices, for: message, skipping: reached)
        guard !targets.isEmpty else {
            if !reached.isEmpty { return .accepted(detail: "push") }
            return .invalidAddress(reason: "the user has no valid push token for this message's platforms")
        }
        let outcomes = await deliverAll(message, to: targets, credentials: credentials, recipient: recipient)
        return await combine(outcomes, alreadyReached: reached, recipient: recipient)
    }

    /// Loads the tokens of a claimed chunk's users in one query; `send` takes them (once) from here.
    public func prefetch(workspaceID: Int64, userIDs: [Int64]) async {
        guard let tokens = try? await directory.tokens(workspaceID: workspaceID, userIDs: userIDs, limit: Self.maxTokensPerUser) else { return }
        prefetched.put(workspaceID: workspaceID, userIDs: userIDs, tokens: tokens)
    }

    /// Sends a rendered push to each of the user's valid tokens now and returns each token's
    /// outcome (`beckon admin push-test`); dead tokens are retired as in a send, nothing is paused.
    public func sendToEachToken(_ message: RenderedMessage, to recipient: Recipient) async throws -> [(token: PushDeviceToken, outcome: ChannelOutcome)] {
        let credentials = try await directory.credentials(workspaceID: recipient.workspaceID)
        let devices = try await directory.tokens(workspaceID: recipient.workspaceID, userID: recipient.userID, limit: Self.maxTokensPerUser)
        var results: [(token: PushDeviceToken, outcome: ChannelOutcome)] = []
        for (device, result) in await deliverAll(message, to: Self.targets(devices, for: message, skipping: []), credentials: credentials, recipient: recipient) {
            if case .invalidAddress(let reason) = result.outcome {
                try await directory.invalidate(device, recipient: recipient, reason: reason, invalidSince: result.invalidSince)
            }
            results.append((device, result.outcome))
        }
        return results
    }

    /// The tokens a rendered message goes to: its platforms, not blocked, denied only for silent pushes.
    private static func targets(_ devices: [PushDeviceToken], for message: RenderedMessage, skipping reached: Set<String>) -> [PushDeviceToken] {
        devices.filter { device in
            guard let rendered = message.payload[device.platform.rawValue], !rendered.isNull, !reached.contains(device.token) else { return false }
            switch device.authorization {
            case "blocked": return false
            case "denied": return rendered["headers"]?["apns-push-type"]?.stringValue == "background" || Self.isSilent(rendered)
            default: return true
            }
        }
    }

    private func deliverAll(
        _ message: RenderedMessage, to targets: [PushDeviceToken], credentials: PushCredentials, recipient: Recipient
    ) async -> [(PushDeviceToken, TokenOutcome)] {
        if targets.count == 1, let device = targets.first {
            return [(device, await deliver(message.payload[device.platform.rawValue] ?? .null, to: device, credentials: credentials, recipient: recipient))]
        }
        return await withTaskGroup(of: (PushDeviceToken, TokenOutcome).self) { group in
            for device in targets {
                group.addTask { (device, await self.deliver(message.payload[device.platform.rawValue] ?? .null, to: device, credentials: credentials, recipient: recipient)) }
            }
            var results: [(PushDeviceToken, TokenOutcome)] = []
            for await result in group { results.append(result) }
            return results
        }
    }

    private static func isSilent(_ rendered: JSONValue) -> Bool {
        rendered["message"]?["notification"] == nil && rendered["message"]?["data"]?["content_available"]?.stringValue == "1"
            || rendered["headers"]?["Urgency"]?.stringValue == "low"
    }

    private func deliver(_ rendered: JSONValue, to device: PushDeviceToken, credentials: PushCredentials, recipient: Recipient) async -> TokenOutcome {
        let provider = PushProvider(platform: device.platform)
        if let reason = credentials.paused[provider] {
            return TokenOutcome(outcome: .configError(reason: "\(provider.displayName) is paused for this workspace: \(reason)"), pausesProvider: false)
        }
        switch device.platform {
        case .ios:
            guard let apns = credentials.apns else { return TokenOutcome(outcome: .configError(reason: "APNs is not configured (PUT /beckon/v1/push/apns)"), pausesProvider: false) }
            return await self.apns.send(rendered, to: device, credentials: apns, recipient: recipient)
        case .android:
            guard let fcm = credentials.fcm else { return TokenOutcome(outcome: .configError(reason: "FCM is not configured (PUT /beckon/v1/push/fcm)"), pausesProvider: false) }
            return await self.fcm.send(rendered, to: device, credentials: fcm, recipient: recipient)
        case .web:
            guard let web = credentials.web else {
                return TokenOutcome(outcome: .configError(reason: "Web Push has no VAPID key (POST /beckon/v1/push/web/vapid)"), pausesProvider: false)
            }
            return await webPush.send(rendered, to: device, credentials: web, recipient: recipient)
        }
    }

    /// One outcome for the message: tokens still to reach (retryable, or waiting for a paused
    /// provider) keep it queued, with the tokens already reached recorded; otherwise delivered when
    /// any token took it. Dead tokens are retired; a configuration error pauses its provider once.
    private func combine(_ results: [(PushDeviceToken, TokenOutcome)], alreadyReached: Set<String>, recipient: Recipient) async -> ChannelOutcome {
        var accepted: [PushDeviceToken] = []
        var waiting: ChannelOutcome?
        var rejected: ChannelOutcome?
        var invalid: ChannelOutcome?
        var paused: Set<PushProvider> = []
        do {
            for (device, result) in results {
                switch result.outcome {
                case .accepted: accepted.append(device)
                case .invalidAddress(let reason):
                    try await directory.invalidate(device, recipient: recipient, reason: reason, invalidSince: result.invalidSince)
                    invalid = invalid ?? result.outcome
                case .rejected: rejected = rejected ?? result.outcome
                case .retryable(_, let after, _):
                    // The longest Retry-After of the tokens retried wins.
                    if case .retryable(_, let previous, _)? = waiting, (previous ?? 0) >= (after ?? 0) { break }
                    if case .configError? = waiting { break }
                    waiting = result.outcome
                case .configError(let reason):
                    let provider = PushProvider(platform: device.platform)
                    if !paused.contains(provider), result.pausesProvider {
                        try await directory.pause(workspaceID: recipient.workspaceID, provider: provider, reason: reason)
                    }
                    paused.insert(provider)
                    if case .configError? = waiting {} else { waiting = result.outcome }
                }
            }
            if let waiting {
                if !accepted.isEmpty { try await directory.recordDelivered(messageID: recipient.messageID, tokens: accepted.map(\.token)) }
                return waiting
            }
        } catch {
            return .retryable(reason: "cannot record the push outcome: \(error)", after: nil, status: nil)
        }
        if !accepted.isEmpty || !alreadyReached.isEmpty {
            let platforms = Set(accepted.map(\.platform.rawValue)).sorted()
            return .accepted(detail: platforms.isEmpty ? "push" : platforms.joined(separator: ","))
        }
        return rejected ?? invalid ?? .invalidAddress(reason: "no push token took the message")
    }
}

/// Tokens loaded for a claimed chunk, each taken once by its user's send (so a later send
/// reads them fresh); bounded, so sends that never come cannot make it grow.
final class PrefetchedTokens: Sendable {
    private static let capacity = 20_000
    private let entries = Mutex<[String: [PushDeviceToken]]>([:])

    func put(workspaceID: Int64, userIDs: [Int64], tokens: [Int64: [PushDeviceToken]]) {
        entries.withLock { entries in
            if entries.count + userIDs.count > Self.capacity { entries.removeAll(keepingCapacity: true) }
            for userID in userIDs { entries["\(workspaceID):\(userID)"] = tokens[userID] ?? [] }
        }
    }

    func take(workspaceID: Int64, userID: Int64) -> [PushDeviceToken]? {
        entries.withLock { $0.removeValue(forKey: "\(workspaceID):\(userID)") }
    }
}

/// A push message with its templates parsed: rendered once per user into each platform's
/// provider request (size-checked), which `send` completes per token.
struct PreparedPush: PreparedMessage {
    let spec: PushMessageSpec
    let advertising: AdvertisingNotice?
    let isAdvertising: Bool

    func render(_ context: LiquidObject, environment: RenderEnvironment) async throws -> RenderedMessage {
        guard case .object(let rendered) = try await spec.tree.render(context, environment: environment) else {
            throw MessageRenderError("the push message did not render to an object")
        }
        var campaignID: String?
        if case .object(let campaign) = context["campaign"], case .string(let id) = campaign["api_id"] { campaignID = id }
        var platforms: [String: JSONValue] = [:]
        for platform in spec.platforms {
            var content = PushContent(rendered: rendered, platform: platform)
            if isAdvertising {
                guard let advertising else { throw MessageRenderError("advertising campaigns need delivery_settings.advertising.opt_out_text") }
                content = content.advertised(advertising)
            }
            for (name, value) in content.fields {
                if let text = value.stringValue, text.unicodeScalars.contains(where: { $0.value == 0 || $0 == "\u{FFFD}" }) {
                    throw MessageRenderError("push \(name) rendered text that is not valid UTF-8 (a NUL or a replacement character)")
                }
            }
            switch platform {
            case .ios: platforms["ios"] = try APNsRequest.build(content, campaignID: campaignID)
            case .android: platforms["android"] = try FCMRequest.build(content, campaignID: campaignID)
            case .web: platforms["web"] = try WebPushRequest.build(content, campaignID: campaignID)
            }
        }
        return RenderedMessage(channel: "push", payload: .object(platforms))
    }
}

extension PushContent {
    /// Korean advertising law on push: "(광고) " before the title and the opt-out line after the body.
    func advertised(_ notice: AdvertisingNotice) -> PushContent {
        var fields = self.fields
        fields["title"] = .string(AdvertisingNotice.prefix + (text("title") ?? ""))
        fields["body"] = .string((text("body").map { $0 + "\n" } ?? "") + notice.optOutText)
        return PushContent(fields: fields)
    }

    init(fields: [String: JSONValue]) {
        self.fields = fields
    }
}
