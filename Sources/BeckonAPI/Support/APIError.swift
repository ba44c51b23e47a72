import BeckonCore
import HTTPTypes
import Hummingbird
import NIOCore

/// An error answered in Braze's shape: `{"message": "...", "errors": [...]}` with an HTTP status.
public struct APIError: HTTPResponseError, Sendable {
    public let status: HTTPResponse.Status
    public let message: String
    public let errors: [JSONValue]

    public init(_ status: HTTPResponse.Status, _ message: String, errors: [String] = []) {
        self.status = status
        self.message = message
        self.errors = errors.map(JSONValue.string)
    }

    public init(_ status: HTTPResponse.Status, _ message: String, structuredErrors: [JSONValue]) {
        self.status = status
        self.message = message
        self.errors = structuredErrors
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var body: [String: JSONValue] = ["message": .string(message)]
        if !errors.isEmpty { body["errors"] = .array(errors) }
        return JSONResponse.make(.object(body), status: status)
    }

    /// 401 `Unauthorized`: no key, an unknown key or a revoked one.
    static func unauthorized(_ detail: String) -> APIError { APIError(.unauthorized, "Unauthorized", errors: [detail]) }
    /// 403 `Access Denied`: the key lacks the endpoint's permission.
    static func accessDenied(_ detail: String) -> APIError { APIError(.forbidden, "Access Denied", errors: [detail]) }
    /// 400 `Bad Request` with details naming fields.
    static func badRequest(_ details: [String]) -> APIError { APIError(.badRequest, "Bad Request", errors: details) }

    /// Maps a core validation error to Braze's 400 shape.
    static func from(_ error: RequestError) -> APIError { APIError(.badRequest, error.message, errors: error.details) }
}

/// JSON responses, serialized by Beckon's own fast writer (sorted keys, compact).
enum JSONResponse {
    static func make(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: value.serialized())))
    }
}
