import BeckonConnectedContent
import BeckonCore
import BeckonOutboundHTTP
import BeckonStorage
import Foundation
import Hummingbird

extension BeckonAPI {
    /// Connected Content credentials and settings, and the message activity log.
    func addConnectedContentRoutes(to router: Router<BeckonRequestContext>) {
        let admin = APIPermission.beckonConnectedContentAdmin
        router.post("/beckon/v1/connected_content/credentials") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: admin)
            let (name, credential) = try Self.credential(from: body)
            let created = try await connectedContent.credentials.save(workspaceID: key.workspaceID, name: name, credential: credential)
            let summary = try await connectedContent.credentials.summaries(workspaceID: key.workspaceID).first { $0.name == name }
            return JSONResponse.make(
                .object(["message": .string("success"), "credential": summary.map(Self.credentialJSON) ?? .null]),
                status: created ? .created : .ok)
        }
        router.get("/beckon/v1/connected_content/credentials") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: admin)
            let summaries = try await connectedContent.credentials.summaries(workspaceID: key.workspaceID)
            return JSONResponse.make(.object(["message": .string("success"), "credentials": .array(summaries.map(Self.credentialJSON))]))
        }
        router.delete("/beckon/v1/connected_content/credentials/{name}") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: admin)
            let name = try context.parameters.require("name")
            guard try await connectedContent.credentials.delete(workspaceID: key.workspaceID, name: name) else {
                throw APIError(.notFound, "Not Found", errors: ["no credential named '\(name)'"])
            }
            return JSONResponse.make(.object(["message": .string("success")]))
        }
        router.get("/beckon/v1/connected_content/settings") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: admin)
            let settings = try await connectedContent.settings.settings(workspaceID: key.workspaceID)
            return JSONResponse.make(settingsJSON(settings))
        }
        router.put("/beckon/v1/connected_content/settings") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: admin)
            let current = try await connectedContent.settings.settings(workspaceID: key.workspaceID)
            let updated = try Self.settings(from: body, current: current)
            try await connectedContent.settings.save(workspaceID: key.workspaceID, settings: updated)
            connectedContent.service.settingsChanged(workspaceID: key.workspaceID)
            return JSONResponse.make(settingsJSON(updated))
        }
        router.get("/beckon/v1/activity_log") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: APIPermission.beckonActivityLogRead)
            var query = ActivityLogQuery()
            let parameters = request.uri.queryParameters
            query.campaignID = parameters["campaign_id"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
            query.type = parameters["type"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
            query.externalID = parameters["external_id"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
            query.since = try Self.timeParameter(request, "since").map(BrazeTime.epochMilliseconds)
            query.limit = try Self.intParameter(request, "limit", default: 100, range: 1...1_000)
            if let text = parameters["cursor"], !text.isEmpty {
                guard let value = Int64(text), value > 0 else { throw APIError.badRequest(["'cursor' is not a cursor this endpoint returned"]) }
                query.beforeID = value
            }
            let entries = try await connectedContent.activityLog.entries(workspaceID: key.workspaceID, query: query)
            var body: [String: JSONValue] = ["message": .string("success"), "entries": .array(entries.map(Self.activityJSON))]
            if entries.count == query.limit, let last = entries.last?.id { body["next_cursor"] = .string(String(last)) }
            return JSONResponse.make(.object(body))
        }
    }

    private func settingsJSON(_ settings: ConnectedContentSettings) -> JSONValue {
        .object([
            "message": .string("success"),
            "settings": .object([
                "timeout_ms": .int(Int64(settings.timeoutMilliseconds)),
                "rate_limit_per_second": settings.rateLimitPerSecond.map { .int(Int64($0)) } ?? .null,
                "max_wait_ms": .int(Int64(settings.maxWaitMilliseconds)),
                "allowed_hosts": .array(settings.allowedHosts.map(JSONValue.string)),
            ]),
            "server_allowed_hosts": .array(connectedContent.serverAllowlist.entries.map { .string($0.description) }),
        ])
    }

    /// Applies the fields present in `body` to `current`; every bad field is reported at once.
    static func settings(from body: JSONValue, current: ConnectedContentSettings) throws -> ConnectedContentSettings {
        guard let object = body.objectValue else { throw APIError.badRequest(["the body must be a JSON object"]) }
        var settings = current
        var problems: [String] = []
        let known: Set<String> = ["timeout_ms", "rate_limit_per_second", "max_wait_ms", "allowed_hosts"]
        for name in object.keys.sorted() where !known.contains(name) {
            problems.append("\(name): unknown setting (known: \(known.sorted().joined(separator: ", ")))")
        }
        func integer(_ name: String, _ range: ClosedRange<Int>) -> Int? {
            guard let value = object[name], value != .null else { return nil }
            guard case .int(let number) = value, range.contains(Int(number)) else {
                problems.append("\(name): must be a whole number from \(range.lowerBound) to \(range.upperBound)")
                return nil
            }
            return Int(number)
        }
        if let value = integer("timeout_ms", ConnectedContentSettings.timeoutRange) { settings.timeoutMilliseconds = value }
        if let value = integer("max_wait_ms", ConnectedContentSettings.maxWaitRange) { settings.maxWaitMilliseconds = value }
        if object["rate_limit_per_second"] == .null {
            settings.rateLimitPerSecond = nil
        } else if let value = integer("rate_limit_per_second", ConnectedContentSettings.rateLimitRange) {
            settings.rateLimitPerSecond = value
        }
        if let hosts = object["allowed_hosts"] {
            if let list = hosts.arrayValue, list.count <= 200 {
                var parsed: [String] = []
                for (index, entry) in list.enumerated() {
                    guard let text = entry.stringValue else {
                        problems.append("allowed_hosts[\(index)]: must be a string such as 'api.example.com' or '10.0.0.5:8080'")
                        continue
                    }
                    do {
                        parsed.append(try HostAllowlist.parse(text).description)
                    } catch {
                        problems.append("allowed_hosts[\(index)]: \(error.description)")
                    }
                }
                settings.allowedHosts = parsed
            } else {
                problems.append("allowed_hosts: must be an array of at most 200 host or host:port strings")
            }
        }
        guard problems.isEmpty else { throw APIError.badRequest(problems) }
        return settings
    }

    /// Reads `{"name", "username", "password"}` (basic) or `{"name", "token"}` (bearer).
    static func credential(from body: JSONValue) throws -> (String, ConnectedContentCredential) {
        var problems: [String] = []
        let name = body["name"]?.stringValue ?? ""
        if name.isEmpty || name.count > 100 || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) }) {
            problems.append("name: is required: 1 to 100 letters, digits, '_', '-' or '.'")
        }
        let type = body["type"]?.stringValue ?? (body["token"] != nil ? "bearer" : "basic")
        func secret(_ field: String) -> String {
            guard let value = body[field]?.stringValue, !value.isEmpty, value.count <= 4_096 else {
                problems.append("\(field): is required for a \(type) credential (a string of 1 to 4096 characters)")
                return ""
            }
            if value.contains(where: { $0 == "\r" || $0 == "\n" }) { problems.append("\(field): must not contain line breaks") }
            return value
        }
        var credential = ConnectedContentCredential.bearer(token: "")
        switch type {
        case "basic":
            let username = secret("username")
            if username.contains(":") { problems.append("username: must not contain ':' (HTTP basic authentication)") }
            credential = .basic(username: username, password: secret("password"))
        case "bearer":
            credential = .bearer(token: secret("token"))
        default:
            problems.append("type: must be 'basic' or 'bearer'")
        }
        guard problems.isEmpty else { throw APIError.badRequest(problems) }
        return (name, credential)
    }

    static func credentialJSON(_ summary: ConnectedContentCredentialSummary) -> JSONValue {
        .object([
            "name": .string(summary.name), "type": .string(summary.kind), "username": summary.username.map(JSONValue.string) ?? .null,
            "created_at": .string(BrazeTime.format(epochMilliseconds: summary.createdAt)),
            "updated_at": .string(BrazeTime.format(epochMilliseconds: summary.updatedAt)),
        ])
    }

    static func activityJSON(_ entry: ActivityLogEntry) -> JSONValue {
        func optional(_ text: String?) -> JSONValue { text.map(JSONValue.string) ?? .null }
        return .object([
            "id": .string(String(entry.id ?? 0)), "time": .string(BrazeTime.format(epochMilliseconds: entry.time)),
            "type": .string(entry.type), "campaign_id": optional(entry.campaignID), "variant": optional(entry.variant),
            "external_id": optional(entry.externalID), "channel": optional(entry.channel), "url": optional(entry.url),
            "status": entry.status.map { .int(Int64($0)) } ?? .null,
            "duration_ms": entry.durationMilliseconds.map { .int(Int64($0)) } ?? .null, "reason": .string(entry.reason),
        ])
    }
}
