import BeckonMessaging
import BeckonCore
import BeckonStorage
import Foundation
import HTTPTypes
import Hummingbird

extension BeckonAPI {
    /// The most identifiers Braze's list-style user endpoints take per request.
    static let maxIdentifiersPerRequest = 50

    func addUserRoutes(to router: Router<BeckonRequestContext>) {
        router.post("/users/track") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: APIPermission.usersTrack)
            let parsed: TrackRequest
            do {
                parsed = try TrackRequest.parse(body, now: clock.now())
            } catch let error as RequestError {
                throw APIError.from(error)
            }
            let result = try await users.track(
                workspaceID: key.workspaceID, request: parsed, triggers: try await campaigns.triggers.interest(workspaceID: key.workspaceID))
            return Self.trackResponse(result, request: parsed)
        }
        router.post("/users/identify") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: APIPermission.usersIdentify)
            let items = try Self.identifyItems(body)
            let result = try await users.identify(workspaceID: key.workspaceID, items: items)
            return Self.processedResponse(counter: "aliases_processed", result)
        }
        router.post("/users/alias/new") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: APIPermission.usersAliasNew)
            let aliases = try Self.newAliases(body)
            let result = try await users.createAliases(workspaceID: key.workspaceID, aliases: aliases)
            return Self.processedResponse(counter: "aliases_processed", result)
        }
        router.post("/users/delete") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: APIPermission.usersDelete)
            let items = try Self.deleteItems(body)
            let deleted = try await users.delete(workspaceID: key.workspaceID, items: items)
            return JSONResponse.make(.object(["message": .string("success"), "deleted": .int(Int64(deleted))]), status: .created)
        }
        router.post("/users/export/ids") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: APIPermission.usersExportIds)
            let query = try Self.exportQuery(body)
            let result = try await users.export(workspaceID: key.workspaceID, query: query)
            var response: [String: JSONValue] = ["message": .string("success"), "users": .array(result.users)]
            if !result.invalidUserIDs.isEmpty { response["invalid_user_ids"] = .array(result.invalidUserIDs.map(JSONValue.string)) }
            return JSONResponse.make(.object(response))
        }
    }

    /// Braze's `/users/track` answer: counters for the arrays sent, per-object errors, 201; a 400
    /// when every object was rejected.
    static func trackResponse(_ result: TrackResult, request: TrackRequest) -> Response {
        AppMetrics.ingested("attributes", result.attributesProcessed)
        AppMetrics.ingested("events", result.eventsProcessed)
        AppMetrics.ingested("purchases", result.purchasesProcessed)
        for array in ["attributes", "events", "purchases"] {
            AppMetrics.rejected(array, result.errors.filter { $0.inputArray == array }.count)
        }
        var body: [String: JSONValue] = ["message": .string("success")]
        if request.hadAttributes { body["attributes_processed"] = .int(Int64(result.attributesProcessed)) }
        if request.hadEvents { body["events_processed"] = .int(Int64(result.eventsProcessed)) }
        if request.hadPurchases { body["purchases_processed"] = .int(Int64(result.purchasesProcessed)) }
        let errors = result.errors.map { error -> JSONValue in
            .object(["type": .string(error.type), "input_array": .string(error.inputArray), "index": .int(Int64(error.index))])
        }
        if !errors.isEmpty { body["errors"] = .array(errors) }
        let processed = result.attributesProcessed + result.eventsProcessed + result.purchasesProcessed
        if processed == 0, !errors.isEmpty {
            body["message"] = .string("Bad Request")
            return JSONResponse.make(.object(body), status: .badRequest)
        }
        return JSONResponse.make(.object(body), status: .created)
    }

    static func processedResponse(counter: String, _ result: IdentityResult) -> Response {
        var body: [String: JSONValue] = ["message": .string("success"), counter: .int(Int64(result.processed))]
        if !result.errors.isEmpty { body["errors"] = .array(result.errors.map(JSONValue.string)) }
        return JSONResponse.make(.object(body), status: .created)
    }

    // MARK: Body parsing

    static func objectArray(_ body: JSONValue, _ field: String) throws -> [JSONValue] {
        guard let value = body[field], !value.isNull else { return [] }
        guard let elements = value.arrayValue else {
            throw APIError.badRequest(["'\(field)' must be an array, got \(value.typeName)"])
        }
        return elements
    }

    static func requireObject(_ body: JSONValue) throws {
        guard body.objectValue != nil else { throw APIError.badRequest(["the body must be a JSON object"]) }
    }

    static func checkCount(_ count: Int) throws {
        guard count <= maxIdentifiersPerRequest else {
            throw APIError(
                .badRequest, "The max number of ids per request was exceeded",
                errors: ["\(count) identifiers sent; at most \(maxIdentifiersPerRequest) are allowed"])
        }
    }

    static func prioritization(_ value: JSONValue?, path: String) throws -> [Prioritization] {
        guard let value, !value.isNull else { return [] }
        guard let elements = value.arrayValue else { throw APIError.badRequest(["'\(path)' must be an array"]) }
        var rules: [Prioritization] = []
        for element in elements {
            guard let text = element.stringValue, let rule = Prioritization(rawValue: text) else {
                throw APIError.badRequest([
                    "'\(path)' values must be identified, unidentified, most_recently_updated or least_recently_updated"
                ])
            }
            rules.append(rule)
        }
        if rules.contains(.identified) && rules.contains(.unidentified) {
            throw APIError.badRequest(["'\(path)' may hold only one of 'identified' and 'unidentified'"])
        }
        return rules
    }

    static func externalID(_ value: JSONValue?, path: String) throws -> String {
        guard let id = value?.stringValue, !id.isEmpty, id.count <= 512 else {
            throw APIError.badRequest(["'\(path)' is required and must be a non-empty string"])
        }
        return id
    }

    static func identifyItems(_ body: JSONValue) throws -> [IdentifyRequestItem] {
        try requireObject(body)
        let aliases = try objectArray(body, "aliases_to_identify")
        let emails = try objectArray(body, "emails_to_identify")
        let phones = try objectArray(body, "phone_numbers_to_identify")
        guard !(aliases.isEmpty && emails.isEmpty && phones.isEmpty) else {
            throw APIError.badRequest(["one of 'aliases_to_identify', 'emails_to_identify' or 'phone_numbers_to_identify' is required"])
        }
        try checkCount(aliases.count + emails.count + phones.count)
        var items: [IdentifyRequestItem] = []
        for (index, element) in aliases.enumerated() {
            let path = "aliases_to_identify[\(index)]"
            let id = try externalID(element["external_id"], path: "\(path).external_id")
            guard let aliasValue = element["user_alias"] else { throw APIError.badRequest(["'\(path).user_alias' is required"]) }
            switch UserAlias.parse(aliasValue, field: "\(path).user_alias") {
            case .success(let alias): items.append(IdentifyRequestItem(externalID: id, identifier: .alias(alias)))
            case .failure(let error): throw APIError.badRequest([error.description])
            }
        }
        for (index, element) in emails.enumerated() {
            let path = "emails_to_identify[\(index)]"
            let id = try externalID(element["external_id"], path: "\(path).external_id")
            guard let email = element["email"]?.stringValue, Email.isValid(email) else {
                throw APIError.badRequest(["'\(path).email' must be a valid email address"])
            }
            let rules = try prioritization(element["prioritization"], path: "\(path).prioritization")
            items.append(IdentifyRequestItem(externalID: id, identifier: .email(Email.normalize(email)), prioritization: rules))
        }
        for (index, element) in phones.enumerated() {
            let path = "phone_numbers_to_identify[\(index)]"
            let id = try externalID(element["external_id"], path: "\(path).external_id")
            guard let phone = element["phone"]?.stringValue, !phone.isEmpty else {
                throw APIError.badRequest(["'\(path).phone' is required"])
            }
            let rules = try prioritization(element["prioritization"], path: "\(path).prioritization")
            items.append(IdentifyRequestItem(externalID: id, identifier: .phone(Phone.normalize(phone)), prioritization: rules))
        }
        return items
    }

    static func newAliases(_ body: JSONValue) throws -> [NewAlias] {
        try requireObject(body)
        let elements = try objectArray(body, "user_aliases")
        guard !elements.isEmpty else { throw APIError.badRequest(["'user_aliases' is required and must not be empty"]) }
        try checkCount(elements.count)
        return try elements.enumerated().map { index, element in
            let path = "user_aliases[\(index)]"
            let alias: UserAlias
            switch UserAlias.parse(element, field: path) {
            case .success(let parsed): alias = parsed
            case .failure(let error): throw APIError.badRequest([error.description])
            }
            var externalID: String?
            if let value = element["external_id"], !value.isNull {
                externalID = try Self.externalID(value, path: "\(path).external_id")
            }
            return NewAlias(alias: alias, externalID: externalID)
        }
    }

    static func deleteItems(_ body: JSONValue) throws -> [DeleteRequestItem] {
        try requireObject(body)
        var items: [DeleteRequestItem] = []
        for (index, value) in try objectArray(body, "external_ids").enumerated() {
            items.append(DeleteRequestItem(identifier: .externalID(try externalID(value, path: "external_ids[\(index)]"))))
        }
        for (index, value) in try objectArray(body, "braze_ids").enumerated() {
            items.append(DeleteRequestItem(identifier: .brazeID(try externalID(value, path: "braze_ids[\(index)]"))))
        }
        for (index, value) in try objectArray(body, "user_aliases").enumerated() {
            switch UserAlias.parse(value, field: "user_aliases[\(index)]") {
            case .success(let alias): items.append(DeleteRequestItem(identifier: .alias(alias)))
            case .failure(let error): throw APIError.badRequest([error.description])
            }
        }
        for (index, value) in try objectArray(body, "email_addresses").enumerated() {
            let path = "email_addresses[\(index)]"
            guard let email = value["email"]?.stringValue, Email.isValid(email) else {
                throw APIError.badRequest(["'\(path).email' must be a valid email address"])
            }
            let rules = try prioritization(value["prioritization"], path: "\(path).prioritization")
            items.append(DeleteRequestItem(identifier: .email(Email.normalize(email)), prioritization: rules))
        }
        for (index, value) in try objectArray(body, "phone_numbers").enumerated() {
            guard let phone = value.stringValue, !phone.isEmpty else {
                throw APIError.badRequest(["'phone_numbers[\(index)]' must be a phone number string"])
            }
            items.append(DeleteRequestItem(identifier: .phone(Phone.normalize(phone)), prioritization: [.mostRecentlyUpdated]))
        }
        guard !items.isEmpty else {
            throw APIError.badRequest([
                "one of 'external_ids', 'user_aliases', 'braze_ids', 'email_addresses' or 'phone_numbers' is required"
            ])
        }
        try checkCount(items.count)
        return items
    }

    static func exportQuery(_ body: JSONValue) throws -> ExportQuery {
        try requireObject(body)
        var query = ExportQuery()
        for (index, value) in try objectArray(body, "external_ids").enumerated() {
            query.externalIDs.append(try externalID(value, path: "external_ids[\(index)]"))
        }
        for (index, value) in try objectArray(body, "user_aliases").enumerated() {
            switch UserAlias.parse(value, field: "user_aliases[\(index)]") {
            case .success(let alias): query.aliases.append(alias)
            case .failure(let error): throw APIError.badRequest([error.description])
            }
        }
        try checkCount(query.externalIDs.count + query.aliases.count)
        func single(_ field: String) throws -> String? {
            guard let value = body[field], !value.isNull else { return nil }
            guard let text = value.stringValue, !text.isEmpty else {
                throw APIError.badRequest(["'\(field)' must be a single non-empty string"])
            }
            return text
        }
        query.brazeID = try single("braze_id")
        query.email = try single("email_address")
        query.phone = try single("phone")
        query.deviceID = try single("device_id")
        if query.externalIDs.isEmpty && query.aliases.isEmpty && query.brazeID == nil && query.email == nil
            && query.phone == nil && query.deviceID == nil
        {
            throw APIError.badRequest([
                "one of 'external_ids', 'user_aliases', 'braze_id', 'email_address', 'phone' or 'device_id' is required"
            ])
        }
        if let fields = body["fields_to_export"], !fields.isNull {
            guard let names = fields.arrayValue?.compactMap(\.stringValue), names.count == fields.arrayValue?.count else {
                throw APIError.badRequest(["'fields_to_export' must be an array of field names"])
            }
            let unknown = names.filter { !ExportField.all.contains($0) }
            guard unknown.isEmpty else {
                throw APIError.badRequest(["'fields_to_export' has unknown fields: \(unknown.joined(separator: ", "))"])
            }
            query.fields = Set(names)
        }
        return query
    }
}
