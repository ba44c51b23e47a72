import BeckonChannels
import BeckonCore
import BeckonMessaging
import BeckonStorage
import Hummingbird

extension BeckonAPI {
    /// Push credentials per workspace: APNs, FCM and Web Push (VAPID); secrets are never returned.
    func addPushRoutes(to router: Router<BeckonRequestContext>) {
        let admin = APIPermission.beckonWorkspaceAdmin
        let push = campaigns.push
        router.get("/beckon/v1/push") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: admin)
            return JSONResponse.make(try await Self.pushSummary(push, workspaceID: key.workspaceID))
        }
        router.put("/beckon/v1/push/apns") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: admin)
            try await push.save(workspaceID: key.workspaceID, apns: try await Self.checked { () throws(PushCredentialError) in try APNsCredentials.parse(body) })
            return JSONResponse.make(try await Self.pushSummary(push, workspaceID: key.workspaceID))
        }
        router.put("/beckon/v1/push/fcm") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: admin)
            try await push.save(workspaceID: key.workspaceID, fcm: try await Self.checked { () throws(PushCredentialError) in try FCMCredentials.parse(body) })
            return JSONResponse.make(try await Self.pushSummary(push, workspaceID: key.workspaceID))
        }
        router.post("/beckon/v1/push/web/vapid") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: admin)
            guard let object = body.objectValue else { throw APIError.badRequest(["the body must be a JSON object, such as {} or {\"rotate\": true}"]) }
            for name in object.keys.sorted() where name != "rotate" { throw APIError.badRequest(["\(name): unknown field (rotate)"]) }
            var rotate = false
            if let value = object["rotate"], !value.isNull {
                guard case .bool(let flag) = value else { throw APIError.badRequest(["rotate: must be true or false"]) }
                rotate = flag
            }
            let (pair, created) = try await push.createVAPID(workspaceID: key.workspaceID, rotate: rotate)
            return JSONResponse.make(Self.webJSON(pair), status: created ? .created : .ok)
        }
        router.get("/beckon/v1/push/web") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: admin)
            guard let pair = try await push.credentials(workspaceID: key.workspaceID).web else {
                throw APIError(.notFound, "Not Found", errors: ["no VAPID key pair yet (POST /beckon/v1/push/web/vapid)"])
            }
            return JSONResponse.make(Self.webJSON(pair))
        }
        router.put("/beckon/v1/push/web") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: admin)
            guard let object = body.objectValue else { throw APIError.badRequest(["the body must be a JSON object {\"subject\"}"]) }
            for name in object.keys.sorted() where name != "subject" { throw APIError.badRequest(["\(name): unknown field (subject)"]) }
            let subject = try await Self.checked { () throws(PushCredentialError) in try WebPushCredentials.validSubject(object["subject"]) }
            let pair = try await Self.checked { try await push.setVAPIDSubject(workspaceID: key.workspaceID, subject: subject) }
            return JSONResponse.make(Self.webJSON(pair))
        }
        for provider in PushProvider.allCases {
            router.delete("/beckon/v1/push/\(provider.rawValue)") { request, context -> Response in
                let key = try await authenticator.authorize(request, context: context, permission: admin)
                guard try await push.delete(workspaceID: key.workspaceID, provider: provider) else {
                    throw APIError(.notFound, "Not Found", errors: ["\(provider.displayName) is not configured"])
                }
                return JSONResponse.make(try await Self.pushSummary(push, workspaceID: key.workspaceID))
            }
        }
    }

    /// A credential error as a 400 naming the field.
    static func checked<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PushCredentialError {
            throw APIError.badRequest([error.description])
        }
    }

    static func webJSON(_ pair: WebPushCredentials) -> JSONValue {
        .object([
            "message": .string("success"), "vapid_public_key": .string(pair.publicKey),
            "subject": pair.subject.map(JSONValue.string) ?? .null,
        ])
    }

    static func pushSummary(_ push: PushStore, workspaceID: Int64) async throws -> JSONValue {
        var providers: [String: JSONValue] = [:]
        for summary in try await push.summaries(workspaceID: workspaceID) {
            var entry = summary.settings.objectValue ?? [:]
            entry["configured"] = .bool(true)
            entry["paused"] = .bool(summary.pausedReason != nil)
            if let reason = summary.pausedReason { entry["paused_reason"] = .string(reason) }
            if let at = summary.pausedAt { entry["paused_at"] = .string(BrazeTime.format(epochMilliseconds: at)) }
            entry["updated_at"] = .string(BrazeTime.format(epochMilliseconds: summary.updatedAt))
            providers[summary.provider == .web ? "web" : summary.provider.rawValue] = .object(entry)
        }
        for provider in PushProvider.allCases where providers[provider.rawValue] == nil {
            providers[provider.rawValue] = .object(["configured": .bool(false)])
        }
        return .object(["message": .string("success"), "push": .object(providers)])
    }
}
