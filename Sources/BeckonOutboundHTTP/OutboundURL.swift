import Foundation

/// A rendered outbound URL, encoded the way Braze sends it and checked for shape.
public struct OutboundURL: Sendable, Hashable {
    /// The URL as sent: characters a URL cannot hold (spaces, Hangul …) percent-encoded as UTF-8,
    /// existing `%XX` escapes kept.
    public let text: String
    public let scheme: String
    /// Lowercased, without IPv6 brackets.
    public let host: String
    public let port: Int

    public init(_ rendered: String) throws(OutboundFailure) {
        let trimmed = rendered.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw OutboundFailure("the URL rendered empty", kind: .invalidRequest) }
        let encoded = Self.encode(trimmed)
        guard let components = URLComponents(string: encoded), let scheme = components.scheme?.lowercased() else {
            throw OutboundFailure("'\(Self.redacted(trimmed))' is not a valid URL", kind: .invalidRequest)
        }
        guard scheme == "http" || scheme == "https" else {
            throw OutboundFailure("only http and https URLs can be called, not \(scheme)", kind: .invalidRequest)
        }
        guard var host = components.host?.lowercased(), !host.isEmpty else {
            throw OutboundFailure("'\(Self.redacted(trimmed))' has no host", kind: .invalidRequest)
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        text = encoded
        self.scheme = scheme
        self.host = host
        port = components.port ?? (scheme == "https" ? 443 : 80)
    }

    /// This URL with `path` appended (percent-encoded like any rendered URL): the same scheme, host
    /// and port, without parsing the whole URL again (a provider's base URL and a device path).
    public func appending(path: String) -> OutboundURL {
        OutboundURL(text: text + Self.encode(path), scheme: scheme, host: host, port: port)
    }

    private init(text: String, scheme: String, host: String, port: Int) {
        self.text = text
        self.scheme = scheme
        self.host = host
        self.port = port
    }

    /// Percent-encodes every byte outside RFC 3986's unreserved and reserved sets, leaving `%`.
    public static func encode(_ text: String) -> String {
        var output = ""
        output.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if allowed[Int(byte)] {
                output.unicodeScalars.append(UnicodeScalar(byte))
            } else {
                output += String(format: "%%%02X", byte)
            }
        }
        return output
    }

    private static let allowed: [Bool] = {
        var table = [Bool](repeating: false, count: 256)
        for byte in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%".utf8 {
            table[Int(byte)] = true
        }
        return table
    }()

    /// Query parameter names whose values are never written to logs.
    private static let secretWords = ["key", "token", "secret", "password", "passwd", "pwd", "auth", "signature", "sig", "credential", "session"]

    /// The URL safe to log: no user-info, and values of secret-looking query parameters replaced.
    public static func redacted(_ text: String) -> String {
        guard var components = URLComponents(string: encode(text)) else { return String(text.prefix(200)) }
        if components.user != nil || components.password != nil {
            components.user = nil
            components.password = nil
        }
        if let items = components.queryItems {
            components.queryItems = items.map { item in
                let name = item.name.lowercased()
                guard secretWords.contains(where: { name.contains($0) }) else { return item }
                return URLQueryItem(name: item.name, value: "[redacted]")
            }
        }
        return String((components.string ?? "").prefix(2_000))
    }

    public var redacted: String { Self.redacted(text) }
}
