import BeckonCore
import Hummingbird
import Logging

/// Turns every error that is not already an HTTP response into a logged, JSON 500 in Braze's shape.
///
/// Hummingbird's default for unknown errors is an empty 500; marketers' scripts and Braze
/// clients expect a JSON body with `message`.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as any HTTPResponseError {
            if let apiError = error as? APIError { return try apiError.response(from: request, context: context) }
            let status = error.status
            return JSONResponse.make(
                .object(["message": .string(status.reasonPhrase), "errors": .array([.string("\(error)")])]), status: status)
        } catch {
            context.logger.error("unhandled error", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            return JSONResponse.make(
                .object(["message": .string("Internal Server Error"), "errors": .array([.string("an internal error occurred; it was logged")])]),
                status: .internalServerError)
        }
    }
}
