import Crypto
import Foundation
import _CryptoExtras

/// Compact JSON Web Signatures (RFC 7515) signed with ES256 or RS256. Header and claims are passed
/// already serialized as JSON; the token is `base64url(header).base64url(claims).base64url(signature)`.
public enum JSONWebToken {
    /// base64url(header).base64url(claims).base64url(raw 64-byte r‖s ECDSA P-256 SHA-256 signature).
    public static func signES256(headerJSON: String, claimsJSON: String, key: P256.Signing.PrivateKey) throws -> String {
        let input = signingInput(headerJSON: headerJSON, claimsJSON: claimsJSON)
        let signature = try key.signature(for: Array(input.utf8))
        return input + "." + Base64URL.encode(signature.rawRepresentation)
    }

    /// base64url(header).base64url(claims).base64url(RSASSA-PKCS1-v1_5 SHA-256 signature).
    public static func signRS256(headerJSON: String, claimsJSON: String, key: _RSA.Signing.PrivateKey) throws -> String {
        let input = signingInput(headerJSON: headerJSON, claimsJSON: claimsJSON)
        let signature = try key.signature(for: Array(input.utf8), padding: .insecurePKCS1v1_5)
        return input + "." + Base64URL.encode(signature.rawRepresentation)
    }

    /// Verifies an ES256 token and returns its decoded header and claims JSON bytes, or throws a
    /// `JSONWebTokenError` naming what is wrong.
    public static func verifyES256(_ token: String, key: P256.Signing.PublicKey) throws -> (header: [UInt8], claims: [UInt8]) {
        try verify(token, algorithm: "ES256") { input, signature in
            guard let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else {
                throw JSONWebTokenError(description: "the signature is \(signature.count) bytes; ES256 needs 64 (r‖s)")
            }
            return key.isValidSignature(ecdsa, for: input)
        }
    }

    /// Verifies an RS256 token and returns its decoded header and claims JSON bytes, or throws a
    /// `JSONWebTokenError` naming what is wrong.
    public static func verifyRS256(_ token: String, key: _RSA.Signing.PublicKey) throws -> (header: [UInt8], claims: [UInt8]) {
        try verify(token, algorithm: "RS256") { input, signature in
            key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: input, padding: .insecurePKCS1v1_5)
        }
    }

    private static func signingInput(headerJSON: String, claimsJSON: String) -> String {
        Base64URL.encode(headerJSON.utf8) + "." + Base64URL.encode(claimsJSON.utf8)
    }

    /// Splits and decodes `token`, checks the header's `alg`, then asks `isValid` about the
    /// signing input (the first two parts as sent) and the decoded signature.
    private static func verify(
        _ token: String,
        algorithm: String,
        isValid: (_ signingInput: [UInt8], _ signature: [UInt8]) throws -> Bool
    ) throws -> (header: [UInt8], claims: [UInt8]) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            throw JSONWebTokenError(description: "the token has \(parts.count) part(s); a compact JWS has 3 separated by \".\"")
        }
        guard let header = Base64URL.decode(String(parts[0])) else {
            throw JSONWebTokenError(description: "the header is not valid base64url")
        }
        guard let claims = Base64URL.decode(String(parts[1])) else {
            throw JSONWebTokenError(description: "the claims are not valid base64url")
        }
        guard let signature = Base64URL.decode(String(parts[2])) else {
            throw JSONWebTokenError(description: "the signature is not valid base64url")
        }
        guard let fields = (try? JSONSerialization.jsonObject(with: Data(header))) as? [String: Any] else {
            throw JSONWebTokenError(description: "the header is not a JSON object")
        }
        guard let alg = fields["alg"] as? String else {
            throw JSONWebTokenError(description: "the header has no \"alg\" string")
        }
        guard alg == algorithm else {
            throw JSONWebTokenError(description: "the header's alg is \"\(alg)\"; expected \(algorithm)")
        }
        guard try isValid(Array("\(parts[0]).\(parts[1])".utf8), signature) else {
            throw JSONWebTokenError(description: "the \(algorithm) signature is invalid for this key")
        }
        return (header, claims)
    }
}

/// Why a JSON Web Token could not be verified.
public struct JSONWebTokenError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

/// base64url without padding (RFC 4648 §5).
public enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Encodes `bytes` with the URL-safe alphabet and no `=` padding.
    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.underestimatedCount * 4 + 2) / 3)
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 6 {
                bits -= 6
                output.append(alphabet[Int((buffer >> UInt32(bits)) & 0x3F)])
            }
        }
        if bits > 0 {
            output.append(alphabet[Int((buffer << UInt32(6 - bits)) & 0x3F)])
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes base64url text with or without its `=` padding; nil for any other character, a
    /// length no encoding produces, or non-zero leftover bits (a non-canonical encoding).
    public static func decode(_ text: String) -> [UInt8]? {
        var characters = Array(text.utf8)
        if characters.count % 4 == 0 {
            for _ in 0..<2 where characters.last == UInt8(ascii: "=") {
                characters.removeLast()
            }
        }
        guard characters.count % 4 != 1 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(characters.count * 3 / 4)
        var buffer: UInt32 = 0
        var bits = 0
        for character in characters {
            guard let value = sextet(character) else { return nil }
            buffer = (buffer << 6) | value
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
        }
        guard buffer & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return output
    }

    private static func sextet(_ character: UInt8) -> UInt32? {
        switch character {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): UInt32(character - UInt8(ascii: "A"))
        case UInt8(ascii: "a")...UInt8(ascii: "z"): UInt32(character - UInt8(ascii: "a")) + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(character - UInt8(ascii: "0")) + 52
        case UInt8(ascii: "-"): 62
        case UInt8(ascii: "_"): 63
        default: nil
        }
    }
}
