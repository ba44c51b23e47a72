import BeckonCore
import BeckonOutboundHTTP
import BeckonStorage
import Crypto
import Foundation
import Liquid
import Logging
import Synchronization

/// Server-wide Connected Content settings, fixed at start.
public struct ConnectedContentConfiguration: Sendable {
    /// Hosts every workspace may call (`--allow-host`, `BECKON_ALLOW_HOSTS`, Beckon's own URL).
    public var allowedHosts = HostAllowlist()
    /// Memory the response cache may hold.
    public var cacheCapacityBytes = 64 * 1024 * 1024
    /// Largest response body read; reading stops beyond it and the call fails.
    public var maxResponseBytes = 1024 * 1024
    /// Attempts for a call written with `:retry` (Braze: 5).
    public var maxAttempts = 5
    /// The wait before the second attempt; it doubles for each further attempt.
    public var retryBaseDelay: Duration = .milliseconds(250)
    /// Settings for workspaces that saved none, and for the CLI.
    public var defaultSettings = ConnectedContentSettings()
    /// CA certificates the outbound client trusts beside the system roots (`--extra-ca-file`).
    public var extraTrustRoots = ExtraTrustRoots.none

    public init() {}
}

/// The render a call belongs to, recorded beside every failure in the activity log.
public struct ConnectedContentContext: Sendable, Hashable {
    public var workspaceID: Int64
    public var campaignID: String?
    public var variant: String?
    public var externalID: String?
    public var channel: String?

    public init(workspaceID: Int64, campaignID: String? = nil, variant: String? = nil, externalID: String? = nil, channel: String? = nil) {
        self.workspaceID = workspaceID
        self.campaignID = campaignID
        self.variant = variant
        self.externalID = externalID
        self.channel = channel
    }
}

/// Counters since start, for `/metrics`, benchmarks and tests.
public struct ConnectedContentStatistics: Sendable, Hashable {
    public var calls = 0
    public var cacheHits = 0
    /// Calls that waited for an identical call already in flight instead of making their own.
    public var coalesced = 0
    /// HTTP requests sent (each attempt counts).
    public var requests = 0
    public var failures = 0
    public var rateLimited = 0
}

/// Makes `{% connected_content %}` calls for every workspace: renders of one URL share a cached
/// response and a single in-flight request; each destination is paced; destinations must pass
/// the `NetworkPolicy`; `:basic_auth` names a stored credential; failures go to the activity log.
public final class ConnectedContentService: Sendable {
    private let configuration: ConnectedContentConfiguration
    private let clock: any BeckonClock
    private let settingsStore: ConnectedContentSettingsStore?
    private let credentials: ConnectedContentCredentialStore?
    private let activityLog: ActivityLogStore?
    private let logger: Logger
    private let outbound: OutboundHTTPClient
    private let cache: ResponseCache
    private let singleFlight = SingleFlight()
    private let limiter = HostRateLimiter()
    private let settingsCache = Mutex<[Int64: (settings: ConnectedContentSettings, allowlist: HostAllowlist, readAt: ContinuousClock.Instant)]>([:])
    private let counters = Mutex(ConnectedContentStatistics())

    /// - Parameters: stores are optional so the CLI can render without a database: without
    ///   `credentials` every `:basic_auth` call aborts; without `activityLog` failures are only logged.
    ///   `outbound` is the shared HTTP client (one is made from the configuration's allowlist when `nil`).
    public init(
        configuration: ConnectedContentConfiguration, clock: any BeckonClock, settings: ConnectedContentSettingsStore? = nil,
        credentials: ConnectedContentCredentialStore? = nil, activityLog: ActivityLogStore? = nil, outbound: OutboundHTTPClient? = nil,
        logger: Logger
    ) {
        self.configuration = configuration
        self.clock = clock
        self.settingsStore = settings
        self.credentials = credentials
        self.activityLog = activityLog
        self.logger = logger
        self.outbound = outbound ?? OutboundHTTPClient(serverAllowlist: configuration.allowedHosts)
        cache = ResponseCache(capacityBytes: configuration.cacheCapacityBytes)
    }

    /// Closes the HTTP connections; call once when the service is no longer used.
    public func shutdown() async throws {
        try await outbound.shutdown()
    }

    /// The fetcher a render for `context` hands to Liquid.
    public func fetcher(for context: ConnectedContentContext) -> some ConnectedContentFetcher {
        ServiceFetcher(service: self, context: context)
    }

    public var statistics: ConnectedContentStatistics { counters.withLock { $0 } }

    /// Forgets the cached settings of a workspace after they changed.
    public func settingsChanged(workspaceID: Int64) {
        settingsCache.withLock { _ = $0.removeValue(forKey: workspaceID) }
    }

    /// One call as the template wrote it; see `ConnectedContentFetcher`.
    public func fetch(_ request: ConnectedContentRequest, context: ConnectedContentContext) async throws -> ConnectedContentResponse {
        let lifetime = cacheLifetime(request)
        let key = lifetime.map { _ in Self.cacheKey(request, workspaceID: context.workspaceID) }
        if let key, let cached = cache.lookup(key, now: clock.now().timeIntervalSince1970) {
            counters.withLock {
                $0.calls += 1
                $0.cacheHits += 1
            }
            return cached
        }
        counters.withLock { $0.calls += 1 }
        let prepared: OutboundRequest
        do {
            prepared = try await prepare(request, workspaceID: context.workspaceID)
        } catch let failure as OutboundFailure {
            await recordFailure(failure, url: OutboundURL.redacted(request.url), duration: nil, context: context)
            throw failure
        }
        guard let lifetime, let key else {
            return try await send(prepared, retry: request.retry, context: context)
        }
        let (response, joined) = try await singleFlight.run(key) { [self] in
            let response = try await send(prepared, retry: request.retry, context: context)
            if (200..<300).contains(response.statusCode) {
                cache.store(response, key: key, expiresAt: clock.now().timeIntervalSince1970 + lifetime)
            }
            return response
        }
        if joined { counters.withLock { $0.coalesced += 1 } }
        return response
    }

    /// Workspace plus a SHA-256 of everything in the call that changes the answer: method, URL,
    /// every header as written (`Authorization` included, so a caller never gets a response
    /// fetched with another's key), content type, credential name and body. Computed from the
    /// call as rendered, so a cache hit costs no URL parsing.
    static func cacheKey(_ request: ConnectedContentRequest, workspaceID: Int64) -> String {
        var hasher = SHA256()
        func add(_ text: String) {
            var text = text
            text.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
            withUnsafeBytes(of: UInt8(0)) { hasher.update(bufferPointer: $0) }
        }
        add(request.method)
        add(request.url)
        for pair in request.headers where pair.count == 2 {
            add(pair[0].lowercased())
            add(pair[1])
        }
        add(request.contentType ?? "")
        add(request.basicAuthCredential ?? "")
        add(request.body ?? "")
        let digest = hasher.finalize()
        let hex = String(unsafeUninitializedCapacity: 64) { buffer in
            var index = 0
            for byte in digest {
                buffer[index] = hexDigits[Int(byte >> 4)]
                buffer[index + 1] = hexDigits[Int(byte & 0x0F)]
                index += 2
            }
            return 64
        }
        return "cc1:" + String(workspaceID) + ":" + hex
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// The hosts `workspaceID` allowlisted itself (its Connected Content settings), which its
    /// webhooks may call too.
    public func workspaceAllowlist(_ workspaceID: Int64) async throws -> HostAllowlist {
        try await settings(for: workspaceID).1
    }

    /// `url` safe to log: no user-info, secret-looking query values replaced.
    public static func redact(_ url: String) -> String { OutboundURL.redacted(url) }

    /// Braze: GETs are cached 5 minutes by default, `:cache_max_age` between 5 minutes and 4 hours;
    /// `:no_cache` turns it off; POSTs only when `:cache_max_age` is given.
    func cacheLifetime(_ request: ConnectedContentRequest) -> Double? {
        if request.noCache { return nil }
        if request.method == "POST", request.cacheMaxAge == nil { return nil }
        return Double(min(max(request.cacheMaxAge ?? 300, 300), 14_400))
    }

    private func prepare(_ request: ConnectedContentRequest, workspaceID: Int64) async throws -> OutboundRequest {
        let url = try OutboundURL(request.url)
        let isPost = request.method == "POST"
        var headers: [(String, String)] = [
            ("User-Agent", "Braze Sender Beckon"),
            ("Accept", request.contentType ?? "*/*"),
            ("Content-Type", request.contentType ?? (isPost ? "application/x-www-form-urlencoded" : "application/json")),
        ]
        for pair in request.headers where pair.count == 2 {
            let (name, value) = (pair[0], pair[1])
            guard !name.isEmpty, name.utf8.allSatisfy({ Self.tokenBytes.contains($0) }) else {
                throw OutboundFailure("header name '\(name.prefix(60))' is not a valid HTTP header name", kind: .invalidRequest)
            }
            guard !value.contains(where: { $0 == "\r" || $0 == "\n" }) else {
                throw OutboundFailure("the value of header '\(name)' contains a line break", kind: .invalidRequest)
            }
            headers.removeAll { $0.0.caseInsensitiveCompare(name) == .orderedSame }
            headers.append((name, value))
        }
        if let name = request.basicAuthCredential {
            guard let credentials else {
                throw MessageAborted(reason: "connected_content :basic_auth '\(name)': no credential store is configured here")
            }
            guard let credential = try await credentials.credential(workspaceID: workspaceID, name: name) else {
                throw MessageAborted(reason: "connected_content :basic_auth credential '\(name)' does not exist")
            }
            headers.removeAll { $0.0.caseInsensitiveCompare("Authorization") == .orderedSame }
            headers.append(("Authorization", credential.authorizationHeader))
        }
        return OutboundRequest(url: url, method: isPost ? "POST" : "GET", headers: headers, body: isPost ? request.body : nil)
    }

    private static let tokenBytes = Set("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    /// Sends with pacing, policy, timeout and (for `:retry`) bounded exponential backoff.
    private func send(_ request: OutboundRequest, retry: Bool, context: ConnectedContentContext) async throws -> ConnectedContentResponse {
        let (settings, workspaceAllowlist) = try await settings(for: context.workspaceID)
        let attempts = retry ? max(1, configuration.maxAttempts) : 1
        let started = ContinuousClock.now
        var lastFailure = OutboundFailure("not attempted", kind: .network)
        for attempt in 1...attempts {
            if attempt > 1 { try? await Task.sleep(for: configuration.retryBaseDelay * (1 << (attempt - 2))) }
            if let perSecond = settings.rateLimitPerSecond {
                do {
                    try await limiter.acquire(
                        "\(context.workspaceID)|\(request.url.host):\(request.url.port)", perSecond: perSecond,
                        maxWait: .milliseconds(settings.maxWaitMilliseconds))
                } catch {
                    counters.withLock { $0.rateLimited += 1 }
                    let reason = "connected_content rate limit for \(request.url.host) (\(perSecond)/s) gave no slot within \(settings.maxWaitMilliseconds) ms"
                    await record(type: "connected_content_failure", reason: reason, url: request.url.redacted, status: nil, duration: nil, context: context)
                    throw MessageAborted(reason: reason)
                }
            }
            do {
                try await outbound.policy.authorize(host: request.url.host, port: request.url.port, workspaceAllowlist: workspaceAllowlist)
                counters.withLock { $0.requests += 1 }
                let sent = try await outbound.perform(
                    request, timeoutMilliseconds: settings.timeoutMilliseconds, maxResponseBytes: configuration.maxResponseBytes)
                let response = ConnectedContentResponse(statusCode: sent.statusCode, body: sent.body, contentType: sent.contentType)
                if (200..<300).contains(response.statusCode) { return response }
                let failure = OutboundFailure(Self.describe(status: response.statusCode), kind: .httpStatus, status: response.statusCode)
                if failure.isRetryable, attempt < attempts {
                    lastFailure = failure
                    continue
                }
                if retry, failure.isRetryable {
                    return try await abort(after: attempts, failure, request: request, started: started, context: context)
                }
                await recordFailure(failure, url: request.url.redacted, duration: started, context: context)
                return response
            } catch let failure as OutboundFailure {
                lastFailure = failure
                if failure.isRetryable, attempt < attempts { continue }
                if retry, failure.isRetryable {
                    return try await abort(after: attempts, failure, request: request, started: started, context: context)
                }
                await recordFailure(failure, url: request.url.redacted, duration: started, context: context)
                throw failure
            }
        }
        return try await abort(after: attempts, lastFailure, request: request, started: started, context: context)
    }

    private func abort(
        after attempts: Int, _ failure: OutboundFailure, request: OutboundRequest, started: ContinuousClock.Instant,
        context: ConnectedContentContext
    ) async throws -> ConnectedContentResponse {
        let reason = "connected_content \(request.url.redacted) failed after \(attempts) attempts: \(failure.reason)"
        await record(
            type: "connected_content_failure", reason: reason, url: request.url.redacted, status: failure.status,
            duration: Self.milliseconds(since: started), context: context)
        throw MessageAborted(reason: reason)
    }

    private static func describe(status: Int) -> String {
        switch status {
        case 300..<400: return "HTTP \(status) (redirects are not followed)"
        default: return "HTTP \(status)"
        }
    }

    private func settings(for workspaceID: Int64) async throws -> (ConnectedContentSettings, HostAllowlist) {
        let now = ContinuousClock.now
        if let cached = settingsCache.withLock({ $0[workspaceID] }), now - cached.readAt < .seconds(5) {
            return (cached.settings, cached.allowlist)
        }
        let settings = try await settingsStore?.settings(workspaceID: workspaceID) ?? configuration.defaultSettings
        let allowlist = HostAllowlist(entries: settings.allowedHosts.compactMap { try? HostAllowlist.parse($0) })
        settingsCache.withLock { $0[workspaceID] = (settings, allowlist, now) }
        return (settings, allowlist)
    }

    private func recordFailure(
        _ failure: OutboundFailure, url: String, duration started: ContinuousClock.Instant?, context: ConnectedContentContext
    ) async {
        await record(
            type: "connected_content_failure", reason: failure.reason, url: url, status: failure.status,
            duration: started.map { Self.milliseconds(since: $0) }, context: context)
    }

    private func record(type: String, reason: String, url: String, status: Int?, duration: Int?, context: ConnectedContentContext) async {
        counters.withLock { $0.failures += 1 }
        let entry = ActivityLogEntry(
            workspaceID: context.workspaceID, time: BrazeTime.epochMilliseconds(clock.now()), type: type, campaignID: context.campaignID,
            variant: context.variant, externalID: context.externalID, channel: context.channel, url: url, status: status,
            durationMilliseconds: duration, reason: reason)
        guard let activityLog else {
            logger.warning("connected_content failed", metadata: ["url": "\(url)", "reason": "\(reason)"])
            return
        }
        do {
            try await activityLog.record([entry])
        } catch {
            logger.error("cannot write the activity log", metadata: ["error": "\(error)", "reason": "\(reason)"])
        }
    }

    private static func milliseconds(since start: ContinuousClock.Instant) -> Int {
        let elapsed = ContinuousClock.now - start
        return Int(elapsed.components.seconds * 1_000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
    }
}

/// Binds the service to one render's context.
struct ServiceFetcher: ConnectedContentFetcher {
    let service: ConnectedContentService
    let context: ConnectedContentContext

    func fetch(_ request: ConnectedContentRequest) async throws -> ConnectedContentResponse {
        try await service.fetch(request, context: context)
    }
}
