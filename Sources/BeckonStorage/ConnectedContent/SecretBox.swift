import Crypto
import Foundation

/// Seals secrets for storage at rest with AES-256-GCM under a key that never enters the database.
public struct SecretBox: Sendable {
    private let key: SymmetricKey

    /// A box with a 32-byte key given as base64 (`BECKON_SECRET_KEY`, or the data folder's key file).
    public init(base64Key: String) throws {
        guard let data = Data(base64Encoded: base64Key.trimmingCharacters(in: .whitespacesAndNewlines)), data.count == 32 else {
            throw SecretBoxError("the secret key must be 32 bytes written as base64 (for example `openssl rand -base64 32`)")
        }
        key = SymmetricKey(data: data)
    }

    /// A new random key, as base64.
    public static func generateKey() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
    }

    /// The plaintext sealed (nonce, ciphertext and tag) as base64.
    public func seal(_ plaintext: String) throws -> String {
        guard let combined = try AES.GCM.seal(Data(plaintext.utf8), using: key).combined else {
            throw SecretBoxError("sealing failed")
        }
        return combined.base64EncodedString()
    }

    /// The plaintext of a value `seal` produced; fails when the key is not the one that sealed it.
    public func open(_ sealed: String) throws -> String {
        do {
            guard let data = Data(base64Encoded: sealed) else { throw SecretBoxError("a stored secret is not base64") }
            let plaintext = try AES.GCM.open(AES.GCM.SealedBox(combined: data), using: key)
            return String(decoding: plaintext, as: UTF8.self)
        } catch let error as SecretBoxError {
            throw error
        } catch {
            throw SecretBoxError("a stored secret cannot be opened with this secret key (was BECKON_SECRET_KEY changed?)")
        }
    }
}

/// A secret could not be sealed or opened; the message never contains the secret.
public struct SecretBoxError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
