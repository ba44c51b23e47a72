import BeckonCore
import Foundation

/// A workspace's email sending settings (`PUT /beckon/v1/email/settings`): the SMTP server, the
/// sender, the bounce domain and the DKIM key. Secrets (the SMTP password, the DKIM private key)
/// are kept apart so they can be sealed at rest and never shown.
public struct EmailSettings: Sendable {
    public struct SMTP: Sendable {
        public var host: String
        public var port: Int
        /// `starttls`, `tls` (implicit, port 465) or `none`.
        public var security: String
        public var username: String?
        public var password: String?
    }

    public struct DKIM: Sendable {
        public var domain: String
        public var selector: String
        public var key: DKIMKey

        public init(domain: String, selector: String, key: DKIMKey) {
            self.domain = domain
            self.selector = selector
            self.key = key
        }
    }

    public var smtp: SMTP
    public var fromAddress: EmailAddress
    public var fromName: String?
    public var replyTo: EmailAddress?
    public var bounceDomain: String?
    public var dkim: DKIM?

    public static let securities = ["starttls", "tls", "none"]

    /// Validates the body; `stored` supplies the secrets a body leaves out (a PUT that does not
    /// repeat the password or the DKIM key keeps them). Returns the settings and warnings
    /// (alignment) that do not stop the save.
    public static func parse(_ body: JSONValue, stored: EmailSettings?) throws(EmailSettingsError) -> (EmailSettings, warnings: [String]) {
        guard let object = body.objectValue else { throw EmailSettingsError(["the body must be a JSON object {\"smtp\", \"from_address\", …}"]) }
        var problems: [String] = []
        var warnings: [String] = []
        let known = ["smtp", "from_address", "from_name", "reply_to", "bounce_domain", "dkim"]
        for key in object.keys.sorted() where !known.contains(key) { problems.append("\(key): unknown field (\(known.joined(separator: ", ")))") }
        func text(_ value: JSONValue?, _ field: String) -> String? {
            guard let value, !value.isNull else { return nil }
            guard let string = value.stringValue else {
                problems.append("\(field): must be a string")
                return nil
            }
            return string
        }
        var smtp = SMTP(host: "", port: 587, security: "starttls", username: nil, password: nil)
        if let fields = object["smtp"]?.objectValue {
            for key in fields.keys.sorted() where !["host", "port", "security", "username", "password"].contains(key) {
                problems.append("smtp.\(key): unknown field (host, port, security, username, password)")
            }
            smtp.host = text(fields["host"], "smtp.host")?.lowercased() ?? ""
            if smtp.host.isEmpty || !(EmailAddress.isDomain(smtp.host) || smtp.host == "localhost" || Self.isIPv4(smtp.host)) {
                problems.append("smtp.host: must be the SMTP server's host name or IPv4 address")
            }
            smtp.security = text(fields["security"], "smtp.security") ?? "starttls"
            if !securities.contains(smtp.security) { problems.append("smtp.security: must be starttls, tls or none") }
            if let value = fields["port"], !value.isNull {
                if case .int(let port) = value, (1...65_535).contains(port) { smtp.port = Int(port) } else { problems.append("smtp.port: must be 1 to 65535") }
            } else {
                smtp.port = smtp.security == "tls" ? 465 : smtp.security == "none" ? 25 : 587
            }
            smtp.username = text(fields["username"], "smtp.username").flatMap { $0.isEmpty ? nil : $0 }
            smtp.password = text(fields["password"], "smtp.password").flatMap { $0.isEmpty ? nil : $0 }
            if smtp.password == nil, smtp.username != nil, stored?.smtp.username == smtp.username { smtp.password = stored?.smtp.password }
            if (smtp.username == nil) != (smtp.password == nil) { problems.append("smtp.password: give username and password together (or neither)") }
            if smtp.security == "none", smtp.username != nil {
                problems.append("smtp.security: AUTH is only sent after TLS; use starttls or tls with a username and password")
            }
        } else {
            problems.append("smtp: is required: {\"host\", \"port\", \"security\", \"username\", \"password\"}")
        }
        var from: EmailAddress?
        do {
            from = try EmailAddress.parse(text(object["from_address"], "from_address") ?? "", field: "from_address")
        } catch {
            problems.append(error.description)
        }
        let fromName = text(object["from_name"], "from_name")
        if let fromName {
            do { try EmailHeader.checkLine(fromName, field: "from_name") } catch { problems.append(error.description) }
        }
        var replyTo: EmailAddress?
        if let value = text(object["reply_to"], "reply_to") {
            do { replyTo = try EmailAddress.parse(value, field: "reply_to") } catch { problems.append(error.description) }
        }
        let bounceDomain = text(object["bounce_domain"], "bounce_domain")?.lowercased()
        if let bounceDomain, !EmailAddress.isDomain(bounceDomain) { problems.append("bounce_domain: '\(bounceDomain.prefix(80))' is not a domain name") }
        var dkim: DKIM?
        if let value = object["dkim"], !value.isNull {
            if let fields = value.objectValue {
                for key in fields.keys.sorted() where !["domain", "selector", "private_key", "algorithm"].contains(key) {
                    problems.append("dkim.\(key): unknown field (domain, selector, private_key, algorithm)")
                }
                let domain = text(fields["domain"], "dkim.domain")?.lowercased() ?? ""
                if !EmailAddress.isDomain(domain) { problems.append("dkim.domain: must be the signing domain, such as mail.example.com") }
                let selector = text(fields["selector"], "dkim.selector")?.lowercased() ?? ""
                if !Self.isSelector(selector) { problems.append("dkim.selector: must be a DNS label such as bk2026 (letters, digits, hyphens)") }
                let algorithm = text(fields["algorithm"], "dkim.algorithm") ?? "rsa-sha256"
                var key: DKIMKey?
                if let pem = text(fields["private_key"], "dkim.private_key") {
                    do { key = try DKIMKey.parse(pem: pem, algorithm: algorithm, field: "dkim.private_key") } catch { problems.append(error.description) }
                } else if let existing = stored?.dkim, existing.domain == domain, existing.selector == selector, existing.key.algorithm == algorithm {
                    key = existing.key
                } else if !["rsa-sha256", "ed25519-sha256"].contains(algorithm) {
                    problems.append("dkim.algorithm: must be rsa-sha256 or ed25519-sha256")
                } else {
                    problems.append("dkim.private_key: is required (or make one with POST /beckon/v1/email/dkim)")
                }
                if let key { dkim = DKIM(domain: domain, selector: selector, key: key) }
            } else {
                problems.append("dkim: must be an object {\"domain\", \"selector\", \"private_key\", \"algorithm\"}")
            }
        }
        guard problems.isEmpty, let from else { throw EmailSettingsError(problems) }
        if let dkim, !aligned(from.domain, dkim.domain) {
            warnings.append("dkim.domain: \(dkim.domain) does not align with the From domain \(from.domain); DMARC will not pass on DKIM")
        }
        return (EmailSettings(smtp: smtp, fromAddress: from, fromName: fromName, replyTo: replyTo, bounceDomain: bounceDomain, dkim: dkim), warnings)
    }

    /// Relaxed DMARC alignment, approximated: the same domain, or one a subdomain of the other.
    static func aligned(_ from: String, _ signing: String) -> Bool {
        from == signing || from.hasSuffix("." + signing) || signing.hasSuffix("." + from)
    }

    /// A DKIM selector: one or more DNS labels.
    public static func isSelector(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 63 && !text.hasPrefix("-") && !text.hasSuffix("-")
            && text.unicodeScalars.allSatisfy { CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyz0123456789-.").contains($0) }
    }

    static func isIPv4(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { UInt8($0) != nil }
    }

    /// What may be shown and stored in the clear.
    public var settingsJSON: JSONValue {
        var smtpJSON: [String: JSONValue] = [
            "host": .string(smtp.host), "port": .int(Int64(smtp.port)), "security": .string(smtp.security), "password_set": .bool(smtp.password != nil),
        ]
        if let username = smtp.username { smtpJSON["username"] = .string(username) }
        var object: [String: JSONValue] = ["smtp": .object(smtpJSON), "from_address": .string(fromAddress.text)]
        if let fromName { object["from_name"] = .string(fromName) }
        if let replyTo { object["reply_to"] = .string(replyTo.text) }
        if let bounceDomain { object["bounce_domain"] = .string(bounceDomain) }
        if let dkim {
            object["dkim"] = .object([
                "domain": .string(dkim.domain), "selector": .string(dkim.selector), "algorithm": .string(dkim.key.algorithm),
                "dns_record": .string(dkim.key.dnsRecord),
            ])
        }
        return .object(object)
    }

    /// The secrets, sealed at rest.
    public var secretJSON: JSONValue {
        var object: [String: JSONValue] = [:]
        if let password = smtp.password { object["smtp_password"] = .string(password) }
        if let dkim { object["dkim_private_key"] = .string(dkim.key.pem) }
        return .object(object)
    }

    /// The settings as stored: the clear part and the unsealed secrets.
    public static func stored(settings: JSONValue, secret: JSONValue) throws(EmailSettingsError) -> EmailSettings {
        var body = settings.objectValue ?? [:]
        if var smtp = body["smtp"]?.objectValue {
            smtp.removeValue(forKey: "password_set")
            smtp["password"] = secret["smtp_password"] ?? .null
            body["smtp"] = .object(smtp)
        }
        if var dkim = body["dkim"]?.objectValue {
            dkim.removeValue(forKey: "dns_record")
            dkim["private_key"] = secret["dkim_private_key"] ?? .null
            body["dkim"] = .object(dkim)
        }
        return try parse(.object(body), stored: nil).0
    }

    /// The DNS records to publish: DKIM (TXT, split into 255-byte strings), SPF for the envelope
    /// domain and a starter DMARC record for the From domain.
    public var dnsRecords: [JSONValue] {
        var records: [JSONValue] = []
        if let dkim {
            let value = dkim.key.dnsRecord
            let strings = stride(from: 0, to: value.utf8.count, by: 255).map { offset -> JSONValue in
                let bytes = Array(value.utf8)
                return .string(String(decoding: bytes[offset..<min(offset + 255, bytes.count)], as: UTF8.self))
            }
            records.append(.object([
                "purpose": .string("dkim"), "type": .string("TXT"), "name": .string("\(dkim.selector)._domainkey.\(dkim.domain)"),
                "value": .string(value), "strings": .array(strings),
            ]))
        }
        let envelope = bounceDomain ?? fromAddress.domain
        records.append(.object([
            "purpose": .string("spf"), "type": .string("TXT"), "name": .string(envelope),
            "value": .string("v=spf1 a:\(smtp.host) ~all"),
            "note": .string("the envelope (bounce) domain; if your SMTP provider documents an include: mechanism, use it instead of a:\(smtp.host)"),
        ]))
        records.append(.object([
            "purpose": .string("dmarc"), "type": .string("TXT"), "name": .string("_dmarc.\(fromAddress.domain)"),
            "value": .string("v=DMARC1; p=none; rua=mailto:dmarc@\(fromAddress.domain); adkim=r; aspf=r"),
            "note": .string("a starting policy: watch the reports, then move to p=quarantine"),
        ]))
        return records
    }
}

/// Why email settings were refused: each problem as `field: what is wrong`.
public struct EmailSettingsError: Error, Sendable, CustomStringConvertible {
    public let problems: [String]
    public init(_ problems: [String]) { self.problems = problems }
    public var description: String { problems.joined(separator: "; ") }
}
