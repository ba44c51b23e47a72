import Crypto
import Foundation
import Hummingbird
import HummingbirdHTTP2
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import SwiftASN1
import X509

/// A certificate authority made in the test, and server certificates it signs (for loopback TLS servers that
/// Beckon trusts through --extra-ca-file).
public struct TestCertificateAuthority: Sendable {
    private let key: Certificate.PrivateKey
    private let certificate: Certificate
    private let name: DistinguishedName
    /// The CA certificate as PEM (what goes into the extra CA file).
    public let certificatePEM: String

    /// A fresh P-256 key and a self-signed CA certificate for it, valid from an hour ago to a day from now.
    public init() throws {
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let name = try DistinguishedName {
            OrganizationName("Beckon tests")
            CommonName("Beckon Test CA")
        }
        let now = Date()
        self.key = key
        self.name = name
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: key.publicKey,
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(86400),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: key.publicKey)
            },
            issuerPrivateKey: key)
        self.certificate = certificate
        self.certificatePEM = try certificate.serializeAsPEM().pemString
    }

    /// A leaf certificate for `127.0.0.1` (IP SAN) and `localhost` (DNS SAN), signed by this CA, with its private key,
    /// as NIOSSL TLS server configuration offering ALPN `h2` (and `http/1.1` when `http1` is true).
    public func serverTLSConfiguration(http1: Bool = false) throws -> TLSConfiguration {
        let leafKey = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let now = Date()
        let leaf = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: leafKey.publicKey,
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(86400),
            issuer: name,
            subject: try DistinguishedName { CommonName("127.0.0.1") },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectKeyIdentifier(hash: leafKey.publicKey)
                AuthorityKeyIdentifier(keyIdentifier: SubjectKeyIdentifier(hash: key.publicKey).keyIdentifier)
                SubjectAlternativeNames([.dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))])
            },
            issuerPrivateKey: key)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [
                .certificate(try NIOSSLCertificate(bytes: Array(try leaf.serializeAsPEM().pemString.utf8), format: .pem))
            ],
            privateKey: .privateKey(
                try NIOSSLPrivateKey(bytes: Array(try leafKey.serializeAsPEM().pemString.utf8), format: .pem)))
        configuration.applicationProtocols = http1 ? ["h2", "http/1.1"] : ["h2"]
        return configuration
    }

    /// Writes certificatePEM to a temporary file and returns its path.
    public func writeCertificateFile() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("beckon-test-ca-\(UUID().uuidString).pem")
        try certificatePEM.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }
}

/// An HTTP/2-over-TLS Hummingbird server on 127.0.0.1 with a free port, for provider stand-ins (APNs, FCM, Web Push):
/// `try await LocalTLSServer.run(router, authority: ca) { port in … }`.
///
/// Hummingbird 2.28's HTTP/2 channel offers ALPN `h2` and `http/1.1` (an HTTP/1.1-only client is still served) and
/// announces NIO's default SETTINGS_MAX_CONCURRENT_STREAMS of 100, which it does not let the caller change.
public enum LocalTLSServer {
    /// Starts `router` with HTTP/2 over TLS (certificate from `authority`), runs `body` with the port, then stops the server.
    public static func run<Context: RequestContext, T: Sendable>(
        _ router: Router<Context>, authority: TestCertificateAuthority, _ body: (_ port: Int) async throws -> T
    ) async throws -> T where Context.Source == ApplicationRequestContextSource {
        let logger = Logger(label: "local-tls-server")
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router,
            server: try .http2Upgrade(tlsConfiguration: authority.serverTLSConfiguration()),
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "local-tls-test"),
            onServerRunning: { channel in
                portContinuation.yield(channel.localAddress?.port ?? 0)
                portContinuation.finish()
            },
            logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let running = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            await group.triggerGracefulShutdown()
            try await running.value
            throw LocalTLSServerError()
        }
        do {
            let result = try await body(port)
            await group.triggerGracefulShutdown()
            try await running.value
            return result
        } catch {
            await group.triggerGracefulShutdown()
            try? await running.value
            throw error
        }
    }

    /// Whether a request arrived over HTTP/2, given the channel Hummingbird handed its context
    /// (`ApplicationRequestContextSource.channel`; keep it in a custom context's `init(source:)`). `Request` has no HTTP
    /// version, but an HTTP/2 request's channel is a stream whose parent is the TLS connection; an HTTP/1 request's is
    /// the connection itself, whose parent is the listener.
    public static func isHTTP2(_ channel: any Channel) -> Bool {
        channel.parent?.parent != nil
    }
}

/// The local TLS server did not start listening.
public struct LocalTLSServerError: Error, CustomStringConvertible {
    public var description: String { "the local TLS server did not start" }
}
