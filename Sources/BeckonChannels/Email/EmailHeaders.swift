import Foundation

/// Header values for email (RFC 5322 / RFC 2047): non-ASCII text as UTF-8 `B` encoded-words of at
/// most 75 characters, split only between whole characters and folded onto continuation lines;
/// CR and LF refused everywhere (header injection).
public enum EmailHeader {
    /// The longest encoded-word RFC 2047 allows.
    static let maxEncodedWord = 75

    /// `text` as it may appear in a header: unchanged when it is printable ASCII, else encoded-words
    /// joined by CRLF + space. Throws for CR or LF.
    public static func encode(_ text: String, field: String) throws(EmailFormatError) -> String {
        try checkLine(text, field: field)
        if text.unicodeScalars.allSatisfy({ $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F }) { return text }
        // "=?UTF-8?B?" + base64 + "?=" ≤ 75: 63 base64 characters, so at most 45 bytes of UTF-8 (whole characters) per word.
        var words: [String] = []
        var chunk: [UInt8] = []
        for character in text {
            let bytes = Array(String(character).utf8)
            if chunk.count + bytes.count > 45, !chunk.isEmpty {
                words.append(word(chunk))
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty { words.append(word(chunk)) }
        return words.joined(separator: "\r\n ")
    }

    private static func word(_ bytes: [UInt8]) -> String {
        "=?UTF-8?B?" + Data(bytes).base64EncodedString() + "?="
    }

    /// `Name <address>` with the display name encoded when needed (the address never is).
    public static func mailbox(name: String?, address: EmailAddress) throws(EmailFormatError) -> String {
        guard let name, !name.isEmpty else { return address.text }
        let encoded = try encode(name, field: "from_name")
        if encoded == name {
            // Quote a plain name when it holds specials.
            let specials = CharacterSet(charactersIn: "()<>[]:;@\\,.\"")
            if name.unicodeScalars.contains(where: specials.contains) {
                return "\"" + name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\" <\(address.text)>"
            }
        }
        return "\(encoded) <\(address.text)>"
    }

    /// Throws when `text` holds CR or LF: a header value must be one line.
    public static func checkLine(_ text: String, field: String) throws(EmailFormatError) {
        if text.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" }) {
            throw EmailFormatError("\(field): must be one line; CR and LF are refused (they would inject headers)")
        }
    }

    /// RFC 5322 `Date`, e.g. `Sun, 22 Nov 2026 19:00:00 +0900`.
    public static func date(_ date: Date, zone: TimeZone) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = zone
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        return formatter.string(from: date)
    }
}

/// A checked email address: `local@domain`, ASCII, the domain made of LDH labels with a dot.
public struct EmailAddress: Sendable, Hashable {
    public let local: String
    public let domain: String
    public var text: String { "\(local)@\(domain)" }

    public static func parse(_ value: String, field: String) throws(EmailFormatError) -> EmailAddress {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        guard let at = trimmed.lastIndex(of: "@") else { throw EmailFormatError("\(field): '\(trimmed.prefix(80))' is not an email address (no @domain)") }
        let local = String(trimmed[..<at])
        let domain = String(trimmed[trimmed.index(after: at)...]).lowercased()
        let allowedLocal = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.!#$%&'*+/=?^_`{|}~-")
        guard !local.isEmpty, local.count <= 64, local.unicodeScalars.allSatisfy(allowedLocal.contains), !local.hasPrefix("."), !local.hasSuffix("."),
            !local.contains("..")
        else { throw EmailFormatError("\(field): '\(trimmed.prefix(80))' has a local part an address cannot have") }
        guard isDomain(domain) else { throw EmailFormatError("\(field): '\(domain.prefix(80))' is not a domain name") }
        return EmailAddress(local: local, domain: domain)
    }

    /// LDH labels of 1–63 characters, at least two, not starting or ending with a hyphen, 253 at most.
    public static func isDomain(_ text: String) -> Bool {
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyz0123456789-")
        return text.count <= 253 && labels.count >= 2 && labels.allSatisfy { label in
            !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.unicodeScalars.allSatisfy { allowed.contains($0) }
        }
    }
}

/// An email field that cannot be used as given, naming the field.
public struct EmailFormatError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
