import BeckonStorage
import Foundation

/// Where and how to connect to PostgreSQL, parsed from a `postgres://user:pass@host:port/db` URL.
public struct PostgresURL: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String
    /// `nil` when the URL has none (trust or peer authentication).
    public var password: String?
    public var database: String

    public init(host: String, port: Int = 5432, username: String, password: String? = nil, database: String) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses `postgres://user[:password]@host[:port]/database[?sslmode=disable]`.
    ///
    /// User, password and database may be percent-encoded. `postgresql://` is accepted too.
    /// Throws `PostgresURLError` naming what is wrong.
    public init(_ string: String) throws {
        let text = string.trimmingCharacters(in: .whitespaces)
        guard let schemeEnd = text.range(of: "://") else {
            throw PostgresURLError("missing scheme: expected postgres://user:password@host:port/database")
        }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "postgres" || scheme == "postgresql" else {
            throw PostgresURLError("unsupported scheme '\(scheme)': expected postgres:// or postgresql://")
        }
        var rest = text[schemeEnd.upperBound...]

        // Query parameters.
        if let question = rest.firstIndex(of: "?") {
            let query = rest[rest.index(after: question)...]
            rest = rest[..<question]
            for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = String(parts[0])
                let value = parts.count > 1 ? String(parts[1]) : ""
                switch name {
                case "sslmode":
                    guard value == "disable" else {
                        throw PostgresURLError("sslmode=\(value) is not supported yet: only sslmode=disable (TLS is not built in)")
                    }
                default:
                    throw PostgresURLError("unsupported URL parameter '\(name)' (supported: sslmode=disable)")
                }
            }
        }

        // Database path.
        var authority = rest
        var database = ""
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            database = try Self.decode(rest[rest.index(after: slash)...], what: "database name")
        }
        guard !database.isEmpty else {
            throw PostgresURLError("missing database name: expected postgres://user@host:port/database")
        }
        guard !database.contains("/") else {
            throw PostgresURLError("invalid database name '\(database)': it must not contain '/'")
        }

        // Credentials.
        var hostPort = authority
        var username = ""
        var password: String?
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            hostPort = authority[authority.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                username = try Self.decode(userInfo[..<colon], what: "user name")
                password = try Self.decode(userInfo[userInfo.index(after: colon)...], what: "password")
            } else {
                username = try Self.decode(userInfo, what: "user name")
            }
        }
        guard !username.isEmpty else {
            throw PostgresURLError("missing user name: expected postgres://user@host:port/database")
        }

        // Host and port, with IPv6 addresses in brackets.
        var host: Substring
        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else {
                throw PostgresURLError("invalid IPv6 host '\(hostPort)': missing ']'")
            }
            host = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            let after = hostPort[hostPort.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw PostgresURLError("invalid text after IPv6 host: '\(after)'") }
                portText = after.dropFirst()
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = hostPort[..<colon]
            portText = hostPort[hostPort.index(after: colon)...]
        } else {
            host = hostPort
        }
        guard !host.isEmpty else {
            throw PostgresURLError("missing host: expected postgres://user@host:port/database")
        }
        var port = 5432
        if let portText {
            guard let number = Int(portText), (1...65535).contains(number) else {
                throw PostgresURLError("invalid port '\(portText)': expected a number from 1 to 65535")
            }
            port = number
        }

        self.init(host: String(host), port: port, username: username, password: password, database: database)
    }

    /// The URL with the password hidden, safe to log.
    public var description: String {
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return "postgres://\(username)\(password == nil ? "" : ":***")@\(host):\(port)/\(database)"
    }

    private static func decode(_ text: Substring, what: String) throws -> String {
        guard let decoded = String(text).removingPercentEncoding else {
            throw PostgresURLError("invalid percent-encoding in the \(what)")
        }
        return decoded
    }
}

/// A PostgreSQL URL that cannot be used, with the reason.
public struct PostgresURLError: Error, Sendable, CustomStringConvertible, Equatable {
    public let reason: String

    public init(_ reason: String) { self.reason = reason }

    public var description: String { "invalid PostgreSQL URL: \(reason)" }
}
