import BeckonChannels
import BeckonCore
import BeckonMessaging
import BeckonStorage
import Hummingbird

extension BeckonAPI {
    /// The workspace's SMS vendor: `GET`, `PUT`, `DELETE /beckon/v1/sms/vendor`; secrets are never returned.
    func addSMSRoutes(to router: Router<BeckonRequestContext>) {
        let admin = APIPermission.beckonWorkspaceAdmin
        let sms = campaigns.sms
        router.get("/beckon/v1/sms/vendor") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: admin)
            return JSONResponse.make(try await Self.smsVendorJSON(sms, workspaceID: key.workspaceID))
        }
        router.put("/beckon/v1/sms/vendor") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: admin)
            let vendor: SMSVendor
            do {
                vendor = try SMSVendor.parse(body)
            } catch let error as SMSVendorError {
                throw APIError.badRequest(error.problems)
            }
            try await sms.save(workspaceID: key.workspaceID, vendor: vendor)
            return JSONResponse.make(try await Self.smsVendorJSON(sms, workspaceID: key.workspaceID))
        }
        router.delete("/beckon/v1/sms/vendor") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: admin)
            guard try await sms.delete(workspaceID: key.workspaceID) else {
                throw APIError(.notFound, "Not Found", errors: ["no SMS vendor is configured"])
            }
            return JSONResponse.make(.object(["message": .string("success")]))
        }
    }

    static func smsVendorJSON(_ sms: SMSStore, workspaceID: Int64) async throws -> JSONValue {
        guard let summary = try await sms.summary(workspaceID: workspaceID) else {
            return .object(["message": .string("success"), "vendor": .null])
        }
        var vendor = summary.settings.objectValue ?? [:]
        vendor["type"] = .string(summary.type)
        vendor["paused"] = .bool(summary.pausedReason != nil)
        vendor["paused_reason"] = summary.pausedReason.map(JSONValue.string) ?? .null
        vendor["updated_at"] = .string(BrazeTime.format(epochMilliseconds: summary.updatedAt))
        return .object(["message": .string("success"), "vendor": .object(vendor)])
    }
}
