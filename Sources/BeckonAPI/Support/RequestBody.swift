import BeckonCore
import HTTPTypes
import Hummingbird
import NIOCore

/// Reads and checks JSON request bodies: content type, size limit, syntax, and no NUL characters
/// (`\u0000`), which neither PostgreSQL text nor any message channel can carry.
enum RequestBody {
    /// The body as JSON, or a Braze-shaped error naming the problem.
    static func json(_ request: Request, maxBytes: Int) async throws -> JSONValue {
        let contentType = request.headers[.contentType] ?? ""
        guard contentType.lowercased().hasPrefix("application/json") else {
            throw APIError(
                .unsupportedMediaType, "Unsupported Media Type",
                errors: ["'Content-Type' must be 'application/json', got '\(contentType.isEmpty ? "nothing" : contentType)'"])
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maxBytes)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw APIError(.contentTooLarge, "Payload Too Large", errors: ["the body is larger than \(maxBytes) bytes"])
        }
        guard buffer.readableBytes > 0 else { throw APIError.badRequest(["the body is empty; a JSON object is required"]) }
        let body: JSONValue
        do {
            body = try buffer.withUnsafeReadableBytes { try JSONValue.parse($0) }
        } catch let error as JSONValueError {
            throw APIError.badRequest([error.description])
        }
        if let path = nulPath(body, path: "") {
            throw APIError.badRequest(["'\(path.isEmpty ? "body" : path)' contains a NUL character (\\u0000), which Beckon cannot store or send"])
        }
        return body
    }

    /// The path of the first string (or object key) holding U+0000, if any.
    static func nulPath(_ value: JSONValue, path: String) -> String? {
        switch value {
        case .string(let text): return text.utf8.contains(0) ? path : nil
        case .array(let items):
            for (index, item) in items.enumerated() {
                if let found = nulPath(item, path: "\(path)[\(index)]") { return found }
            }
            return nil
        case .object(let members):
            for (key, member) in members.sorted(by: { $0.key < $1.key }) {
                let inner = path.isEmpty ? key : "\(path).\(key)"
                if key.utf8.contains(0) { return inner }
                if let found = nulPath(member, path: inner) { return found }
            }
            return nil
        default: return nil
        }
    }
}
