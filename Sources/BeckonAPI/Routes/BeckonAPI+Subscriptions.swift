import BeckonCore
import BeckonStorage
import Foundation
import HTTPTypes
import Hummingbird

extension BeckonAPI {
    /// Subscription groups: Beckon's `/beckon/v1/subscription_groups` objects and Braze's
    /// `/subscription/status/set`, `/v2/subscription/status/set` and `/subscription/status/get`.
    func addSubscriptionRoutes(to router: Router<BeckonRequestContext>) {
        let admin = APIPermission.beckonWorkspaceAdmin
        let users = self.users
        router.post("/beckon/v1/subscription_groups") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: admin)
            let group = try await Self.withGroupErrors {
                try await users.createSubscriptionGroup(
                    workspaceID: key.workspaceID, name: body["name"]?.stringValue ?? "", channel: body["channel"]?.stringValue ?? "")
            }
            return JSONResponse.make(Self.groupJSON(group, message: true), status: .created)
        }
        router.get("/beckon/v1/subscription_groups") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: admin)
            let groups = try await users.subscriptionGroups(workspaceID: key.workspaceID)
            return JSONResponse.make(.object(["message": .string("success"), "subscription_groups": .array(groups.map { Self.groupJSON($0, message: false) })]))
        }
        router.get("/beckon/v1/subscription_groups/{id}") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: admin)
            guard let group = try await users.subscriptionGroup(workspaceID: key.workspaceID, id: try context.parameters.require("id")) else {
                throw APIError(.notFound, "Not Found", errors: ["no subscription group with this id"])
            }
            return JSONResponse.make(Self.groupJSON(group, message: true))
        }
        router.put("/beckon/v1/subscription_groups/{id}") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: admin)
            if body["channel"] != nil { throw APIError.badRequest(["channel: cannot change; make a new group"]) }
            let id = try context.parameters.require("id")
            let group = try await Self.withGroupErrors {
                try await users.renameSubscriptionGroup(workspaceID: key.workspaceID, id: id, name: body["name"]?.stringValue ?? "")
            }
            return JSONResponse.make(Self.groupJSON(group, message: true))
        }
        router.delete("/beckon/v1/subscription_groups/{id}") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: admin)
            guard try await users.deleteSubscriptionGroup(workspaceID: key.workspaceID, id: try context.parameters.require("id")) else {
                throw APIError(.notFound, "Not Found", errors: ["no subscription group with this id"])
            }
            return JSONResponse.make(.object(["message": .string("success")]))
        }
        router.post("/subscription/status/set") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: APIPermission.subscriptionStatusSet)
            var problems: [String] = []
            guard let change = Self.subscriptionChange(body, path: "", idsKey: "external_id", emailsKey: "email", phonesKey: "phone", problems: &problems)
            else { throw APIError.badRequest(problems) }
            _ = try await users.setSubscription(
                workspaceID: key.workspaceID, groupID: change.group, state: change.state, users: change.users, source: "api")
            return JSONResponse.make(.object(["message": .string("success")]), status: .created)
        }
        router.post("/v2/subscription/status/set") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: APIPermission.subscriptionStatusSet)
            guard let list = body["subscription_groups"]?.arrayValue, !list.isEmpty, list.count <= 25 else {
                throw APIError.badRequest(["subscription_groups: is required: an array of 1 to 25 {\"subscription_group_id\", \"subscription_state\", \"external_ids\" | \"emails\" | \"phones\"}"])
            }
            var changes: [(group: String, state: String, users: [UserIdentifier])] = []
            var problems: [String] = []
            for (index, item) in list.enumerated() {
                if let change = Self.subscriptionChange(
                    item, path: "subscription_groups[\(index)].", idsKey: "external_ids", emailsKey: "emails", phonesKey: "phones", problems: &problems)
                {
                    changes.append(change)
                }
            }
            guard problems.isEmpty else { throw APIError.badRequest(problems) }
            for change in changes {
                _ = try await users.setSubscription(workspaceID: key.workspaceID, groupID: change.group, state: change.state, users: change.users, source: "api")
            }
            return JSONResponse.make(.object(["message": .string("success")]), status: .created)
        }
        router.get("/subscription/status/get") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: APIPermission.subscriptionStatusGet)
            let query = request.uri.queryParameters
            guard let group = query["subscription_group_id"].map(String.init), !group.isEmpty else {
                throw APIError.badRequest(["'subscription_group_id' is required"])
            }
            func values(_ name: String) -> [String] {
                (query[values: Substring(name)] + query[values: Substring(name + "[]")]).flatMap { $0.split(separator: ",") }.map(String.init)
            }
            let ids = values("external_id")
            let lookups: [(String, UserIdentifier)] = ids.isEmpty
                ? values("email").map { ($0, .email($0)) } + values("phone").map { ($0, .phone($0)) }
                : ids.map { ($0, .externalID($0)) }
            guard !lookups.isEmpty, lookups.count <= 50 else {
                throw APIError.badRequest(["give 1 to 50 of external_id (or email, or phone)"])
            }
            let states = try await users.subscriptionStates(workspaceID: key.workspaceID, groupID: group, users: lookups.map(\.1))
            var status: [String: JSONValue] = [:]
            for ((label, _), (_, state)) in zip(lookups, states) {
                status[label] = .string(state == "subscribed" ? "Subscribed" : state == "unsubscribed" ? "Unsubscribed" : "Unknown")
            }
            return JSONResponse.make(.object(["status": .object(status), "message": .string("success")]))
        }
    }

    /// One change of Braze's set endpoints: group, state and the users (external ids, else emails, else phones; at most 50).
    static func subscriptionChange(
        _ body: JSONValue, path: String, idsKey: String, emailsKey: String, phonesKey: String, problems: inout [String]
    ) -> (group: String, state: String, users: [UserIdentifier])? {
        let before = problems.count
        let group = body["subscription_group_id"]?.stringValue ?? ""
        if group.isEmpty { problems.append("\(path)subscription_group_id: is required") }
        let state = body["subscription_state"]?.stringValue ?? ""
        if !["subscribed", "unsubscribed"].contains(state) { problems.append("\(path)subscription_state: must be 'subscribed' or 'unsubscribed'") }
        func list(_ key: String) -> [String] {
            guard let value = body[key], !value.isNull else { return [] }
            if let single = value.stringValue { return [single] }
            guard let items = value.arrayValue, items.allSatisfy({ !($0.stringValue ?? "").isEmpty }) else {
                problems.append("\(path)\(key): must be an array of strings")
                return []
            }
            return items.compactMap(\.stringValue)
        }
        let ids = list(idsKey)
        let emails = list(emailsKey)
        let phones = list(phonesKey)
        if !emails.isEmpty, !phones.isEmpty { problems.append("\(path)\(emailsKey): give emails or phones, not both") }
        var users: [UserIdentifier] = ids.map { .externalID($0) }
        if ids.isEmpty { users = emails.map { .email($0) } + phones.map { .phone($0) } }
        if users.isEmpty { problems.append("\(path)\(idsKey): give 1 to 50 of \(idsKey), \(emailsKey) or \(phonesKey)") }
        if users.count > 50 { problems.append("\(path)\(idsKey): at most 50 users per request") }
        guard problems.count == before else { return nil }
        return (group, state, users)
    }

    static func withGroupErrors<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as SubscriptionGroupError {
            switch error.kind {
            case .invalid: throw APIError.badRequest([error.description])
            case .notFound: throw APIError(.notFound, "Not Found", errors: [error.description])
            case .conflict: throw APIError(.conflict, "Conflict", errors: [error.description])
            }
        }
    }

    static func groupJSON(_ group: SubscriptionGroup, message: Bool) -> JSONValue {
        var object: [String: JSONValue] = [
            "subscription_group_id": .string(group.id), "name": .string(group.name), "channel": .string(group.channel),
            "created_at": .string(BrazeTime.format(epochMilliseconds: group.createdAt)), "updated_at": .string(BrazeTime.format(epochMilliseconds: group.updatedAt)),
        ]
        if message { object["message"] = .string("success") }
        return .object(object)
    }
}
