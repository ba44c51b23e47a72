import BeckonChannels
import BeckonCore
import BeckonMessaging
import BeckonStorage
import Foundation
import Hummingbird

extension BeckonAPI {
    /// Email sending settings: `GET/PUT/DELETE /beckon/v1/email/settings`, `POST /beckon/v1/email/dkim`
    /// (a new key pair) and `GET /beckon/v1/email/dns` (the records to publish); secrets never returned.
    func addEmailRoutes(to router: Router<BeckonRequestContext>) {
        let admin = APIPermission.beckonWorkspaceAdmin
        let email = campaigns.email
        router.get("/beckon/v1/email/settings") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: admin)
            let settings = try await email.settings(workspaceID: key.workspaceID)
            return JSONResponse.make(.object(["message": .string("success"), "settings": settings?.settingsJSON ?? .null]))
        }
        router.put("/beckon/v1/email/settings") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: admin)
            let stored = try await email.settings(workspaceID: key.workspaceID)
            let parsed: (EmailSettings, warnings: [String])
            do {
                parsed = try EmailSettings.parse(body, stored: stored)
            } catch let error as EmailSettingsError {
                throw APIError.badRequest(error.problems)
            }
            try await email.save(workspaceID: key.workspaceID, parsed.0)
            return JSONResponse.make(.object([
                "message": .string("success"), "settings": parsed.0.settingsJSON, "warnings": .array(parsed.warnings.map(JSONValue.string)),
            ]))
        }
        router.delete("/beckon/v1/email/settings") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: admin)
            guard try await email.delete(workspaceID: key.workspaceID) else {
                throw APIError(.notFound, "Not Found", errors: ["email is not configured"])
            }
            return JSONResponse.make(.object(["message": .string("success")]))
        }
        router.post("/beckon/v1/email/dkim") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: admin)
            guard var settings = try await email.settings(workspaceID: key.workspaceID) else {
                throw APIError.badRequest(["store the email settings first (PUT /beckon/v1/email/settings): the key signs for the From domain"])
            }
            guard let object = body.objectValue else { throw APIError.badRequest(["the body must be a JSON object {\"domain\", \"selector\", \"algorithm\"}"]) }
            var problems: [String] = []
            for name in object.keys.sorted() where !["domain", "selector", "algorithm"].contains(name) {
                problems.append("\(name): unknown field (domain, selector, algorithm)")
            }
            let domain = object["domain"]?.stringValue?.lowercased() ?? settings.fromAddress.domain
            if !EmailAddress.isDomain(domain) { problems.append("domain: must be the signing domain, such as mail.example.com") }
            if let given = object["selector"]?.stringValue, !EmailSettings.isSelector(given.lowercased()) {
                problems.append("selector: must be a DNS label such as bk2026 (letters, digits, hyphens)")
            }
            let year = Calendar(identifier: .gregorian).component(.year, from: clock.now())
            let selector = object["selector"]?.stringValue?.lowercased() ?? "bk\(year)"
            let algorithm = object["algorithm"]?.stringValue ?? "rsa-sha256"
            var generated: DKIMKey?
            do {
                generated = try DKIMKey.generate(algorithm: algorithm)
            } catch let error as EmailFormatError {
                problems.append(error.description)
            }
            guard problems.isEmpty, let generated else { throw APIError.badRequest(problems) }
            settings.dkim = EmailSettings.DKIM(domain: domain, selector: selector, key: generated)
            try await email.save(workspaceID: key.workspaceID, settings)
            return JSONResponse.make(.object(["message": .string("success"), "settings": settings.settingsJSON]), status: .created)
        }
        router.get("/beckon/v1/email/dns") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: admin)
            guard let settings = try await email.settings(workspaceID: key.workspaceID) else {
                throw APIError(.notFound, "Not Found", errors: ["email is not configured (PUT /beckon/v1/email/settings)"])
            }
            return JSONResponse.make(.object(["message": .string("success"), "records": .array(settings.dnsRecords)]))
        }
    }
}
