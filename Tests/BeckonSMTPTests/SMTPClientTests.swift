import BeckonChannels
import BeckonCore
import BeckonOutboundHTTP
import BeckonSMTP
import BeckonTestSupport
import Crypto
import Foundation
import Testing

/// The aiosmtpd server of `scripts/test-support/smtp_sink.py` in its own process: STARTTLS with a
/// certificate from the test CA, AUTH required after TLS.
final class SMTPSink: @unchecked Sendable {
    let process = Process()
    let port: Int
    let output: URL
    static let user = "beckon"
    static let password = "smtp-secret-1"

    init(authority: TestCertificateAuthority) throws {
        let environment = ProcessInfo.processInfo.environment
        guard let python = environment["BECKON_TEST_PYTHON"], let support = environment["BECKON_TEST_SUPPORT"] else {
            throw SinkError("BECKON_TEST_PYTHON and BECKON_TEST_SUPPORT are not set: run the tests with scripts/test (it makes the venv with aiosmtpd)")
        }
        let (certificate, key) = try authority.writeServerCertificateFiles()
        output = FileManager.default.temporaryDirectory.appendingPathComponent("beckon-smtp-\(UUID().uuidString).jsonl")
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [support + "/smtp_sink.py", certificate, key, output.path, Self.user, Self.password]
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = FileHandle.standardError
        try process.run()
        var line = ""
        while !line.hasSuffix("\n") {
            let byte = stdout.fileHandleForReading.readData(ofLength: 1)
            guard !byte.isEmpty else { throw SinkError("smtp_sink.py exited before listening") }
            line += String(decoding: byte, as: UTF8.self)
        }
        guard line.hasPrefix("port "), let port = Int(line.dropFirst(5).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw SinkError("smtp_sink.py said '\(line)'")
        }
        self.port = port
    }

    /// Accepted messages: envelope, raw content, whether TLS and AUTH were in place.
    var received: [JSONValue] {
        guard let text = try? String(contentsOf: output, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONValue.parse(Array($0.utf8)) }
    }

    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: output)
    }

    struct SinkError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}

@Suite("SMTP client against a real SMTP server (aiosmtpd, STARTTLS, AUTH)", .serialized)
struct SMTPClientTests {
    static let authority = try! TestCertificateAuthority()
    static let dkimKey = Curve25519.Signing.PrivateKey()

    static func server(port: Int, password: String = SMTPSink.password) -> SMTPServer {
        SMTPServer(host: "127.0.0.1", port: port, security: .starttls, username: SMTPSink.user, password: password)
    }

    static func trust() throws -> ExtraTrustRoots {
        try ExtraTrustRoots(pemFile: try authority.writeCertificateFile())
    }

    static func message(to recipient: String, subject: String) throws -> String {
        let mime = MIMEMessage(
            headers: [
                ("From", try EmailHeader.mailbox(name: "비컨", address: try EmailAddress.parse("news@mail.example.com", field: "from"))),
                ("To", recipient), ("Subject", try EmailHeader.encode(subject, field: "subject")),
                ("Date", EmailHeader.date(Date(timeIntervalSince1970: 1_795_000_000), zone: TimeZone(identifier: "Asia/Seoul")!)),
                ("Message-ID", "<\(UUID().uuidString)@mail.example.com>"),
            ],
            plainText: "안녕하세요\n.dot line\n", html: "<p>안녕하세요</p>")
        let (headers, body) = mime.parts
        let signature = try DKIMSigner(domain: "mail.example.com", selector: "bked", key: .ed25519(dkimKey))
            .signature(headers: headers, body: body, time: Date(timeIntervalSince1970: 1_795_000_000))
        return mime.serialized(prepending: [signature])
    }

    @Test("STARTTLS, AUTH, two messages on one connection, a 550 and a 451 on RCPT, a wrong password; what arrived is DKIM-valid and exact")
    func session() async throws {
        let sink = try SMTPSink(authority: Self.authority)
        defer { sink.stop() }
        let connection = try await SMTPConnection.open(Self.server(port: sink.port), heloName: "beckon.test", trustRoots: try Self.trust())
        let first = try Self.message(to: "kim@example.kr", subject: "(광고) 11월 특가 안내")
        let accepted = try await connection.send(from: "bounce+msg_1@bounce.example.com", to: "kim@example.kr", message: first)
        #expect(accepted.code == 250)
        try await connection.reset()
        _ = try await connection.send(from: "bounce+msg_2@bounce.example.com", to: "lee@example.kr", message: try Self.message(to: "lee@example.kr", subject: "두 번째"))
        try await connection.reset()
        do {
            _ = try await connection.send(from: "bounce+msg_3@bounce.example.com", to: "bounce@example.kr", message: first)
            Issue.record("a 550 on RCPT was taken")
        } catch let error as SMTPError {
            #expect(error.step == .rcpt && error.reply?.code == 550, "\(error)")
        }
        try await connection.reset()
        do {
            _ = try await connection.send(from: "bounce+msg_4@bounce.example.com", to: "later@example.kr", message: first)
            Issue.record("a 451 on RCPT was taken")
        } catch let error as SMTPError {
            #expect(error.step == .rcpt && error.reply?.isTransient == true, "\(error)")
        }
        try await connection.reset()
        _ = try await connection.send(from: "bounce+msg_4@bounce.example.com", to: "later@example.kr", message: first)
        await connection.close()

        let received = sink.received
        #expect(received.count == 3, "\(received)")
        #expect(received.allSatisfy { $0["tls"] == .bool(true) && $0["auth"] == .bool(true) }, "sent only after STARTTLS and AUTH")
        #expect(received.first?["from"] == .string("bounce+msg_1@bounce.example.com") && received.first?["to"] == .array([.string("kim@example.kr")]))
        let raw = try #require(received.first?["data"]?.stringValue.flatMap { Data(base64Encoded: $0) })
        let content = String(decoding: raw, as: UTF8.self)
        #expect(content.replacingOccurrences(of: "\r\n", with: "\n") == first.replacingOccurrences(of: "\r\n", with: "\n"), "dot-stuffing undone by the server: the message arrived exactly")
        let checked = try EmailVerifier.verify(content, records: ["bked._domainkey.mail.example.com": DKIMKey.ed25519(Self.dkimKey).dnsRecord])
        #expect(checked["dkim"] == .array([.bool(true)]) && checked["subject"] == .string("(광고) 11월 특가 안내"), "\(checked)")

        do {
            _ = try await SMTPConnection.open(Self.server(port: sink.port, password: "wrong"), heloName: "beckon.test", trustRoots: try Self.trust())
            Issue.record("a wrong password was accepted")
        } catch let error as SMTPError {
            #expect(error.step == .auth && error.reply?.code == 535, "\(error)")
        }
        do {
            _ = try await SMTPConnection.open(Self.server(port: sink.port), heloName: "beckon.test", trustRoots: .none, timeoutSeconds: 5)
            Issue.record("a certificate from an untrusted CA was accepted")
        } catch let error as SMTPError {
            #expect(error.step == .ehlo || error.step == .data || error.step == .starttls, "\(error)")
        }
    }
}
