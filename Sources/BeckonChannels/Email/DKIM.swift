import Crypto
import Foundation
import _CryptoExtras

/// A DKIM signing key (RFC 6376; Ed25519 per RFC 8463).
public enum DKIMKey: Sendable {
    case rsa(_RSA.Signing.PrivateKey)
    case ed25519(Curve25519.Signing.PrivateKey)

    /// `rsa-sha256` or `ed25519-sha256`.
    public var algorithm: String {
        switch self {
        case .rsa: "rsa-sha256"
        case .ed25519: "ed25519-sha256"
        }
    }

    /// The TXT record value to publish at `<selector>._domainkey.<domain>`.
    public var dnsRecord: String {
        switch self {
        case .rsa(let key): "v=DKIM1; k=rsa; p=" + key.publicKey.derRepresentation.base64EncodedString()
        case .ed25519(let key): "v=DKIM1; k=ed25519; p=" + key.publicKey.rawRepresentation.base64EncodedString()
        }
    }

    /// The private key as PEM (PKCS#8 for Ed25519), for storing.
    public var pem: String {
        switch self {
        case .rsa(let key): return key.pemRepresentation
        case .ed25519(let key):
            let der = Data(Self.ed25519PKCS8Prefix + Array(key.rawRepresentation))
            return "-----BEGIN PRIVATE KEY-----\n" + der.base64EncodedString() + "\n-----END PRIVATE KEY-----\n"
        }
    }

    /// PKCS#8 `PrivateKeyInfo` for an Ed25519 key: version 0, OID 1.3.101.112, then the 32-byte seed.
    static let ed25519PKCS8Prefix: [UInt8] = [0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]

    /// A new key: RSA 2048 bits or Ed25519.
    public static func generate(algorithm: String) throws(EmailFormatError) -> DKIMKey {
        switch algorithm {
        case "rsa-sha256":
            do {
                return .rsa(try _RSA.Signing.PrivateKey(keySize: .bits2048))
            } catch {
                throw EmailFormatError("algorithm: the RSA key could not be made: \(error)")
            }
        case "ed25519-sha256": return .ed25519(Curve25519.Signing.PrivateKey())
        default: throw EmailFormatError("algorithm: must be rsa-sha256 or ed25519-sha256")
        }
    }

    /// Parses a PEM private key for `algorithm`, checking type and size (RSA at least 1024 bits).
    public static func parse(pem: String, algorithm: String, field: String) throws(EmailFormatError) -> DKIMKey {
        switch algorithm {
        case "rsa-sha256":
            // DKIM verifiers take 1024 bits and up (RFC 8301), so the "unsafe" (1024+) initializer.
            do {
                return .rsa(try _RSA.Signing.PrivateKey(unsafePEMRepresentation: pem))
            } catch CryptoKitError.incorrectParameterSize {
                throw EmailFormatError("\(field): the RSA key has fewer than 1024 bits; DKIM verifiers need at least 1024 (use 2048)")
            } catch {
                throw EmailFormatError("\(field): is not an RSA private key in PEM (-----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----)")
            }
        case "ed25519-sha256":
            let body = pem.components(separatedBy: "\n").filter { !$0.hasPrefix("-----") }.joined().trimmingCharacters(in: .whitespacesAndNewlines)
            guard pem.contains("-----BEGIN PRIVATE KEY-----"), let der = Data(base64Encoded: body), der.count == 48,
                Array(der.prefix(16)) == ed25519PKCS8Prefix, let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: der.suffix(32))
            else {
                throw EmailFormatError("\(field): is not an Ed25519 private key in PKCS#8 PEM (-----BEGIN PRIVATE KEY-----, 48 bytes)")
            }
            return .ed25519(key)
        default:
            throw EmailFormatError("algorithm: must be rsa-sha256 or ed25519-sha256")
        }
    }
}

/// Signs a message with DKIM, relaxed/relaxed, over the header set of channels.md §4.4 (`from`
/// signed twice so a second From cannot be added), with `t=` and the body hash of the whole body.
public struct DKIMSigner: Sendable {
    /// Signed when present; `from` is always signed (twice).
    public static let signedHeaders = [
        "from", "to", "cc", "subject", "date", "message-id", "reply-to", "mime-version", "content-type", "content-transfer-encoding",
        "list-unsubscribe", "list-unsubscribe-post", "list-id", "feedback-id",
    ]
    public let domain: String
    public let selector: String
    public let key: DKIMKey

    public init(domain: String, selector: String, key: DKIMKey) {
        self.domain = domain
        self.selector = selector
        self.key = key
    }

    /// The `DKIM-Signature` field (name and folded value) for `headers` and `body` (both exactly as sent).
    public func signature(headers: [(name: String, value: String)], body: String, time: Date) throws -> (name: String, value: String) {
        let bodyHash = Data(SHA256.hash(data: Data(Self.relaxedBody(body).utf8))).base64EncodedString()
        let present = Set(headers.map { $0.name.lowercased() })
        var names = Self.signedHeaders.filter { present.contains($0) }
        names.insert("from", at: 0)
        let tags = "v=1; a=\(key.algorithm); c=relaxed/relaxed; d=\(domain); s=\(selector); t=\(Int(time.timeIntervalSince1970));\r\n"
            + "\th=\(names.joined(separator: ":"));\r\n\tbh=\(bodyHash);\r\n\tb="
        // Hash input: the chosen headers, bottom-up for repeats, then the signature field with an empty b= and no CRLF.
        var input = ""
        var used: [String: Int] = [:]
        for name in names {
            let instances = headers.filter { $0.name.lowercased() == name }
            let taken = used[name, default: 0]
            used[name] = taken + 1
            guard taken < instances.count else { continue }  // an over-signed name signs its absence
            let field = instances[instances.count - 1 - taken]
            input += Self.relaxedHeader(name: field.name, value: field.value) + "\r\n"
        }
        input += Self.relaxedHeader(name: "DKIM-Signature", value: tags)
        let signatureBytes: Data
        switch key {
        case .rsa(let rsa):
            signatureBytes = try rsa.signature(for: SHA256.hash(data: Data(input.utf8)), padding: .insecurePKCS1v1_5).rawRepresentation
        case .ed25519(let ed):
            signatureBytes = try ed.signature(for: Data(SHA256.hash(data: Data(input.utf8))))
        }
        let encoded = signatureBytes.base64EncodedString()
        let folded = stride(from: 0, to: encoded.count, by: 64).map { offset -> String in
            let start = encoded.index(encoded.startIndex, offsetBy: offset)
            return String(encoded[start..<(encoded.index(start, offsetBy: 64, limitedBy: encoded.endIndex) ?? encoded.endIndex)])
        }.joined(separator: "\r\n\t ")
        return ("DKIM-Signature", tags + folded)
    }

    /// Relaxed header canonicalization: lowercased name, unfolded value, whitespace runs as one
    /// space, none at the ends; `name:value`.
    static func relaxedHeader(name: String, value: String) -> String {
        let unfolded = value.replacingOccurrences(of: "\r\n", with: "")
        var collapsed = ""
        var inSpace = false
        for character in unfolded {
            if character == " " || character == "\t" {
                inSpace = true
            } else {
                if inSpace, !collapsed.isEmpty { collapsed.append(" ") }
                inSpace = false
                collapsed.append(character)
            }
        }
        return name.lowercased().trimmingCharacters(in: .whitespaces) + ":" + collapsed
    }

    /// Relaxed body canonicalization: whitespace runs as one space, none at line ends, no empty
    /// lines at the end, and one CRLF after a non-empty body.
    static func relaxedBody(_ body: String) -> String {
        var lines = body.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            var out = ""
            var inSpace = false
            for character in line {
                if character == " " || character == "\t" {
                    inSpace = true
                } else {
                    if inSpace { out.append(" ") }
                    inSpace = false
                    out.append(character)
                }
            }
            return out
        }
        while let last = lines.last, last.isEmpty { lines.removeLast() }
        return lines.isEmpty ? "" : lines.joined(separator: "\r\n") + "\r\n"
    }
}
