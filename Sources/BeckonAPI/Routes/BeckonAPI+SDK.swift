import BeckonMessaging
import BeckonCore
import BeckonStorage
import HTTPTypes
import Hummingbird

extension BeckonAPI {
    /// `POST /sdk/v1/data`: what app SDKs call, authenticated by the workspace's app identifier
    /// (`X-Beckon-App-Id` header or `app_id` in the body), never by a REST key.
    func addSDKRoutes(to router: Router<BeckonRequestContext>) {
        router.post("/sdk/v1/data") { request, _ -> Response in
            let body = try await RequestBody.json(request, maxBytes: configuration.maxBodyBytes)
            guard let appID = request.headers[.beckonAppID] ?? body["app_id"]?.stringValue, !appID.isEmpty else {
                throw APIError.unauthorized("no app identifier: send 'X-Beckon-App-Id' or 'app_id'")
            }
            guard let workspace = try await workspaces.workspace(appID: appID) else {
                throw APIError.unauthorized("unknown app identifier '\(appID)'")
            }
            let batch: SDKBatch
            do {
                batch = try SDKBatch.parse(body, appID: appID, now: clock.now())
            } catch let error as RequestError {
                throw APIError.from(error)
            }
            let result = try await users.ingest(
                workspaceID: workspace.id, batch: batch, triggers: try await campaigns.triggers.interest(workspaceID: workspace.id))
            return Self.trackResponse(result, request: batch.track)
        }
    }

    /// `/beckon/v1/segmentable_properties`: which event properties get per-value aggregates.
    func addSegmentablePropertyRoutes(to router: Router<BeckonRequestContext>) {
        let permission = APIPermission.beckonWorkspaceAdmin
        router.get("/beckon/v1/segmentable_properties") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: permission)
            let properties = try await users.segmentableProperties(workspaceID: key.workspaceID)
            let list = properties.keys.sorted().flatMap { event in
                (properties[event] ?? []).map { JSONValue.object(["event_name": .string(event), "property": .string($0)]) }
            }
            return JSONResponse.make(.object(["message": .string("success"), "segmentable_properties": .array(list)]))
        }
        router.post("/beckon/v1/segmentable_properties") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: permission)
            let (event, property) = try Self.segmentableProperty(body)
            do {
                try await users.markSegmentable(workspaceID: key.workspaceID, eventName: event, property: property)
            } catch let error as AdminError {
                throw APIError.badRequest([error.description])
            }
            return JSONResponse.make(.object(["message": .string("success")]), status: .created)
        }
        router.delete("/beckon/v1/segmentable_properties") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: permission)
            let (event, property) = try Self.segmentableProperty(body)
            try await users.unmarkSegmentable(workspaceID: key.workspaceID, eventName: event, property: property)
            return JSONResponse.make(.object(["message": .string("success")]))
        }
    }

    static func segmentableProperty(_ body: JSONValue) throws -> (String, String) {
        guard let event = body["event_name"]?.stringValue, !event.isEmpty else {
            throw APIError.badRequest(["'event_name' is required and must be a string"])
        }
        guard let property = body["property"]?.stringValue, !property.isEmpty else {
            throw APIError.badRequest(["'property' is required and must be a string (dotted for nested properties)"])
        }
        return (event, property)
    }
}

extension HTTPField.Name {
    /// The header app SDKs send their app identifier in.
    static let beckonAppID = HTTPField.Name("X-Beckon-App-Id")!
    /// A client's key for retrying a send safely (`/campaigns/trigger/send`, `/messages/send`).
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
    /// Set on an answer replayed for a retried `Idempotency-Key`.
    static let idempotentReplayed = HTTPField.Name("Idempotent-Replayed")!
}
