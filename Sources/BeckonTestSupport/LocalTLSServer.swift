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
        self.certificatePEM = try certificate.serializeAsPEM().pemString
    }

    /// A leaf certificate for `127.0.0.1` and `localhost` with its key, as NIOSSL TLS server
    /// configuration offering ALPN `h2` (and `http/1.1` when `http1` is true).
    public func serverTLSConfiguration(http1: Bool = false) throws -> TLSConfiguration {
        let (certificatePEM, keyPEM) = try serverCertificatePEM()
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: Array(certificatePEM.utf8), format: .pem))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)))
        configuration.applicationProtocols = http1 ? ["h2", "http/1.1"] : ["h2"]
        return configuration
    }

    /// A leaf certificate and key for a server in another process (PEM files in the temporary folder).
    public func writeServerCertificateFiles() throws -> (certificate: String, key: String) {
        let (certificatePEM, keyPEM) = try serverCertificatePEM()
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("beckon-test-server-\(UUID().uuidString)")
        try certificatePEM.write(to: base.appendingPathExtension("crt"), atomically: true, encoding: .utf8)
        try keyPEM.write(to: base.appendingPathExtension("key"), atomically: true, encoding: .utf8)
        return (base.appendingPathExtension("crt").path, base.appendingPathExtension("key").path)
    }

    /// A leaf certificate for `127.0.0.1` (IP SAN) and `localhost` (DNS SAN), signed by this CA, and its private key, as PEM.
    private func serverCertificatePEM() throws -> (certificate: String, key: String) {
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
        return (try leaf.serializeAsPEM().pemString, try leafKey.serializeAsPEM().pemString)
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
/// Hummingbird 2.28's `.http2Upgrade` always offers ALPN `h2` and `http/1.1` (it overwrites the configuration's
/// protocols, so an HTTP/1.1-only client is still served) and announces NIO's default SETTINGS_MAX_CONCURRENT_STREAMS
/// of 100, which it gives no way to change.
public enum LocalTLSServer {
    /// Starts `router` with HTTP/2 over TLS (certificate from `authority`), runs `body` with the port, then stops the server.
    public static func run<Context: RequestContext, T: Sendable>(
        _ router: Router<Context>, authority: TestCertificateAuthority, _ body: (_ port: Int) async throws -> T
    ) async throws -> T where Context.Source == ApplicationRequestContextSource {
        let logger = Logger(label: "local-tls-server")
        let configuration = try authority.serverTLSConfiguration()
        return try await LocalHTTPServer.serve(logger: logger, body) { onRunning in
            try Application(
                router: router, server: .http2Upgrade(tlsConfiguration: configuration),
                configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "local-tls-test"),
                onServerRunning: onRunning, logger: logger)
        }
    }
}
