import Foundation

/// Hosts that may be called beyond the default rules (ports 80/443, public addresses only):
/// `host` allows every port on it, `host:port` one port, `*.example.com` every subdomain.
public struct HostAllowlist: Sendable, Hashable {
    /// One allowlisted destination.
    public struct Entry: Sendable, Hashable, CustomStringConvertible {
        /// Lowercased host; a leading `*.` matches any subdomain.
        public let host: String
        /// `nil` allows any port.
        public let port: Int?

        public var description: String {
            let shownHost = host.contains(":") ? "[\(host)]" : host
            return port.map { "\(shownHost):\($0)" } ?? shownHost
        }

        func matches(host candidate: String, port candidatePort: Int) -> Bool {
            if let port, port != candidatePort { return false }
            if host.hasPrefix("*.") { return candidate.hasSuffix(host.dropFirst(1)) && candidate.count > host.count - 1 }
            return host == candidate
        }
    }

    public let entries: [Entry]

    public init(entries: [Entry] = []) {
        self.entries = entries
    }

    /// Parses `host`, `host:port`, `[ipv6]` or `[ipv6]:port` entries; an error names the bad one.
    public init(parsing texts: [String]) throws(HostAllowlistError) {
        entries = try texts.map(Self.parse)
    }

    public static func parse(_ raw: String) throws(HostAllowlistError) -> Entry {
        let text = raw.trimmingCharacters(in: .whitespaces).lowercased()
        guard !text.isEmpty else { throw HostAllowlistError(entry: raw, problem: "is empty") }
        guard !text.contains("/"), !text.contains("@") else {
            throw HostAllowlistError(entry: raw, problem: "must be a host or host:port, not a URL")
        }
        var host = text
        var portText: String?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw HostAllowlistError(entry: raw, problem: "has an unclosed '['") }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { throw HostAllowlistError(entry: raw, problem: "has text after ']'") }
                portText = String(rest.dropFirst())
            }
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            host = String(text[..<colon])
            portText = String(text[text.index(after: colon)...])
        }
        guard !host.isEmpty, host.allSatisfy({ $0.isLetter || $0.isNumber || "-._:*".contains($0) }) else {
            throw HostAllowlistError(entry: raw, problem: "is not a host name or IP address")
        }
        guard !host.dropFirst(2).contains("*"), !host.hasPrefix("*") || host.hasPrefix("*.") else {
            throw HostAllowlistError(entry: raw, problem: "may only use '*.' at the start")
        }
        var port: Int?
        if let portText {
            guard let value = Int(portText), (1...65_535).contains(value) else {
                throw HostAllowlistError(entry: raw, problem: "has a port that is not 1 to 65535")
            }
            port = value
        }
        return Entry(host: host, port: port)
    }

    public func allows(host: String, port: Int) -> Bool {
        let candidate = host.lowercased()
        return entries.contains { $0.matches(host: candidate, port: port) }
    }

    /// This list and `other` together.
    public func union(_ other: HostAllowlist) -> HostAllowlist {
        HostAllowlist(entries: entries + other.entries.filter { !entries.contains($0) })
    }
}

/// An allowlist entry that cannot be used; names the entry and the problem.
public struct HostAllowlistError: Error, Sendable, CustomStringConvertible {
    public let entry: String
    public let problem: String
    public var description: String { "allowed host '\(entry)' \(problem)" }
}
