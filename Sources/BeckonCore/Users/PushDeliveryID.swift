import Crypto
import Foundation

/// Per-token delivery ids: stable for one message and one token, so a retry after a crash (on
/// any node) reuses them.
public enum PushDeliveryID {
    /// `<message id>.<8 hex digits of SHA-256(token)>`: `beckon_message_id` in every payload,
    /// what the SDK reports back in `push_opens`.
    public static func make(messageID: String, token: String) -> String {
        messageID + "." + hex(SHA256.hash(data: Data(token.utf8)).prefix(4))
    }

    /// Whether `deliveryID` is the delivery id of `messageID` to `token`.
    public static func isDelivery(_ deliveryID: String, of messageID: String, to token: String) -> Bool {
        deliveryID == make(messageID: messageID, token: token)
    }

    /// APNs `apns-id`: a lowercase UUID (version 5 layout) from SHA-256(message id | token).
    public static func apnsID(messageID: String, token: String) -> String {
        var bytes = Array(SHA256.hash(data: Data("\(messageID)|\(token)".utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0f) | 0x50
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        // 8-4-4-4-12 hex digits.
        return [0..<4, 4..<6, 6..<8, 8..<10, 10..<16].map { hex(bytes[$0]) }.joined(separator: "-")
    }

    private static func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

}
