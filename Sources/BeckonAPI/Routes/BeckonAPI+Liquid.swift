import BeckonConnectedContent
import BeckonCore
import BeckonStorage
import Foundation
import Hummingbird
import Liquid

extension BeckonAPI {
    /// `POST /liquid/preview`: renders a template for a stored user (`external_id`) or an inline
    /// `user`, with extra context, and answers the output or structured errors.
    func addLiquidRoutes(to router: Router<BeckonRequestContext>) {
        router.post("/liquid/preview") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: "beckon.liquid.preview")
            guard let source = body["template"]?.stringValue else {
                throw APIError.badRequest(["'template' is required and must be a string"])
            }
            var data: [String: JSONValue] = body["context"]?.objectValue ?? [:]
            if let externalID = body["external_id"]?.stringValue {
                var query = ExportQuery()
                query.externalIDs = [externalID]
                guard let user = try await users.export(workspaceID: key.workspaceID, query: query).users.first else {
                    throw APIError(.notFound, "Not Found", errors: ["no user with external_id '\(externalID)'"])
                }
                data["user"] = user
            } else if let user = body["user"] {
                guard user.objectValue != nil else { throw APIError.badRequest(["'user' must be an object"]) }
                data["user"] = user
            }
            var environment = RenderEnvironment()
            environment.now = clock.now()
            environment.strict = body["strict"] == .bool(true)
            environment.fetcher = connectedContent.service.fetcher(
                for: ConnectedContentContext(workspaceID: key.workspaceID, externalID: body["external_id"]?.stringValue, channel: "preview"))
            if let blocks = body["content_blocks"]?.objectValue {
                for (name, value) in blocks { environment.contentBlocks[name] = value.stringValue ?? "" }
            }
            let liquidData = (try? LiquidValue(json: Data(JSONValue.object(data).serialized().utf8))) ?? .object(LiquidObject())
            do {
                let template = try Template.parse(source, options: Template.ParseOptions(strict: environment.strict))
                let output = try await template.render(BrazeContext.make(from: liquidData), environment: environment)
                return JSONResponse.make(.object(["message": .string("success"), "output": .string(output), "aborted": .bool(false)]))
            } catch let aborted as MessageAborted {
                return JSONResponse.make(.object([
                    "message": .string("success"), "aborted": .bool(true),
                    "abort_reason": .string(aborted.reason ?? "{% abort_message %} called"),
                ]))
            } catch let error as LiquidSyntaxError {
                throw APIError(.badRequest, "Bad Request", structuredErrors: [.object([
                    "type": .string("syntax"), "message": .string(error.message), "line": .int(Int64(error.line)),
                    "column": .int(Int64(error.column)),
                ])])
            } catch let error as LiquidRenderError {
                throw APIError(.badRequest, "Bad Request", structuredErrors: [.object([
                    "type": .string("render"), "message": .string(error.message), "line": .int(Int64(error.line)),
                ])])
            } catch let error as LiquidLimitError {
                throw APIError(.badRequest, "Bad Request", structuredErrors: [.object(["type": .string("limit"), "message": .string(error.message)])])
            }
        }
    }
}
