import Foundation

/// An email as it goes over SMTP: headers in order, then `multipart/alternative` with the plain
/// text first and the HTML last, each UTF-8 in base64 lines of 76 characters (Korean text grows a
/// third, not three times as in quoted-printable); CRLF line ends throughout.
public struct MIMEMessage: Sendable {
    /// Header fields in order, values already encoded and folded (`EmailHeader`).
    public var headers: [(name: String, value: String)]
    public var plainText: String
    public var html: String?
    /// The multipart boundary (random by default; it cannot occur in base64 or in the headers).
    public var boundary: String

    public init(headers: [(name: String, value: String)], plainText: String, html: String?, boundary: String = MIMEMessage.randomBoundary()) {
        self.headers = headers
        self.plainText = plainText
        self.html = html
        self.boundary = boundary
    }

    public static func randomBoundary() -> String {
        "=_bk_" + (0..<12).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    /// The header block (each field `Name: value` CRLF) and the body, split as DKIM signs them.
    public var parts: (headers: [(name: String, value: String)], body: String) {
        var fields = headers
        fields.append(("MIME-Version", "1.0"))
        var body = ""
        if let html {
            fields.append(("Content-Type", "multipart/alternative; boundary=\"\(boundary)\""))
            body += "--\(boundary)\r\n" + Self.part(plainText, type: "text/plain")
            body += "--\(boundary)\r\n" + Self.part(html, type: "text/html")
            body += "--\(boundary)--\r\n"
        } else {
            fields.append(("Content-Type", "text/plain; charset=UTF-8"))
            fields.append(("Content-Transfer-Encoding", "base64"))
            body = Self.base64Lines(plainText)
        }
        return (fields, body)
    }

    /// The whole message, with `extraHeaders` (a DKIM signature) first.
    public func serialized(prepending extraHeaders: [(name: String, value: String)] = []) -> String {
        let (fields, body) = parts
        return (extraHeaders + fields).map { "\($0.name): \($0.value)\r\n" }.joined() + "\r\n" + body
    }

    static func part(_ text: String, type: String) -> String {
        "Content-Type: \(type); charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64Lines(text)
    }

    /// Base64 of the UTF-8 text (line ends made CRLF first), in lines of 76 characters, each ending CRLF.
    static func base64Lines(_ text: String) -> String {
        let normalized = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n").replacingOccurrences(of: "\n", with: "\r\n")
        let encoded = Data(normalized.utf8).base64EncodedString()
        var lines = ""
        var index = encoded.startIndex
        while index < encoded.endIndex {
            let end = encoded.index(index, offsetBy: 76, limitedBy: encoded.endIndex) ?? encoded.endIndex
            lines += encoded[index..<end] + "\r\n"
            index = end
        }
        return lines
    }
}
