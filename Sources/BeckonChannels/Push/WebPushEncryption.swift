import Crypto
import Foundation

/// Web Push message encryption (RFC 8291): the `aes128gcm` content coding of RFC 8188 with one
/// record, keyed by ECDH between an ephemeral application-server key and the subscription's
/// `p256dh` key, mixed with its `auth` secret.
public enum WebPushEncryption {
    /// The largest plaintext that fits in a 4096-byte body: 4096 − 86 − 16 − 1 = 3993.
    public static let maxPlaintextBytes = 3993

    /// The record size written in the header; one record always fits in it.
    private static let recordSize: UInt32 = 4096
    /// salt(16) ‖ rs(4) ‖ idlen(1) ‖ keyid(65).
    private static let headerLength = 86
    private static let saltLength = 16
    private static let publicKeyLength = 65
    private static let authSecretLength = 16
    private static let tagLength = 16
    /// Ends the plaintext of the last (here: only) record (RFC 8188 §2).
    private static let lastRecordDelimiter: UInt8 = 0x02

    /// Encrypts `plaintext` for a subscription. `userAgentPublicKey` is the 65-byte uncompressed
    /// P-256 point (p256dh), `authSecret` 16 bytes. `ephemeralKey` and `salt` are injectable for
    /// the RFC 8291 §5 test vector; defaults are fresh random ones.
    ///
    /// Body = salt(16) ‖ rs(uint32 BE, 4096) ‖ idlen(1 = 65) ‖ keyid(as_public, 65) ‖
    /// AES-128-GCM(CEK, NONCE, plaintext ‖ 0x02) with its tag.
    public static func encrypt(
        _ plaintext: [UInt8],
        userAgentPublicKey: [UInt8],
        authSecret: [UInt8],
        ephemeralKey: P256.KeyAgreement.PrivateKey = .init(),
        salt: [UInt8]? = nil
    ) throws -> [UInt8] {
        guard plaintext.count <= maxPlaintextBytes else {
            throw WebPushEncryptionError(
                description: "the payload is \(plaintext.count) bytes; Web Push allows at most \(maxPlaintextBytes) before encryption"
            )
        }
        guard userAgentPublicKey.count == publicKeyLength, userAgentPublicKey.first == 0x04 else {
            throw WebPushEncryptionError(
                description: "the subscription's p256dh key is \(userAgentPublicKey.count) bytes; it must be a 65-byte uncompressed P-256 point starting 0x04"
            )
        }
        guard let userAgentKey = try? P256.KeyAgreement.PublicKey(x963Representation: userAgentPublicKey) else {
            throw WebPushEncryptionError(description: "the subscription's p256dh key is not a point on P-256")
        }
        try checkAuthSecret(authSecret)
        let salt = salt ?? (0..<saltLength).map { _ in UInt8.random(in: .min ... .max) }
        guard salt.count == saltLength else {
            throw WebPushEncryptionError(description: "the salt is \(salt.count) bytes; it must be \(saltLength)")
        }

        let serverPublicKey = [UInt8](ephemeralKey.publicKey.x963Representation)
        let secret = try ephemeralKey.sharedSecretFromKeyAgreement(with: userAgentKey)
        let (key, nonce) = try contentKeys(
            ecdhSecret: secret.withUnsafeBytes { [UInt8]($0) },
            authSecret: authSecret,
            userAgentPublicKey: userAgentPublicKey,
            serverPublicKey: serverPublicKey,
            salt: salt
        )
        let sealed = try AES.GCM.seal(plaintext + [lastRecordDelimiter], using: key, nonce: nonce)

        var body = salt
        body.reserveCapacity(headerLength + plaintext.count + 1 + tagLength)
        body += withUnsafeBytes(of: recordSize.bigEndian) { [UInt8]($0) }
        body.append(UInt8(publicKeyLength))
        body += serverPublicKey
        body += sealed.ciphertext
        body += sealed.tag
        return body
    }

    /// The receiver side (used by test push services): decrypts a body made by `encrypt` with the
    /// user agent's private key and auth secret; strips the 0x02 delimiter and any 0x00 padding.
    public static func decrypt(
        _ body: [UInt8],
        userAgentPrivateKey: P256.KeyAgreement.PrivateKey,
        authSecret: [UInt8]
    ) throws -> [UInt8] {
        try checkAuthSecret(authSecret)
        guard body.count >= headerLength + tagLength + 1 else {
            throw WebPushEncryptionError(
                description: "the body is \(body.count) bytes; an aes128gcm body has at least \(headerLength + tagLength + 1)"
            )
        }
        let salt = [UInt8](body[0..<saltLength])
        let recordSize = body[saltLength..<saltLength + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let keyIDLength = Int(body[saltLength + 4])
        guard keyIDLength == publicKeyLength else {
            throw WebPushEncryptionError(
                description: "the header's keyid is \(keyIDLength) bytes; Web Push puts the 65-byte sender public key there"
            )
        }
        let serverPublicKey = [UInt8](body[(headerLength - publicKeyLength)..<headerLength])
        guard let serverKey = try? P256.KeyAgreement.PublicKey(x963Representation: serverPublicKey) else {
            throw WebPushEncryptionError(description: "the header's keyid is not a point on P-256")
        }
        let record = body[headerLength...]
        guard recordSize >= UInt32(tagLength + 2), record.count <= Int(recordSize) else {
            throw WebPushEncryptionError(
                description: "the record is \(record.count) bytes with record size \(recordSize); only a single record is supported"
            )
        }

        let secret = try userAgentPrivateKey.sharedSecretFromKeyAgreement(with: serverKey)
        let (key, nonce) = try contentKeys(
            ecdhSecret: secret.withUnsafeBytes { [UInt8]($0) },
            authSecret: authSecret,
            userAgentPublicKey: [UInt8](userAgentPrivateKey.publicKey.x963Representation),
            serverPublicKey: serverPublicKey,
            salt: salt
        )
        let box = try AES.GCM.SealedBox(nonce: nonce, ciphertext: record.dropLast(tagLength), tag: record.suffix(tagLength))
        guard let padded = try? AES.GCM.open(box, using: key) else {
            throw WebPushEncryptionError(description: "the body does not decrypt with this key and auth secret")
        }
        var plaintext = [UInt8](padded)
        while plaintext.last == 0x00 {
            plaintext.removeLast()
        }
        guard plaintext.last == lastRecordDelimiter else {
            throw WebPushEncryptionError(description: "the record does not end with the last-record delimiter 0x02")
        }
        plaintext.removeLast()
        return plaintext
    }

    private static func checkAuthSecret(_ authSecret: [UInt8]) throws {
        guard authSecret.count == authSecretLength else {
            throw WebPushEncryptionError(
                description: "the subscription's auth secret is \(authSecret.count) bytes; it must be \(authSecretLength)"
            )
        }
    }

    /// RFC 8291 §3.3–3.4: IKM from the ECDH secret and auth secret, then the content-encryption
    /// key and nonce from the salt and IKM (RFC 8188 §2.2–2.3).
    private static func contentKeys(
        ecdhSecret: [UInt8],
        authSecret: [UInt8],
        userAgentPublicKey: [UInt8],
        serverPublicKey: [UInt8],
        salt: [UInt8]
    ) throws -> (key: SymmetricKey, nonce: AES.GCM.Nonce) {
        let keyInfo = Array("WebPush: info".utf8) + [0x00] + userAgentPublicKey + serverPublicKey
        let inputKeyMaterial = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: ecdhSecret),
            salt: authSecret,
            info: keyInfo,
            outputByteCount: 32
        )
        let key = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: inputKeyMaterial,
            salt: salt,
            info: Array("Content-Encoding: aes128gcm".utf8) + [0x00],
            outputByteCount: 16
        )
        let nonce = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: inputKeyMaterial,
            salt: salt,
            info: Array("Content-Encoding: nonce".utf8) + [0x00],
            outputByteCount: 12
        )
        return (key, try nonce.withUnsafeBytes { try AES.GCM.Nonce(data: $0) })
    }
}

/// Why a Web Push message could not be encrypted or decrypted.
public struct WebPushEncryptionError: Error, Sendable, CustomStringConvertible {
    public let description: String
}
