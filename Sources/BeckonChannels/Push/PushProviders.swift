import BeckonCore
import BeckonOutboundHTTP
import Crypto
import Foundation
import Metrics
import Synchronization
import _CryptoExtras

/// One token's answer from its provider; `invalidSince` is APNs' 410 timestamp (epoch ms).
struct TokenOutcome: Error, Sendable {
    let outcome: ChannelOutcome
    var invalidSince: Int64? = nil
    /// A configError that must not pause the provider again (already paused, or not configured).
    var pausesProvider = true
}

/// What the provider clients share: the outbound client, the workspace allowlist and the clock.
struct PushTransport: Sendable {
    let outbound: OutboundHTTPClient
    let allowlist: @Sendable (Int64) async throws -> HostAllowlist
    let clock: any BeckonClock
    let timeoutMilliseconds: Int

    /// `beckon_push_provider_seconds{provider}`: each provider request's round trip as Beckon sees it.
    private static let latency: [PushProvider: Timer] = Dictionary(uniqueKeysWithValues: PushProvider.allCases.map { provider in
        (provider, Timer(label: "beckon_push_provider_seconds", dimensions: [("provider", provider.rawValue)]))
    })

    /// Sends under the network policy, timing the round trip; transport failures become outcomes.
    func send(_ request: OutboundRequest, provider: PushProvider, workspaceID: Int64) async -> Result<OutboundResponse, TokenOutcome> {
        let start = ContinuousClock.now
        defer {
            let elapsed = (ContinuousClock.now - start).components
            Self.latency[provider]?.recordNanoseconds(elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
        }
        return await send(request, workspaceID: workspaceID)
    }

    private func send(_ request: OutboundRequest, workspaceID: Int64) async -> Result<OutboundResponse, TokenOutcome> {
        let workspaceAllowlist: HostAllowlist
        do {
            workspaceAllowlist = try await allowlist(workspaceID)
        } catch {
            return .failure(TokenOutcome(outcome: .retryable(reason: "cannot read the workspace's allowlist: \(error)", after: nil, status: nil)))
        }
        do {
            return .success(try await outbound.send(request, workspaceAllowlist: workspaceAllowlist, timeoutMilliseconds: timeoutMilliseconds))
        } catch {
            switch error.kind {
            case .timeout, .network: return .failure(TokenOutcome(outcome: .retryable(reason: error.reason, after: nil, status: nil)))
            case .blocked:
                return .failure(TokenOutcome(outcome: .configError(
                    reason: "\(error.reason) (allowlist the provider endpoint with --allow-host or use the provider's public host)")))
            default: return .failure(TokenOutcome(outcome: .rejected(reason: error.reason, status: error.status)))
            }
        }
    }

    var nowSeconds: Int64 { Int64(clock.now().timeIntervalSince1970) }

    /// `Retry-After` in seconds (a number; an HTTP date counts from now).
    static func retryAfter(_ response: OutboundResponse, now: Date) -> Int? {
        guard let text = response.retryAfter?.trimmingCharacters(in: .whitespaces) else { return nil }
        if let seconds = Int(text) { return max(0, seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text).map { max(0, Int($0.timeIntervalSince(now).rounded(.up))) }
    }
}

/// Provider base URLs parsed once (they change only when credentials are stored again).
final class BaseURLs: Sendable {
    private let parsed = Mutex<[String: OutboundURL]>([:])

    func url(_ base: String, path: String) throws(OutboundFailure) -> OutboundURL {
        if let known = parsed.withLock({ $0[base] }) { return known.appending(path: path) }
        let url = try OutboundURL(base)
        parsed.withLock { parsed in
            if parsed.count >= 10_000 { parsed.removeAll() }
            parsed[base] = url
        }
        return url.appending(path: path)
    }
}

/// A token minted once and reused until it is `maxAge` old (or rejected as expired).
final class CachedToken: Sendable {
    private let cache = Mutex<[String: (token: String, mintedAt: Int64)]>([:])

    /// The cached token for `key`, or a new one from `mint`; `replacing` forces a new one when the
    /// cached token is the one that was refused.
    func token(for key: String, now: Int64, maxAge: Int64, replacing refused: String? = nil, mint: () throws -> String) throws -> String {
        try cache.withLock { cache in
            if let entry = cache[key], now - entry.mintedAt < maxAge, entry.token != refused { return entry.token }
            let token = try mint()
            cache[key] = (token, now)
            return token
        }
    }
}

/// APNs over HTTP/2 with token (JWT ES256) authentication, one provider token per key reused
/// across every request and connection, re-minted after 50 minutes or on `ExpiredProviderToken`.
struct APNsClient: Sendable {
    static let tokenMaxAgeSeconds: Int64 = 50 * 60
    let transport: PushTransport
    let tokens = CachedToken()
    let bases = BaseURLs()

    func providerToken(_ credentials: APNsCredentials, replacing refused: String? = nil) throws -> String {
        try tokens.token(for: "\(credentials.teamID)|\(credentials.keyID)", now: transport.nowSeconds, maxAge: Self.tokenMaxAgeSeconds, replacing: refused) {
            try JSONWebToken.signES256(
                headerJSON: JSONValue.object(["alg": .string("ES256"), "kid": .string(credentials.keyID)]).serialized(),
                claimsJSON: JSONValue.object(["iss": .string(credentials.teamID), "iat": .int(transport.nowSeconds)]).serialized(),
                key: try credentials.signingKey())
        }
    }

    func send(_ rendered: JSONValue, to device: PushDeviceToken, credentials: APNsCredentials, recipient: Recipient) async -> TokenOutcome {
        guard !device.token.isEmpty, device.token.count <= 200, device.token.allSatisfy(\.isHexDigit) else {
            return TokenOutcome(outcome: .invalidAddress(reason: "APNs device tokens are hexadecimal; this one is not"))
        }
        let url: OutboundURL
        do {
            url = try bases.url(credentials.baseURL, path: "/3/device/" + device.token.lowercased())
        } catch {
            return TokenOutcome(outcome: .configError(reason: "the APNs endpoint is not usable: \(error.reason)"))
        }
        var headers: [(String, String)] = (rendered["headers"]?.objectValue ?? [:]).sorted { $0.key < $1.key }.compactMap { key, value in
            value.stringValue.map { (key, $0) }
        }
        headers.append(("apns-topic", credentials.bundleID))
        headers.append(("apns-id", PushDeliveryID.apnsID(messageID: recipient.messageID, token: device.token)))
        if case .int(let ttl)? = rendered["ttl_seconds"] { headers.append(("apns-expiration", ttl == 0 ? "0" : String(transport.nowSeconds + ttl))) }
        headers.append(("content-type", "application/json"))
        let body = APNsRequest.body(rendered, deliveryID: PushDeliveryID.make(messageID: recipient.messageID, token: device.token))
        guard body.utf8.count <= APNsRequest.maxPayloadBytes else {
            return TokenOutcome(outcome: .rejected(reason: "the iOS push payload is \(body.utf8.count) bytes; APNs allows at most 4096", status: nil))
        }
        var refused: String?
        for _ in 0..<2 {
            let jwt: String
            do {
                jwt = try providerToken(credentials, replacing: refused)
            } catch {
                return TokenOutcome(outcome: .configError(reason: "the APNs key cannot sign a provider token: \(error)"))
            }
            let request = OutboundRequest(url: url, method: "POST", headers: headers + [("authorization", "bearer \(jwt)")], body: body)
            let response: OutboundResponse
            switch await transport.send(request, provider: .apns, workspaceID: recipient.workspaceID) {
            case .success(let value): response = value
            case .failure(let outcome): return outcome
            }
            let answer = (try? JSONValue.parse(response.body)) ?? .null
            let reason = answer["reason"]?.stringValue ?? ""
            if response.statusCode == 403, reason == "ExpiredProviderToken", refused == nil {
                refused = jwt
                continue
            }
            return Self.outcome(response, reason: reason, timestamp: answer["timestamp"], now: transport.clock.now())
        }
        return TokenOutcome(outcome: .configError(reason: "APNs refused a freshly minted provider token as expired (ExpiredProviderToken): is the server clock right?"))
    }

    /// Apple's answer mapped as in channels.md §1.5.
    static func outcome(_ response: OutboundResponse, reason: String, timestamp: JSONValue?, now: Date) -> TokenOutcome {
        let status = response.statusCode
        let detail = reason.isEmpty ? "HTTP \(status)" : "\(status) \(reason)"
        switch status {
        case 200: return TokenOutcome(outcome: .accepted(detail: "ios"))
        case 410:
            var since: Int64?
            if case .int(let millis)? = timestamp { since = millis }
            return TokenOutcome(outcome: .invalidAddress(reason: "APNs: \(detail)"), invalidSince: since)
        case 400 where ["BadDeviceToken", "DeviceTokenNotForTopic"].contains(reason):
            return TokenOutcome(outcome: .invalidAddress(reason: "APNs: \(detail)"))
        case 400 where ["BadTopic", "TopicDisallowed"].contains(reason):
            return TokenOutcome(outcome: .configError(reason: "APNs: \(detail) (check the bundle_id)"))
        case 400 where reason == "IdleTimeout":
            return TokenOutcome(outcome: .retryable(reason: "APNs: \(detail)", after: nil, status: status))
        case 403:
            return TokenOutcome(outcome: .configError(reason: "APNs: \(detail) (check team_id, key_id, the key and the environment)"))
        case 429 where reason == "TooManyProviderTokenUpdates":
            return TokenOutcome(outcome: .configError(reason: "APNs: \(detail)"))
        case 429, 500...:
            return TokenOutcome(outcome: .retryable(reason: "APNs: \(detail)", after: PushTransport.retryAfter(response, now: now), status: status))
        default:
            return TokenOutcome(outcome: .rejected(reason: "APNs: \(detail)", status: status))
        }
    }
}

/// FCM HTTP v1 with OAuth 2.0 access tokens from the service account's `token_uri` (an RS256
/// assertion), cached until five minutes before they expire and refreshed once on a 401.
final class FCMClient: Sendable {
    let transport: PushTransport
    private let bases = BaseURLs()
    private let accessTokens = Mutex<(
        tokens: [String: (token: String, expiresAt: Int64)], fetching: [String: Task<Result<String, TokenOutcome>, Never>]
    )>(([:], [:]))

    init(transport: PushTransport) {
        self.transport = transport
    }

    /// A cached access token, or a new one from the token endpoint; concurrent sends that find no
    /// usable token wait for one request to the endpoint instead of each making their own.
    func accessToken(_ credentials: FCMCredentials, workspaceID: Int64, replacing refused: String? = nil) async -> Result<String, TokenOutcome> {
        let key = "\(credentials.clientEmail)|\(credentials.tokenURI)"
        let now = transport.nowSeconds
        enum Step { case cached(String), wait(Task<Result<String, TokenOutcome>, Never>) }
        let step = accessTokens.withLock { state -> Step in
            if let cached = state.tokens[key], cached.expiresAt - 300 > now, cached.token != refused { return .cached(cached.token) }
            if let running = state.fetching[key] { return .wait(running) }
            let task = Task { [self] in
                let result = await requestAccessToken(credentials, workspaceID: workspaceID, now: now)
                accessTokens.withLock { state in
                    state.fetching[key] = nil
                    if case .success(let token) = result { state.tokens[key] = token }
                }
                return result.map(\.token)
            }
            state.fetching[key] = task
            return .wait(task)
        }
        switch step {
        case .cached(let token): return .success(token)
        case .wait(let fetch): return await fetch.value
        }
    }

    /// One request to the token endpoint with a freshly signed assertion.
    private func requestAccessToken(_ credentials: FCMCredentials, workspaceID: Int64, now: Int64) async -> Result<(token: String, expiresAt: Int64), TokenOutcome> {
        var header: [String: JSONValue] = ["alg": .string("RS256"), "typ": .string("JWT")]
        if let id = credentials.privateKeyID { header["kid"] = .string(id) }
        let assertion: String
        do {
            assertion = try JSONWebToken.signRS256(
                headerJSON: JSONValue.object(header).serialized(),
                claimsJSON: JSONValue.object([
                    "iss": .string(credentials.clientEmail), "scope": .string("https://www.googleapis.com/auth/firebase.messaging"),
                    "aud": .string(credentials.tokenURI), "iat": .int(now), "exp": .int(now + 3_600),
                ]).serialized(),
                key: try credentials.signingKey())
        } catch {
            return .failure(TokenOutcome(outcome: .configError(reason: "the service account key cannot sign an assertion: \(error)")))
        }
        let url: OutboundURL
        do {
            url = try OutboundURL(credentials.tokenURI)
        } catch {
            return .failure(TokenOutcome(outcome: .configError(reason: "the service account's token_uri is not usable: \(error.reason)")))
        }
        let body = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=" + assertion
        let request = OutboundRequest(url: url, method: "POST", headers: [("Content-Type", "application/x-www-form-urlencoded")], body: body)
        let response: OutboundResponse
        switch await transport.send(request, provider: .fcm, workspaceID: workspaceID) {
        case .success(let value): response = value
        case .failure(let outcome): return .failure(outcome)
        }
        let answer = (try? JSONValue.parse(response.body)) ?? .null
        guard response.statusCode == 200, let token = answer["access_token"]?.stringValue, !token.isEmpty else {
            let detail = answer["error_description"]?.stringValue ?? answer["error"]?.stringValue ?? "HTTP \(response.statusCode)"
            if response.statusCode == 429 || response.statusCode >= 500 {
                return .failure(TokenOutcome(outcome: .retryable(
                    reason: "the OAuth token endpoint answered \(response.statusCode)", after: PushTransport.retryAfter(response, now: transport.clock.now()),
                    status: response.statusCode)))
            }
            return .failure(TokenOutcome(outcome: .configError(reason: "the OAuth token endpoint refused the service account: \(detail)")))
        }
        let lifetime: Int64
        if case .int(let seconds)? = answer["expires_in"] { lifetime = seconds } else { lifetime = 3_600 }
        return .success((token, now + lifetime))
    }

    func send(_ rendered: JSONValue, to device: PushDeviceToken, credentials: FCMCredentials, recipient: Recipient) async -> TokenOutcome {
        let url: OutboundURL
        do {
            url = try bases.url(credentials.baseURL, path: "/v1/projects/" + credentials.projectID + "/messages:send")
        } catch {
            return TokenOutcome(outcome: .configError(reason: "the FCM endpoint is not usable: \(error.reason)"))
        }
        let body = FCMRequest.body(rendered, token: device.token, deliveryID: PushDeliveryID.make(messageID: recipient.messageID, token: device.token))
        var refused: String?
        for _ in 0..<2 {
            let token: String
            switch await accessToken(credentials, workspaceID: recipient.workspaceID, replacing: refused) {
            case .success(let value): token = value
            case .failure(let outcome): return outcome
            }
            let request = OutboundRequest(
                url: url, method: "POST", headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")], body: body)
            let response: OutboundResponse
            switch await transport.send(request, provider: .fcm, workspaceID: recipient.workspaceID) {
            case .success(let value): response = value
            case .failure(let outcome): return outcome
            }
            let answer = (try? JSONValue.parse(response.body)) ?? .null
            let error = answer["error"]
            let code = error?["details"]?.arrayValue?.first { $0["@type"]?.stringValue?.hasSuffix("FcmError") == true }?["errorCode"]?.stringValue
            if response.statusCode == 401, code == nil, refused == nil {
                refused = token
                continue
            }
            return Self.outcome(response, code: code ?? error?["status"]?.stringValue, message: error?["message"]?.stringValue, now: transport.clock.now())
        }
        return TokenOutcome(outcome: .configError(reason: "FCM refused a fresh access token (401 UNAUTHENTICATED)"))
    }

    /// FCM's answer mapped as in channels.md §2.3.
    static func outcome(_ response: OutboundResponse, code: String?, message: String?, now: Date) -> TokenOutcome {
        let status = response.statusCode
        let detail = "FCM: \(status) \(code ?? "")\(message.map { " (\($0.prefix(200)))" } ?? "")"
        if status == 200 { return TokenOutcome(outcome: .accepted(detail: "android")) }
        switch code {
        case "UNREGISTERED"?, "SENDER_ID_MISMATCH"?: return TokenOutcome(outcome: .invalidAddress(reason: detail))
        case "INVALID_ARGUMENT"? where message?.lowercased().contains("registration token") == true:
            return TokenOutcome(outcome: .invalidAddress(reason: detail))
        case "THIRD_PARTY_AUTH_ERROR"?, "PERMISSION_DENIED"?, "UNAUTHENTICATED"?: return TokenOutcome(outcome: .configError(reason: detail))
        case "QUOTA_EXCEEDED"?, "UNAVAILABLE"?, "INTERNAL"?, "UNSPECIFIED_ERROR"?:
            return TokenOutcome(outcome: .retryable(reason: detail, after: PushTransport.retryAfter(response, now: now) ?? (code == "QUOTA_EXCEEDED" ? 60 : nil), status: status))
        default:
            if status == 404 { return TokenOutcome(outcome: .invalidAddress(reason: detail)) }
            if status == 429 || status >= 500 {
                return TokenOutcome(outcome: .retryable(reason: detail, after: PushTransport.retryAfter(response, now: now), status: status))
            }
            if status == 401 || status == 403 { return TokenOutcome(outcome: .configError(reason: detail)) }
            return TokenOutcome(outcome: .rejected(reason: detail, status: status))
        }
    }
}

/// Web Push (RFC 8030) with `aes128gcm` payload encryption (RFC 8291) and VAPID (RFC 8292): one
/// VAPID token per push-service origin, valid 12 hours, reused until an hour before it expires.
struct WebPushClient: Sendable {
    static let tokenLifetimeSeconds: Int64 = 12 * 3_600
    let transport: PushTransport
    let tokens = CachedToken()

    func send(_ rendered: JSONValue, to device: PushDeviceToken, credentials: WebPushCredentials, recipient: Recipient) async -> TokenOutcome {
        guard let subject = credentials.subject else {
            return TokenOutcome(outcome: .configError(reason: "Web Push has no VAPID subject (PUT /beckon/v1/push/web {\"subject\": \"mailto:…\"})"))
        }
        guard let endpoint = URLComponents(string: device.token), endpoint.scheme == "https", let host = endpoint.host, !host.isEmpty,
            let url = try? OutboundURL(device.token)
        else {
            return TokenOutcome(outcome: .invalidAddress(reason: "the Web Push subscription endpoint is not an https URL"))
        }
        guard let p256dh = device.webPushKeys["p256dh"].flatMap(Base64URL.decode), let auth = device.webPushKeys["auth"].flatMap(Base64URL.decode) else {
            return TokenOutcome(outcome: .invalidAddress(reason: "the Web Push subscription has no usable p256dh and auth keys"))
        }
        let origin = "https://\(host)\(endpoint.port.map { ":\($0)" } ?? "")"
        let body: [UInt8]
        do {
            body = try WebPushEncryption.encrypt(
                WebPushRequest.plaintext(rendered, deliveryID: PushDeliveryID.make(messageID: recipient.messageID, token: device.token)),
                userAgentPublicKey: p256dh, authSecret: auth)
        } catch {
            return TokenOutcome(outcome: .invalidAddress(reason: "the Web Push subscription keys are not usable: \(error)"))
        }
        let now = transport.nowSeconds
        let jwt: String
        do {
            jwt = try tokens.token(for: origin, now: now, maxAge: Self.tokenLifetimeSeconds - 3_600) {
                try JSONWebToken.signES256(
                    headerJSON: JSONValue.object(["typ": .string("JWT"), "alg": .string("ES256")]).serialized(),
                    claimsJSON: JSONValue.object([
                        "aud": .string(origin), "exp": .int(now + Self.tokenLifetimeSeconds), "sub": .string(subject),
                    ]).serialized(),
                    key: try credentials.signingKey())
            }
        } catch {
            return TokenOutcome(outcome: .configError(reason: "the VAPID key cannot sign: \(error)"))
        }
        var headers: [(String, String)] = (rendered["headers"]?.objectValue ?? [:]).sorted { $0.key < $1.key }.compactMap { key, value in
            value.stringValue.map { (key, $0) }
        }
        headers += [
            ("Authorization", "vapid t=\(jwt), k=\(credentials.publicKey)"), ("Content-Encoding", "aes128gcm"),
            ("Content-Type", "application/octet-stream"),
        ]
        switch await transport.send(OutboundRequest(url: url, method: "POST", headers: headers, bytes: body), provider: .web, workspaceID: recipient.workspaceID) {
        case .success(let response): return Self.outcome(response, now: transport.clock.now())
        case .failure(let outcome): return outcome
        }
    }

    /// The push service's answer mapped as in channels.md §3.5.
    static func outcome(_ response: OutboundResponse, now: Date) -> TokenOutcome {
        let status = response.statusCode
        let excerpt = String(decoding: response.body.prefix(200), as: UTF8.self)
        let detail = "Web Push: HTTP \(status)\(excerpt.isEmpty ? "" : " \(excerpt)")"
        switch status {
        case 200..<300: return TokenOutcome(outcome: .accepted(detail: "web"))
        case 404, 410: return TokenOutcome(outcome: .invalidAddress(reason: detail))
        case 403: return TokenOutcome(outcome: .invalidAddress(reason: "\(detail) (the subscription was made with another VAPID key)"))
        case 401: return TokenOutcome(outcome: .configError(reason: detail))
        case 429, 500...: return TokenOutcome(outcome: .retryable(reason: detail, after: PushTransport.retryAfter(response, now: now), status: status))
        default: return TokenOutcome(outcome: .rejected(reason: detail, status: status))
        }
    }
}
