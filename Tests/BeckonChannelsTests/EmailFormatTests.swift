import BeckonChannels
import BeckonCore
import BeckonTestSupport
import Crypto
import Foundation
import Testing
import _CryptoExtras

@Suite("Email format: RFC 2047 headers, MIME, DKIM (checked by dkimpy and Python's email package)")
struct EmailFormatTests {
    static let rsa = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    static let ed = Curve25519.Signing.PrivateKey()

    func message(subject: String) throws -> MIMEMessage {
        let from = try EmailHeader.mailbox(name: "비컨 쇼핑", address: try EmailAddress.parse("news@mail.example.com", field: "from_address"))
        return MIMEMessage(
            headers: [
                ("From", from), ("To", "kim@example.kr"), ("Subject", try EmailHeader.encode(subject, field: "subject")),
                ("Date", EmailHeader.date(Date(timeIntervalSince1970: 1_795_000_000), zone: TimeZone(identifier: "Asia/Seoul")!)),
                ("Message-ID", "<msg_1.c456@mail.example.com>"),
                ("List-Unsubscribe", "<https://u.example.com/u/tok>, <mailto:unsub+msg_1@mail.example.com>"),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ],
            plainText: "김민지님,\n11월 특가를 확인하세요.\n.점으로 시작하는 줄\n",
            html: "<html><body><p>김민지님, <b>11월 특가</b>를 확인하세요.</p></body></html>")
    }

    @Test("a Hangul subject is encoded in words of at most 75 characters, split on whole characters, and decodes back exactly")
    func subjectEncoding() throws {
        let subject = "(광고) 11월 특가 안내 — 오늘 단 하루, 전 품목 최대 70% 할인과 무료 배송 쿠폰을 드려요"
        let encoded = try EmailHeader.encode(subject, field: "subject")
        let lines = encoded.components(separatedBy: "\r\n ")
        #expect(lines.count > 1 && lines.allSatisfy { $0.count <= 75 && $0.hasPrefix("=?UTF-8?B?") && $0.hasSuffix("?=") })
        let decoded = lines.map { line -> String in
            let base64 = line.dropFirst("=?UTF-8?B?".count).dropLast(2)
            return String(decoding: Data(base64Encoded: String(base64)) ?? Data(), as: UTF8.self)
        }.joined()
        #expect(decoded == subject, "each word holds whole UTF-8 characters")
        #expect(try EmailHeader.encode("Plain subject", field: "subject") == "Plain subject")
        #expect(throws: EmailFormatError.self) { try EmailHeader.encode("Hi\r\nBcc: everyone@example.com", field: "subject") }
        #expect(throws: EmailFormatError.self) { try EmailAddress.parse("no-domain", field: "from_address") }
        #expect(throws: EmailFormatError.self) { try EmailAddress.parse("a@localhost", field: "from_address") }
    }

    @Test("RSA-SHA256 and Ed25519-SHA256 signatures (relaxed/relaxed) verify with dkimpy; the MIME parses back with the Hangul intact")
    func dkimVerifies() throws {
        let subject = "(광고) 11월 특가 안내 — 오늘 단 하루, 전 품목 최대 70% 할인"
        let message = try message(subject: subject)
        let (headers, body) = message.parts
        let time = Date(timeIntervalSince1970: 1_795_000_000)
        let rsaSigner = DKIMSigner(domain: "mail.example.com", selector: "bk2026", key: .rsa(Self.rsa))
        let edSigner = DKIMSigner(domain: "mail.example.com", selector: "bked", key: .ed25519(Self.ed))
        let rsaSignature = try rsaSigner.signature(headers: headers, body: body, time: time)
        let edSignature = try edSigner.signature(headers: headers, body: body, time: time)
        let raw = message.serialized(prepending: [edSignature, rsaSignature])
        #expect(raw.components(separatedBy: "\r\n").allSatisfy { $0.utf8.count <= 998 })
        let records = [
            "bk2026._domainkey.mail.example.com": DKIMKey.rsa(Self.rsa).dnsRecord, "bked._domainkey.mail.example.com": DKIMKey.ed25519(Self.ed).dnsRecord,
        ]
        let result = try EmailVerifier.verify(raw, records: records)
        #expect(result["dkim"] == .array([.bool(true), .bool(true)]), "\(result)")
        #expect(result["subject"] == .string(subject))
        #expect(result["from"] == .string("비컨 쇼핑 <news@mail.example.com>"))
        #expect(result["headers"]?["List-Unsubscribe-Post"] == .string("List-Unsubscribe=One-Click"))
        let parts = result["parts"]?.arrayValue ?? []
        #expect(parts.map { $0["type"] } == [.string("text/plain"), .string("text/html")], "plain text first, HTML last")
        #expect(parts.first?["text"]?.stringValue == "김민지님,\r\n11월 특가를 확인하세요.\r\n.점으로 시작하는 줄\r\n" || parts.first?["text"]?.stringValue == "김민지님,\n11월 특가를 확인하세요.\n.점으로 시작하는 줄\n")

        // A changed body or subject no longer verifies.
        let tampered = raw.replacingOccurrences(of: "Message-ID: <msg_1.", with: "Message-ID: <msg_2.")
        #expect(try EmailVerifier.verify(tampered, records: records)["dkim"] == .array([.bool(false), .bool(false)]))
    }

    @Test("DKIM keys: PEM round trip; bad PEM, the wrong key type and an unknown algorithm refused")
    func keys() throws {
        let pem = DKIMKey.ed25519(Self.ed).pem
        guard case .ed25519(let parsed) = try DKIMKey.parse(pem: pem, algorithm: "ed25519-sha256", field: "dkim.private_key") else {
            Issue.record("not an Ed25519 key")
            return
        }
        #expect(parsed.publicKey.rawRepresentation == Self.ed.publicKey.rawRepresentation)
        #expect(throws: EmailFormatError.self) { try DKIMKey.parse(pem: "hello", algorithm: "rsa-sha256", field: "dkim.private_key") }
        #expect(throws: EmailFormatError.self) { try DKIMKey.parse(pem: Self.rsa.pemRepresentation, algorithm: "ed25519-sha256", field: "dkim.private_key") }
        #expect(throws: EmailFormatError.self) { try DKIMKey.parse(pem: Self.rsa.pemRepresentation, algorithm: "rsa-sha1", field: "dkim.algorithm") }
        #expect(DKIMKey.rsa(Self.rsa).dnsRecord.hasPrefix("v=DKIM1; k=rsa; p=MII"))
    }
}
