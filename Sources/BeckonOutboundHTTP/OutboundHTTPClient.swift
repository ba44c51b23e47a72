import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOSSL

/// An outbound request ready to send: URL encoded and checked, headers final.
public struct OutboundRequest: Sendable {
    public let url: OutboundURL
    public let method: String
    public let headers: [(String, String)]
    public let body: [UInt8]?

    public init(url: OutboundURL, method: String, headers: [(String, String)], body: String?) {
        self.url = url
        self.method = method
        self.headers = headers
        self.body = body.map { Array($0.utf8) }
    }

    /// A request with a binary body (Web Push's encrypted payload).
    public init(url: OutboundURL, method: String, headers: [(String, String)], bytes: [UInt8]) {
        self.url = url
        self.method = method
        self.headers = headers
        self.body = bytes
    }
}

/// What a destination answered (any status: callers decide what a status means).
public struct OutboundResponse: Sendable {
    public let statusCode: Int
    public let body: [UInt8]
    public let contentType: String?
    /// The `Retry-After` header, as sent.
    public let retryAfter: String?
}

/// CA certificates trusted beside the system roots (`--extra-ca-file`: a corporate proxy's CA,
/// or a local test server's).
public struct ExtraTrustRoots: Sendable {
    let certificates: [NIOSSLCertificate]

    public static let none = ExtraTrustRoots(certificates: [])

    /// A TLS client configuration trusting the system roots plus these certificates (SMTP and other non-HTTP clients).
    public func clientTLSConfiguration() throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if !certificates.isEmpty { tls.additionalTrustRoots = [.certificates(certificates)] }
        return tls
    }

    private init(certificates: [NIOSSLCertificate]) {
        self.certificates = certificates
    }

    /// Reads the PEM certificates of a file, naming the file on failure.
    public init(pemFile path: String) throws(OutboundFailure) {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw OutboundFailure("cannot read the CA certificates in \(path): \(error)", kind: .invalidRequest)
        }
        guard !certificates.isEmpty else { throw OutboundFailure("\(path) holds no PEM certificate", kind: .invalidRequest) }
        self.certificates = certificates
    }
}

/// The one HTTP client Beckon calls the outside world with (Connected Content, webhooks, later
/// push and exports): pooled keep-alive connections, no redirects, a response size cap, and the
/// `NetworkPolicy` checked on every destination and again on every new connection's real peer.
public final class OutboundHTTPClient: Sendable {
    public let policy: NetworkPolicy
    private let client: HTTPClient

    /// - Parameters:
    ///   - connectionsPerHost: keep-alive HTTP/1.1 connections kept per destination (HTTP/2
    ///     destinations, such as APNs, multiplex their requests on one connection).
    ///   - extraTrustRoots: PEM certificates trusted beside the system roots (`--extra-ca-file`:
    ///     a corporate proxy's CA, or a local test server's).
    public init(serverAllowlist: HostAllowlist, connectionsPerHost: Int = 32, extraTrustRoots: ExtraTrustRoots = .none) {
        let policy = NetworkPolicy(serverAllowlist: serverAllowlist)
        self.policy = policy
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5)), decompression: .disabled)
        if !extraTrustRoots.certificates.isEmpty {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.additionalTrustRoots = [.certificates(extraTrustRoots.certificates)]
            configuration.tlsConfiguration = tls
        }
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = connectionsPerHost
        configuration.http1_1ConnectionDebugInitializer = { policy.guardConnection($0) }
        configuration.http2ConnectionDebugInitializer = { policy.guardConnection($0) }
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    /// Closes the connections; call once when nothing uses the client any more.
    public func shutdown() async throws {
        try await client.shutdown()
    }

    /// Checks the destination against the policy, then sends. Throws `.blocked` for a refused
    /// destination, `.timeout`, `.tooLarge` or `.network`; any HTTP status is returned.
    public func send(
        _ request: OutboundRequest, workspaceAllowlist: HostAllowlist, timeoutMilliseconds: Int, maxResponseBytes: Int = 1024 * 1024
    ) async throws(OutboundFailure) -> OutboundResponse {
        try await policy.authorize(host: request.url.host, port: request.url.port, workspaceAllowlist: workspaceAllowlist)
        return try await perform(request, timeoutMilliseconds: timeoutMilliseconds, maxResponseBytes: maxResponseBytes)
    }

    /// Sends a request whose destination already passed `policy.authorize` (new connections are
    /// still checked against the policy).
    public func perform(
        _ request: OutboundRequest, timeoutMilliseconds: Int, maxResponseBytes: Int = 1024 * 1024
    ) async throws(OutboundFailure) -> OutboundResponse {
        var outgoing = HTTPClientRequest(url: request.url.text)
        outgoing.method = HTTPMethod(rawValue: request.method)
        for (name, value) in request.headers { outgoing.headers.add(name: name, value: value) }
        if let body = request.body { outgoing.body = .bytes(ByteBuffer(bytes: body)) }
        do {
            let response = try await client.execute(outgoing, deadline: .now() + .milliseconds(Int64(timeoutMilliseconds)))
            if let length = response.headers.first(name: "content-length").flatMap(Int.init), length > maxResponseBytes {
                throw OutboundFailure(
                    "the response is \(length) bytes, over the \(maxResponseBytes)-byte limit", kind: .tooLarge, status: Int(response.status.code))
            }
            let body = try await response.body.collect(upTo: maxResponseBytes)
            return OutboundResponse(
                statusCode: Int(response.status.code), body: Array(buffer: body), contentType: response.headers.first(name: "content-type"),
                retryAfter: response.headers.first(name: "retry-after"))
        } catch let failure as OutboundFailure {
            throw failure
        } catch is NIOTooManyBytesError {
            throw OutboundFailure("the response is larger than the \(maxResponseBytes)-byte limit; reading stopped", kind: .tooLarge)
        } catch let error as HTTPClientError where [.deadlineExceeded, .readTimeout, .connectTimeout].contains(error) {
            throw OutboundFailure("no complete response within \(timeoutMilliseconds) ms", kind: .timeout)
        } catch {
            throw OutboundFailure("the request failed: \(error)", kind: .network)
        }
    }
}
