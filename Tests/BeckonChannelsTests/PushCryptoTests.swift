import BeckonChannels
import Crypto
import Foundation
import Testing
import _CryptoExtras

/// RFC 8291 §5: the worked example's inputs and the body it produces.
private enum RFC8291Example {
    static let plaintext = Array("When I grow up, I want to be a watermelon".utf8)
    static let userAgentPrivateKey = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
    static let userAgentPublicKey = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
    static let authSecret = "BTBZMqHH6r4Tts7J_aSIgg"
    static let serverPrivateKey = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
    static let salt = "DGv6ra1nlYgDCS1FRnbzlw"
    static let body =
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
}

private func bytes(_ base64URL: String) throws -> [UInt8] {
    try #require(Base64URL.decode(base64URL))
}

@Suite("Web Push encryption (RFC 8291)")
struct WebPushEncryptionTests {
    @Test("the RFC 8291 §5 example encrypts to the RFC's exact body")
    func rfcExampleEncrypts() throws {
        let body = try WebPushEncryption.encrypt(
            RFC8291Example.plaintext,
            userAgentPublicKey: bytes(RFC8291Example.userAgentPublicKey),
            authSecret: bytes(RFC8291Example.authSecret),
            ephemeralKey: P256.KeyAgreement.PrivateKey(rawRepresentation: bytes(RFC8291Example.serverPrivateKey)),
            salt: bytes(RFC8291Example.salt)
        )
        #expect(body == (try bytes(RFC8291Example.body)))
        #expect(Base64URL.encode(body) == RFC8291Example.body)
    }

    @Test("the RFC 8291 §5 body decrypts with the RFC's user agent key")
    func rfcExampleDecrypts() throws {
        let userAgentKey = try P256.KeyAgreement.PrivateKey(rawRepresentation: bytes(RFC8291Example.userAgentPrivateKey))
        #expect([UInt8](userAgentKey.publicKey.x963Representation) == (try bytes(RFC8291Example.userAgentPublicKey)))
        let plaintext = try WebPushEncryption.decrypt(
            bytes(RFC8291Example.body),
            userAgentPrivateKey: userAgentKey,
            authSecret: bytes(RFC8291Example.authSecret)
        )
        #expect(plaintext == RFC8291Example.plaintext)
    }

    @Test("decrypt(encrypt(x)) returns x, with fresh keys and salt, up to the size limit", arguments: [0, 1, 100, 3993])
    func roundTrip(size: Int) throws {
        let userAgentKey = P256.KeyAgreement.PrivateKey()
        let authSecret = (0..<16).map { _ in UInt8.random(in: .min ... .max) }
        let plaintext = (0..<size).map { UInt8(truncatingIfNeeded: $0) }
        let body = try WebPushEncryption.encrypt(
            plaintext,
            userAgentPublicKey: [UInt8](userAgentKey.publicKey.x963Representation),
            authSecret: authSecret
        )
        #expect(body.count == 86 + size + 1 + 16)
        #expect(body.count <= 4096)
        #expect(Array(body[16..<21]) == [0x00, 0x00, 0x10, 0x00, 65])
        let decrypted = try WebPushEncryption.decrypt(body, userAgentPrivateKey: userAgentKey, authSecret: authSecret)
        #expect(decrypted == plaintext)
    }

    @Test("decryption fails with another auth secret, another key, or a tampered body")
    func decryptRejects() throws {
        let userAgentKey = P256.KeyAgreement.PrivateKey()
        let authSecret = [UInt8](repeating: 7, count: 16)
        let body = try WebPushEncryption.encrypt(
            Array("hello".utf8),
            userAgentPublicKey: [UInt8](userAgentKey.publicKey.x963Representation),
            authSecret: authSecret
        )
        #expect(throws: WebPushEncryptionError.self) {
            try WebPushEncryption.decrypt(body, userAgentPrivateKey: userAgentKey, authSecret: [UInt8](repeating: 8, count: 16))
        }
        #expect(throws: WebPushEncryptionError.self) {
            try WebPushEncryption.decrypt(body, userAgentPrivateKey: P256.KeyAgreement.PrivateKey(), authSecret: authSecret)
        }
        var tampered = body
        tampered[tampered.count - 1] ^= 0x01
        #expect(throws: WebPushEncryptionError.self) {
            try WebPushEncryption.decrypt(tampered, userAgentPrivateKey: userAgentKey, authSecret: authSecret)
        }
        #expect(throws: WebPushEncryptionError.self) {
            try WebPushEncryption.decrypt(Array(body.prefix(90)), userAgentPrivateKey: userAgentKey, authSecret: authSecret)
        }
    }

    @Test("bad subscription keys, auth secrets, salts and oversized payloads are refused with clear errors")
    func inputValidation() throws {
        let userAgentPublicKey = try bytes(RFC8291Example.userAgentPublicKey)
        let authSecret = try bytes(RFC8291Example.authSecret)

        let shortKey = #expect(throws: WebPushEncryptionError.self) {
            try WebPushEncryption.encrypt([1], userAgentPublicKey: Array(userAgentPublicKey.prefix(33)), authSecret: authSecret)
        }
        #expect(shortKey?.description.contains("33 bytes") == true)

        var compressedPrefix = userAgentPublicKey
        compressedPrefix[0] = 0x02
        #expect(throws: WebPushEncryptionError.self) {
            try WebPushEncryption.encrypt([1], userAgentPublicKey: compressedPrefix, authSecret: authSecret)
        }

        var offCurve = userAgentPublicKey
        offCurve[64] ^= 0x01
        let notAPoint = #expect(throws: WebPushEncryptionError.self) {
            try WebPushEncryption.encrypt([1], userAgentPublicKey: offCurve, authSecret: authSecret)
        }
        #expect(notAPoint?.description.contains("not a point") == true)

        let shortAuth = #expect(throws: WebPushEncryptionError.self) {
            try WebPushEncryption.encrypt([1], userAgentPublicKey: userAgentPublicKey, authSecret: Array(authSecret.prefix(12)))
        }
        #expect(shortAuth?.description.contains("12 bytes") == true)

        #expect(throws: WebPushEncryptionError.self) {
            try WebPushEncryption.encrypt([1], userAgentPublicKey: userAgentPublicKey, authSecret: authSecret, salt: [0, 1, 2])
        }

        #expect(WebPushEncryption.maxPlaintextBytes == 4096 - 86 - 16 - 1)
        let tooLong = #expect(throws: WebPushEncryptionError.self) {
            try WebPushEncryption.encrypt(
                [UInt8](repeating: 0x41, count: 3994),
                userAgentPublicKey: userAgentPublicKey,
                authSecret: authSecret
            )
        }
        #expect(tooLong?.description == "the payload is 3994 bytes; Web Push allows at most 3993 before encryption")
    }
}

@Suite("JSON Web Tokens (ES256, RS256)")
struct JSONWebTokenTests {
    static let header = #"{"typ":"JWT","alg":"ES256"}"#
    static let claims = #"{"aud":"https://push.example.net","exp":1453523768,"sub":"mailto:push@example.com"}"#

    @Test("ES256 tokens verify with the signing key's public key and return header and claims")
    func es256RoundTrip() throws {
        let key = P256.Signing.PrivateKey()
        let token = try JSONWebToken.signES256(headerJSON: Self.header, claimsJSON: Self.claims, key: key)
        let parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        #expect(parts.count == 3)
        #expect(!token.contains("="))
        #expect(parts[0] == Base64URL.encode(Self.header.utf8))
        #expect((try bytes(parts[2])).count == 64)

        let verified = try JSONWebToken.verifyES256(token, key: key.publicKey)
        #expect(verified.header == Array(Self.header.utf8))
        #expect(verified.claims == Array(Self.claims.utf8))
    }

    @Test("ES256 verification fails with another key, a tampered payload, a wrong alg, or a malformed token")
    func es256Rejects() throws {
        let key = P256.Signing.PrivateKey()
        let token = try JSONWebToken.signES256(headerJSON: Self.header, claimsJSON: Self.claims, key: key)
        let parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)

        let otherKey = #expect(throws: JSONWebTokenError.self) {
            try JSONWebToken.verifyES256(token, key: P256.Signing.PrivateKey().publicKey)
        }
        #expect(otherKey?.description.contains("signature is invalid") == true)

        let forged = Base64URL.encode(Self.claims.replacingOccurrences(of: "1453523768", with: "9999999999").utf8)
        #expect(throws: JSONWebTokenError.self) {
            try JSONWebToken.verifyES256("\(parts[0]).\(forged).\(parts[2])", key: key.publicKey)
        }

        let rsHeader = try JSONWebToken.signES256(headerJSON: #"{"alg":"RS256"}"#, claimsJSON: Self.claims, key: key)
        let wrongAlg = #expect(throws: JSONWebTokenError.self) {
            try JSONWebToken.verifyES256(rsHeader, key: key.publicKey)
        }
        #expect(wrongAlg?.description.contains("RS256") == true)

        let twoParts = #expect(throws: JSONWebTokenError.self) {
            try JSONWebToken.verifyES256("\(parts[0]).\(parts[1])", key: key.publicKey)
        }
        #expect(twoParts?.description.contains("2 part") == true)
        #expect(throws: JSONWebTokenError.self) { try JSONWebToken.verifyES256("", key: key.publicKey) }
        #expect(throws: JSONWebTokenError.self) {
            try JSONWebToken.verifyES256("\(parts[0]).\(parts[1]).\(parts[2]).", key: key.publicKey)
        }
        #expect(throws: JSONWebTokenError.self) {
            try JSONWebToken.verifyES256("\(parts[0]).\(parts[1])!.\(parts[2])", key: key.publicKey)
        }
        let shortSignature = #expect(throws: JSONWebTokenError.self) {
            try JSONWebToken.verifyES256("\(parts[0]).\(parts[1]).\(Base64URL.encode([UInt8](repeating: 1, count: 32)))", key: key.publicKey)
        }
        #expect(shortSignature?.description.contains("32 bytes") == true)
        let notJSON = Base64URL.encode("not json".utf8)
        #expect(throws: JSONWebTokenError.self) {
            try JSONWebToken.verifyES256("\(notJSON).\(parts[1]).\(parts[2])", key: key.publicKey)
        }
    }

    @Test("RS256 tokens round-trip with a 2048-bit key; tampering and other keys fail")
    func rs256() throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let header = #"{"alg":"RS256","typ":"JWT"}"#
        let token = try JSONWebToken.signRS256(headerJSON: header, claimsJSON: Self.claims, key: key)
        let parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        #expect((try bytes(parts[2])).count == 256)

        let verified = try JSONWebToken.verifyRS256(token, key: key.publicKey)
        #expect(verified.header == Array(header.utf8))
        #expect(verified.claims == Array(Self.claims.utf8))

        let forged = Base64URL.encode(Self.claims.replacingOccurrences(of: "push@", with: "evil@").utf8)
        #expect(throws: JSONWebTokenError.self) {
            try JSONWebToken.verifyRS256("\(parts[0]).\(forged).\(parts[2])", key: key.publicKey)
        }
        #expect(throws: JSONWebTokenError.self) {
            try JSONWebToken.verifyRS256(token, key: try _RSA.Signing.PrivateKey(keySize: .bits2048).publicKey)
        }
        let es256Token = try JSONWebToken.signES256(headerJSON: Self.header, claimsJSON: Self.claims, key: P256.Signing.PrivateKey())
        #expect(throws: JSONWebTokenError.self) { try JSONWebToken.verifyRS256(es256Token, key: key.publicKey) }
    }
}

@Suite("base64url")
struct Base64URLTests {
    @Test("RFC 4648 §10 vectors encode without padding and decode with or without it", arguments: [
        ("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE"), ("foobar", "Zm9vYmFy"),
    ])
    func vectors(plain: String, encoded: String) {
        #expect(Base64URL.encode(plain.utf8) == encoded)
        #expect(Base64URL.decode(encoded) == Array(plain.utf8))
        let padded = encoded + String(repeating: "=", count: (4 - encoded.count % 4) % 4)
        #expect(Base64URL.decode(padded) == Array(plain.utf8))
    }

    @Test("the URL-safe alphabet is used both ways")
    func urlSafeAlphabet() {
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8")
        #expect(Base64URL.decode("-_8") == [0xFB, 0xFF])
        let all = (0...255).map { UInt8($0) }
        #expect(Base64URL.decode(Base64URL.encode(all)) == all)
    }

    @Test("invalid input decodes to nil", arguments: ["a", "Zm9vY", "+/8", "Zm 9v", "Zg=", "Zg===", "=", "Zm8=Zm8=", "Zh", "Zm9=", "é"])
    func invalid(text: String) {
        #expect(Base64URL.decode(text) == nil)
    }
}
