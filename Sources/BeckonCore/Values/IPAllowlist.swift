import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// IP allowlist entries: single addresses or CIDR blocks, IPv4 or IPv6.
public struct IPAllowlist: Sendable {
    /// An entry as bytes and prefix length.
    public struct Entry: Sendable, Hashable {
        let bytes: [UInt8]
        let prefix: Int
    }

    /// Parses `a.b.c.d`, `a.b.c.d/n`, IPv6 and IPv6 `/n`.
    public static func parse(_ text: String) -> Entry? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let bytes = addressBytes(String(parts[0])) else { return nil }
        let maxPrefix = bytes.count * 8
        guard parts.count == 2 else { return Entry(bytes: bytes, prefix: maxPrefix) }
        guard let prefix = Int(parts[1]), (0...maxPrefix).contains(prefix) else { return nil }
        return Entry(bytes: bytes, prefix: prefix)
    }

    /// Whether `address` is allowed by `entries` (an empty list allows everything).
    public static func allows(_ address: String, entries: [String]) -> Bool {
        if entries.isEmpty { return true }
        guard let candidate = addressBytes(address) else { return false }
        return entries.compactMap(parse).contains { entry in
            guard entry.bytes.count == candidate.count else { return false }
            var remaining = entry.prefix
            for index in 0..<candidate.count where remaining > 0 {
                let bits = min(8, remaining)
                let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
                if entry.bytes[index] & mask != candidate[index] & mask { return false }
                remaining -= bits
            }
            return true
        }
    }

    /// The address as 4 or 16 bytes, or `nil` when it is not an IP address.
    public static func addressBytes(_ text: String) -> [UInt8]? {
        if text.contains(":") {
            var address = in6_addr()
            guard inet_pton(AF_INET6, text, &address) == 1 else { return nil }
            return withUnsafeBytes(of: &address) { Array($0) }
        }
        var address = in_addr()
        guard inet_pton(AF_INET, text, &address) == 1 else { return nil }
        return withUnsafeBytes(of: &address) { Array($0) }
    }
}
