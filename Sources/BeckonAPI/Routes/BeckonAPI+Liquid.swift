import BeckonConnectedContent
import BeckonCore
import BeckonMessaging
import BeckonStorage
import Foundation
import Hummingbird
import Liquid

extension BeckonAPI {
    /// `POST /liquid/preview`: renders a template for a stored user (`external_id`) or an inline
    /// `user`, with extra context, and answers the output or structured errors.
    func addLiquidRoutes(to router: Router<BeckonRequestContext>) {
        router.post("/liquid/preview") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: APIPermission.beckonLiquidPreview)
            guard let source = body["template"]?.stringValue else {
                throw APIError.badRequest(["'template' is required and must be a string"])
            }
            if let extra = body["context"], !extra.isNull, extra.objectValue == nil {
                throw APIError.badRequest(["'context' must be an object"])
            }
            // The same context a send renders with: the messaging profile, not the export's.
            var renderContext = RenderContext(extra: body["context"]?.objectValue ?? [:])
            if let externalID = body["external_id"]?.stringValue {
                guard let userID = try await users.userID(workspaceID: key.workspaceID, identifier: .externalID(externalID)) else {
                    throw APIError(.notFound, "Not Found", errors: ["no user with external_id '\(externalID)'"])
                }
                let profiles = try await users.profiles(ids: [userID])
                if let unreadable = profiles.unreadable[userID] { throw StoredDataError(table: "users", row: "\(userID)", column: "profile", problem: unreadable) }
                renderContext.user = profiles[userID]
            } else if let user = body["user"] {
                guard user.objectValue != nil else { throw APIError.badRequest(["'user' must be an object"]) }
                renderContext.user = user
            }
            var environment = RenderEnvironment()
            environment.now = clock.now()
            environment.strict = body["strict"] == .bool(true)
            environment.fetcher = connectedContent.service.fetcher(
                for: ConnectedContentContext(workspaceID: key.workspaceID, externalID: body["external_id"]?.stringValue, channel: "preview"))
            if let blocks = body["content_blocks"]?.objectValue {
                for (name, value) in blocks { environment.contentBlocks[name] = value.stringValue ?? "" }
            }
            do {
                let template = try Template.parse(source, options: Template.ParseOptions(strict: environment.strict))
                let output = try await template.render(renderContext.liquid, environment: environment)
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
