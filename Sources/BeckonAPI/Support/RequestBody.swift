import BeckonCore
import HTTPTypes
import Hummingbird
import NIOCore

/// Reads and checks JSON request bodies: content type, size limit, syntax.
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
        do {
            return try buffer.withUnsafeReadableBytes { try JSONValue.parse($0) }
        } catch let error as JSONValueError {
            throw APIError.badRequest([error.description])
        }
    }
}
