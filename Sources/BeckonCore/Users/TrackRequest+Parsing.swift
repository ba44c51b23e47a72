import Foundation

/// Braze's limits on what one `/users/track` object may carry.
public struct TrackLimits: Sendable {
    /// Longest string value and key, in characters.
    public var maxStringLength = 255
    /// Elements kept in an array attribute; older values are dropped first beyond it.
    public var maxArrayLength = 25
    /// Hard cap on an array attribute as sent (Braze's configurable ceiling).
    public var maxArrayLengthAccepted = 100
    /// Bytes of a nested object or array of objects.
    public var maxObjectBytes = 100 * 1024
    /// Bytes of an event or purchase properties object containing arrays or objects.
    public var maxPropertiesBytes = 50 * 1024
    /// Largest purchase quantity.
    public var maxQuantity = 100

    public init() {}
}

extension TrackRequest {
    /// Validates a decoded `/users/track` body.
    ///
    /// - Parameters:
    ///   - body: the decoded JSON body.
    ///   - now: the current time; times in the future are clamped to it, as Braze does.
    /// - Throws: `RequestError` when the body as a whole is unusable (not an object, an array over
    ///   75 objects, a top-level field of the wrong type). Per-object problems are returned in `errors`.
    public static func parse(_ body: JSONValue, now: Date, limits: TrackLimits = TrackLimits()) throws -> TrackRequest {
        guard let object = body.objectValue else {
            throw RequestError("Bad Request", ["the body must be a JSON object"])
        }
        var request = TrackRequest()
        let nowMillis = BrazeTime.epochMilliseconds(now)
        let known: Set<String> = ["attributes", "events", "purchases", "api_key"]
        for key in object.keys.sorted() where !known.contains(key) {
            throw RequestError("Bad Request", ["'\(key)' is not a field of /users/track"])
        }
        func array(_ name: String) throws -> [JSONValue]? {
            guard let value = object[name], !value.isNull else { return nil }
            guard let elements = value.arrayValue else {
                throw RequestError("Bad Request", ["'\(name)' must be an array, got \(value.typeName)"])
            }
            if elements.count > TrackRequest.maxObjectsPerArray {
                throw RequestError(
                    "Max Input Length Exceeded",
                    ["'\(name)' has \(elements.count) objects; at most \(TrackRequest.maxObjectsPerArray) are allowed"])
            }
            return elements
        }
        let attributes = try array("attributes")
        let events = try array("events")
        let purchases = try array("purchases")
        if attributes == nil && events == nil && purchases == nil {
            throw RequestError("Bad Request", ["at least one of 'attributes', 'events' or 'purchases' is required"])
        }
        let parser = TrackObjectParser(limits: limits, nowMillis: nowMillis)
        /// Validates each object of one array, keeping the valid ones and reporting the others by index.
        func validate<T>(_ elements: [JSONValue], _ name: String, _ check: (JSONValue, Int) -> Result<T, FieldError>) -> [T] {
            var valid: [T] = []
            for (index, element) in elements.enumerated() {
                switch check(element, index) {
                case .success(let object): valid.append(object)
                case .failure(let error): request.errors.append(TrackItemError(type: error.description, inputArray: name, index: index))
                }
            }
            return valid
        }
        request.hadAttributes = attributes != nil
        request.hadEvents = events != nil
        request.hadPurchases = purchases != nil
        request.attributes = validate(attributes ?? [], "attributes", parser.attributeUpdate)
        request.events = validate(events ?? [], "events", parser.event)
        request.purchases = validate(purchases ?? [], "purchases", parser.purchase)
        return request
    }
}

/// Validates single `/users/track` objects; every check names the field it failed on.
public struct TrackObjectParser: Sendable {
    let limits: TrackLimits
    let nowMillis: Int64

    public init(limits: TrackLimits, nowMillis: Int64) {
        self.limits = limits
        self.nowMillis = nowMillis
    }

    static let identifierKeys: Set<String> = ["external_id", "user_alias", "braze_id", "_update_existing_only"]

    /// The `_update_existing_only` flag, with Braze's default: update-only for aliases, upsert otherwise.
    func updateExistingOnly(_ object: [String: JSONValue], identifier: UserIdentifier, forceAliasUpdateOnly: Bool)
        -> Result<Bool, FieldError>
    {
        if case .alias = identifier, forceAliasUpdateOnly { return .success(true) }
        guard let value = object["_update_existing_only"], !value.isNull else {
            if case .alias = identifier { return .success(true) }
            return .success(false)
        }
        guard case .bool(let flag) = value else {
            return .failure(FieldError("_update_existing_only", "must be a boolean, got \(value.typeName)"))
        }
        return .success(flag)
    }

    /// Validates one attributes object.
    public func attributeUpdate(_ value: JSONValue, index: Int) -> Result<AttributeUpdate, FieldError> {
        guard let object = value.objectValue else {
            return .failure(FieldError("attributes[\(index)]", "must be an object, got \(value.typeName)"))
        }
        let identifier: UserIdentifier
        switch UserIdentifier.resolve(in: object) {
        case .success(let resolved): identifier = resolved
        case .failure(let error): return .failure(error)
        }
        let updateOnly: Bool
        switch updateExistingOnly(object, identifier: identifier, forceAliasUpdateOnly: false) {
        case .success(let flag): updateOnly = flag
        case .failure(let error): return .failure(error)
        }
        var update = AttributeUpdate(index: index, identifier: identifier, updateExistingOnly: updateOnly)
        if let merge = object["_merge_objects"], !merge.isNull {
            guard case .bool(let flag) = merge else {
                return .failure(FieldError("_merge_objects", "must be a boolean, got \(merge.typeName)"))
            }
            update.mergeObjects = flag
        }
        if let flag = object["push_token_import"], !flag.isNull, flag != .bool(true), flag != .bool(false) {
            return .failure(FieldError("push_token_import", "must be a boolean, got \(flag.typeName)"))
        }
        for key in object.keys.sorted() {
            guard let field = object[key] else { continue }
            if Self.identifierKeys.contains(key) || key == "_merge_objects" || key == "push_token_import" || key == "api_key" {
                continue
            }
            if let error = apply(key: key, value: field, identifier: identifier, to: &update) {
                return .failure(error)
            }
        }
        return .success(update)
    }

    private func apply(key: String, value: JSONValue, identifier: UserIdentifier, to update: inout AttributeUpdate)
        -> FieldError?
    {
        if let field = ProfileField(rawValue: key) {
            switch profileValue(field, value) {
            case .success(let normalized): update.profile[field] = .some(normalized)
            case .failure(let error): return error
            }
            return nil
        }
        switch key {
        case "subscription_groups":
            switch subscriptionGroups(value) {
            case .success(let groups): update.subscriptionGroups = groups
            case .failure(let error): return error
            }
        case "push_tokens":
            switch pushTokens(value) {
            case .success(let tokens): update.pushTokens = tokens
            case .failure(let error): return error
            }
        case "current_location":
            if value.isNull {
                update.extras["current_location"] = .null
                return nil
            }
            guard let longitude = value["longitude"]?.numberValue, let latitude = value["latitude"]?.numberValue,
                (-180...180).contains(longitude), (-90...90).contains(latitude)
            else {
                return FieldError("current_location", "must be {\"longitude\": -180…180, \"latitude\": -90…90}")
            }
            update.lastCoordinates = (longitude, latitude)
        case _ where ProfileExtraField.times.contains(key):
            if value.isNull {
                update.extras[key] = .null
            } else if let text = value.stringValue, let date = BrazeTime.parse(text) {
                update.extras[key] = .string(BrazeTime.format(date))
            } else {
                return FieldError(key, "must be a time (ISO 8601), got \(describe(value))")
            }
        case _ where ProfileExtraField.booleans.contains(key):
            guard value.isNull || { if case .bool = value { return true } else { return false } }() else {
                return FieldError(key, "must be a boolean, got \(value.typeName)")
            }
            update.extras[key] = value
        case _ where ProfileExtraField.objects.contains(key):
            guard value.isNull || value.objectValue != nil else {
                return FieldError(key, "must be an object, got \(value.typeName)")
            }
            update.extras[key] = value
        case "bio":
            return nil
        default:
            switch customAttribute(name: key, value: value) {
            case .success(let operation): update.custom.append(CustomAttributeChange(name: key, operation: operation))
            case .failure(let error): return error
            }
        }
        return nil
    }

    /// Validates and normalises a standard profile field; `nil` means remove.
    func profileValue(_ field: ProfileField, _ value: JSONValue) -> Result<String?, FieldError> {
        if value.isNull { return .success(nil) }
        guard let text = value.stringValue else {
            return .failure(FieldError(field.rawValue, "must be a string, got \(value.typeName)"))
        }
        guard text.count <= limits.maxStringLength else {
            return .failure(FieldError(field.rawValue, "is longer than \(limits.maxStringLength) characters"))
        }
        switch field {
        case .firstName, .lastName, .homeCity, .imageURL:
            return .success(text)
        case .email:
            guard Email.isValid(text) else { return .failure(FieldError("email", "is not a valid email address")) }
            return .success(Email.normalize(text))
        case .phone:
            guard !text.trimmingCharacters(in: .whitespaces).isEmpty else {
                return .failure(FieldError("phone", "must not be empty"))
            }
            return .success(Phone.normalize(text))
        case .country:
            return .success(CountryCode.normalize(text))
        case .language:
            let code = text.lowercased()
            guard code.count == 2 || (code.count == 5 && code.dropFirst(2).first == "-"),
                code.prefix(2).allSatisfy({ $0.isASCII && $0.isLetter })
            else {
                return .failure(FieldError("language", "must be an ISO-639-1 code such as 'ko', got '\(text)'"))
            }
            return .success(String(code.prefix(2)))
        case .timeZone:
            guard TimeZone(identifier: text) != nil else {
                return .failure(FieldError("time_zone", "must be an IANA time zone such as 'Asia/Seoul', got '\(text)'"))
            }
            return .success(text)
        case .gender:
            let normalized = Gender.normalize(text)
            guard let normalized else {
                return .failure(FieldError("gender", "must be one of M, F, O, N, P, got '\(text)'"))
            }
            return .success(normalized)
        case .dob:
            guard text.utf8.count == 10, BrazeTime.parse(text) != nil, text.dropFirst(4).first == "-" else {
                return .failure(FieldError("dob", "must be a date 'YYYY-MM-DD', got '\(text)'"))
            }
            return .success(text)
        case .emailSubscribe, .pushSubscribe:
            guard ["opted_in", "subscribed", "unsubscribed"].contains(text) else {
                return .failure(
                    FieldError(field.rawValue, "must be one of opted_in, subscribed, unsubscribed, got '\(text)'"))
            }
            return .success(text)
        }
    }

    func subscriptionGroups(_ value: JSONValue) -> Result<[SubscriptionGroupChange], FieldError> {
        guard let elements = value.arrayValue else {
            return .failure(FieldError("subscription_groups", "must be an array, got \(value.typeName)"))
        }
        var groups: [SubscriptionGroupChange] = []
        for (position, element) in elements.enumerated() {
            let path = "subscription_groups[\(position)]"
            guard let id = element["subscription_group_id"]?.stringValue, !id.isEmpty else {
                return .failure(FieldError("\(path).subscription_group_id", "is required and must be a string"))
            }
            guard let state = element["subscription_state"]?.stringValue, ["subscribed", "unsubscribed"].contains(state)
            else {
                return .failure(FieldError("\(path).subscription_state", "must be 'subscribed' or 'unsubscribed'"))
            }
            groups.append(SubscriptionGroupChange(groupID: id, state: state))
        }
        return .success(groups)
    }

    func pushTokens(_ value: JSONValue) -> Result<[PushTokenRegistration], FieldError> {
        guard let elements = value.arrayValue else {
            return .failure(FieldError("push_tokens", "must be an array, got \(value.typeName)"))
        }
        var tokens: [PushTokenRegistration] = []
        for (position, element) in elements.enumerated() {
            let path = "push_tokens[\(position)]"
            guard let appID = element["app_id"]?.stringValue, !appID.isEmpty else {
                return .failure(FieldError("\(path).app_id", "is required and must be a string"))
            }
            guard let token = element["token"]?.stringValue, !token.isEmpty, token.utf8.count <= 4096 else {
                return .failure(FieldError("\(path).token", "is required and must be a string of at most 4096 bytes"))
            }
            let deviceID = element["device_id"]?.stringValue
            let platform = element["platform"]?.stringValue ?? PushPlatform.guess(token: token)
            guard PushPlatform.all.contains(platform) else {
                return .failure(FieldError("\(path).platform", "must be one of ios, android, web"))
            }
            tokens.append(
                PushTokenRegistration(
                    appID: appID, token: token, deviceID: deviceID, platform: platform, authorization: "authorized"))
        }
        return .success(tokens)
    }

    /// Validates one event object.
    public func event(_ value: JSONValue, index: Int) -> Result<TrackedEvent, FieldError> {
        guard let object = value.objectValue else {
            return .failure(FieldError("events[\(index)]", "must be an object, got \(value.typeName)"))
        }
        let identifier: UserIdentifier
        switch UserIdentifier.resolve(in: object) {
        case .success(let resolved): identifier = resolved
        case .failure(let error): return .failure(error)
        }
        let updateOnly: Bool
        switch updateExistingOnly(object, identifier: identifier, forceAliasUpdateOnly: true) {
        case .success(let flag): updateOnly = flag
        case .failure(let error): return .failure(error)
        }
        guard let nameValue = object["name"], !nameValue.isNull else {
            return .failure(FieldError("name", "is required"))
        }
        guard let name = nameValue.stringValue else {
            return .failure(FieldError("name", "must be a string, got \(nameValue.typeName)"))
        }
        guard !name.trimmingCharacters(in: .whitespaces).isEmpty else {
            return .failure(FieldError("name", "must not be empty"))
        }
        guard name.count <= limits.maxStringLength else {
            return .failure(FieldError("name", "is longer than \(limits.maxStringLength) characters"))
        }
        let time: Int64
        switch requiredTime(object["time"]) {
        case .success(let millis): time = millis
        case .failure(let error): return .failure(error)
        }
        let appID: String?
        switch optionalString(object["app_id"], field: "app_id") {
        case .success(let id): appID = id
        case .failure(let error): return .failure(error)
        }
        let properties: [String: JSONValue]?
        switch self.properties(object["properties"]) {
        case .success(let props): properties = props
        case .failure(let error): return .failure(error)
        }
        return .success(
            TrackedEvent(
                index: index, identifier: identifier, updateExistingOnly: updateOnly, name: name, timeMillis: time,
                appID: appID, properties: properties))
    }

    /// Validates one purchase object.
    public func purchase(_ value: JSONValue, index: Int) -> Result<TrackedPurchase, FieldError> {
        guard let object = value.objectValue else {
            return .failure(FieldError("purchases[\(index)]", "must be an object, got \(value.typeName)"))
        }
        let identifier: UserIdentifier
        switch UserIdentifier.resolve(in: object) {
        case .success(let resolved): identifier = resolved
        case .failure(let error): return .failure(error)
        }
        let updateOnly: Bool
        switch updateExistingOnly(object, identifier: identifier, forceAliasUpdateOnly: true) {
        case .success(let flag): updateOnly = flag
        case .failure(let error): return .failure(error)
        }
        guard let productID = object["product_id"]?.stringValue else {
            return .failure(FieldError("product_id", "is required and must be a string"))
        }
        guard !productID.isEmpty, productID.count <= limits.maxStringLength else {
            return .failure(FieldError("product_id", "must be 1 to \(limits.maxStringLength) characters"))
        }
        guard let currencyText = object["currency"]?.stringValue else {
            return .failure(FieldError("currency", "is required and must be an ISO-4217 code such as 'KRW'"))
        }
        let currency = currencyText.uppercased()
        guard CurrencyCode.iso4217.contains(currency) else {
            return .failure(FieldError("currency", "must be an ISO-4217 code such as 'KRW', got '\(currencyText)'"))
        }
        guard let priceValue = object["price"], !priceValue.isNull else {
            return .failure(FieldError("price", "is required"))
        }
        guard let price = priceValue.numberValue else {
            return .failure(FieldError("price", "must be a number, got \(priceValue.typeName)"))
        }
        guard price.isFinite else { return .failure(FieldError("price", "must be a finite number")) }
        var quantity = 1
        if let quantityValue = object["quantity"], !quantityValue.isNull {
            switch quantityValue {
            case .int(let value) where value >= 1 && value <= Int64(limits.maxQuantity):
                quantity = Int(value)
            case .double(let value) where value == value.rounded() && value >= 1 && value <= Double(limits.maxQuantity):
                quantity = Int(value)
            default:
                return .failure(
                    FieldError("quantity", "must be a whole number from 1 to \(limits.maxQuantity), got \(describe(quantityValue))"))
            }
        }
        let time: Int64
        switch requiredTime(object["time"]) {
        case .success(let millis): time = millis
        case .failure(let error): return .failure(error)
        }
        let appID: String?
        switch optionalString(object["app_id"], field: "app_id") {
        case .success(let id): appID = id
        case .failure(let error): return .failure(error)
        }
        let properties: [String: JSONValue]?
        switch self.properties(object["properties"]) {
        case .success(let props): properties = props
        case .failure(let error): return .failure(error)
        }
        return .success(
            TrackedPurchase(
                index: index, identifier: identifier, updateExistingOnly: updateOnly, productID: productID,
                currency: currency, price: price, quantity: quantity, timeMillis: time, appID: appID,
                properties: properties))
    }

    func requiredTime(_ value: JSONValue?) -> Result<Int64, FieldError> {
        guard let value, !value.isNull else { return .failure(FieldError("time", "is required")) }
        guard let text = value.stringValue else {
            return .failure(FieldError("time", "must be an ISO 8601 string, got \(value.typeName)"))
        }
        guard let date = BrazeTime.parse(text) else {
            return .failure(FieldError("time", "is not a valid time: '\(text.prefix(64))'"))
        }
        return .success(min(BrazeTime.epochMilliseconds(date), nowMillis))
    }

    func optionalString(_ value: JSONValue?, field: String) -> Result<String?, FieldError> {
        guard let value, !value.isNull else { return .success(nil) }
        guard let text = value.stringValue else {
            return .failure(FieldError(field, "must be a string, got \(value.typeName)"))
        }
        guard text.count <= limits.maxStringLength else {
            return .failure(FieldError(field, "is longer than \(limits.maxStringLength) characters"))
        }
        return .success(text)
    }

    /// Validates an event or purchase `properties` object (reference §2.5).
    func properties(_ value: JSONValue?) -> Result<[String: JSONValue]?, FieldError> {
        guard let value, !value.isNull else { return .success(nil) }
        guard let object = value.objectValue else {
            return .failure(FieldError("properties", "must be an object, got \(value.typeName)"))
        }
        var nested = false
        for (key, element) in object {
            let path = "properties.\(key)"
            guard !key.isEmpty, key.count <= limits.maxStringLength else {
                return .failure(FieldError("properties", "keys must be 1 to \(limits.maxStringLength) characters"))
            }
            guard !key.hasPrefix("$") else {
                return .failure(FieldError(path, "keys must not start with '$'"))
            }
            if let error = checkPropertyValue(element, path: path, insideArray: false) { return .failure(error) }
            if element.arrayValue != nil || element.objectValue != nil { nested = true }
        }
        if nested, value.encodedString().utf8.count > limits.maxPropertiesBytes {
            return .failure(FieldError("properties", "is larger than \(limits.maxPropertiesBytes / 1024) KB"))
        }
        return .success(object)
    }

    private func checkPropertyValue(_ value: JSONValue, path: String, insideArray: Bool) -> FieldError? {
        switch value {
        case .null, .bool, .int: return nil
        case .double(let number):
            return number.isFinite ? nil : FieldError(path, "must be a finite number")
        case .string(let text):
            return text.count <= limits.maxStringLength
                ? nil : FieldError(path, "is longer than \(limits.maxStringLength) characters")
        case .array(let elements):
            for (position, element) in elements.enumerated() {
                if let error = checkPropertyValue(element, path: "\(path)[\(position)]", insideArray: true) {
                    return error
                }
            }
            return nil
        case .object(let members):
            for (key, element) in members {
                guard !key.isEmpty, !key.hasPrefix("$") else {
                    return FieldError("\(path).\(key)", "keys must be non-empty and must not start with '$'")
                }
                if let error = checkPropertyValue(element, path: "\(path).\(key)", insideArray: insideArray) {
                    return error
                }
            }
            return nil
        }
    }

    /// Validates a custom attribute value or operation (reference §2.2.2, §2.2.4).
    func customAttribute(name: String, value: JSONValue) -> Result<CustomAttributeOperation, FieldError> {
        guard !name.isEmpty, name.count <= limits.maxStringLength else {
            return .failure(FieldError(name, "custom attribute names must be 1 to \(limits.maxStringLength) characters"))
        }
        guard !name.hasPrefix("$") else {
            return .failure(FieldError(name, "custom attribute names must not start with '$'"))
        }
        switch value {
        case .null:
            return .success(.remove)
        case .bool, .int:
            return .success(.set(value))
        case .double(let number):
            return number.isFinite ? .success(.set(value)) : .failure(FieldError(name, "must be a finite number"))
        case .string(let text):
            guard text.count <= limits.maxStringLength else {
                return .failure(FieldError(name, "is longer than \(limits.maxStringLength) characters"))
            }
            return .success(.set(value))
        case .array(let elements):
            return arrayAttribute(name: name, elements: elements)
        case .object(let members):
            return objectAttribute(name: name, members: members)
        }
    }

    private func arrayAttribute(name: String, elements: [JSONValue]) -> Result<CustomAttributeOperation, FieldError> {
        if elements.contains(where: { $0.objectValue != nil }) {
            for (position, element) in elements.enumerated() {
                guard let members = element.objectValue else {
                    return .failure(FieldError("\(name)[\(position)]", "an array of objects may only hold objects"))
                }
                if let error = checkNestedObject(members, path: "\(name)[\(position)]") { return .failure(error) }
            }
            guard JSONValue.array(elements).encodedString().utf8.count <= limits.maxObjectBytes else {
                return .failure(FieldError(name, "is larger than \(limits.maxObjectBytes / 1024) KB"))
            }
            return .success(.set(.array(elements)))
        }
        switch scalarArray(elements, path: name) {
        case .success(let values): return .success(.set(.array(Array(values.suffix(limits.maxArrayLength)))))
        case .failure(let error): return .failure(error)
        }
    }

    /// Checks scalar array elements and deduplicates them, keeping each value's last position.
    func scalarArray(_ elements: [JSONValue], path: String) -> Result<[JSONValue], FieldError> {
        guard elements.count <= limits.maxArrayLengthAccepted else {
            return .failure(FieldError(path, "has \(elements.count) elements; at most \(limits.maxArrayLengthAccepted) are allowed"))
        }
        var result: [JSONValue] = []
        for (position, element) in elements.enumerated() {
            switch element {
            case .string(let text) where text.count > limits.maxStringLength:
                return .failure(FieldError("\(path)[\(position)]", "is longer than \(limits.maxStringLength) characters"))
            case .double(let number) where !number.isFinite:
                return .failure(FieldError("\(path)[\(position)]", "must be a finite number"))
            case .string, .int, .double, .bool:
                result.removeAll { $0 == element }
                result.append(element)
            default:
                return .failure(FieldError("\(path)[\(position)]", "array elements must be strings, numbers or booleans"))
            }
        }
        return .success(result)
    }

    private func objectAttribute(name: String, members: [String: JSONValue]) -> Result<CustomAttributeOperation, FieldError> {
        let keys = Set(members.keys)
        if keys == ["inc"] {
            guard case .int(let amount) = members["inc"] else {
                return .failure(FieldError("\(name).inc", "must be a whole number"))
            }
            return .success(.increment(amount))
        }
        if !keys.isEmpty, keys.isSubset(of: ["add", "remove"]) {
            var add: [JSONValue] = []
            var remove: [JSONValue] = []
            for operation in ["add", "remove"] {
                guard let value = members[operation], !value.isNull else { continue }
                guard let elements = value.arrayValue else {
                    return .failure(FieldError("\(name).\(operation)", "must be an array, got \(value.typeName)"))
                }
                switch scalarArray(elements, path: "\(name).\(operation)") {
                case .success(let values): if operation == "add" { add = values } else { remove = values }
                case .failure(let error): return .failure(error)
                }
            }
            return .success(.modifyArray(add: add, remove: remove))
        }
        if !keys.isEmpty, keys.isSubset(of: ["$add", "$update", "$remove"]) {
            return objectArrayOperations(name: name, members: members)
        }
        if let error = checkNestedObject(members, path: name) { return .failure(error) }
        guard JSONValue.object(members).encodedString().utf8.count <= limits.maxObjectBytes else {
            return .failure(FieldError(name, "is larger than \(limits.maxObjectBytes / 1024) KB"))
        }
        return .success(.set(.object(members)))
    }

    private func objectArrayOperations(name: String, members: [String: JSONValue]) -> Result<CustomAttributeOperation, FieldError> {
        var add: [JSONValue] = []
        var updates: [ObjectArrayUpdate] = []
        var removes: [ObjectArrayMatch] = []
        if let value = members["$add"] {
            guard let elements = value.arrayValue else {
                return .failure(FieldError("\(name).$add", "must be an array of objects"))
            }
            for (position, element) in elements.enumerated() {
                guard let object = element.objectValue else {
                    return .failure(FieldError("\(name).$add[\(position)]", "must be an object"))
                }
                if let error = checkNestedObject(object, path: "\(name).$add[\(position)]") { return .failure(error) }
            }
            add = elements
        }
        func match(_ element: JSONValue, path: String) -> Result<ObjectArrayMatch, FieldError> {
            guard let key = element["$identifier_key"]?.stringValue, !key.isEmpty else {
                return .failure(FieldError("\(path).$identifier_key", "is required and must be a string"))
            }
            guard let value = element["$identifier_value"], !value.isNull else {
                return .failure(FieldError("\(path).$identifier_value", "is required"))
            }
            return .success(ObjectArrayMatch(key: key, value: value))
        }
        if let value = members["$update"] {
            guard let elements = value.arrayValue else {
                return .failure(FieldError("\(name).$update", "must be an array"))
            }
            for (position, element) in elements.enumerated() {
                let path = "\(name).$update[\(position)]"
                let matched: ObjectArrayMatch
                switch match(element, path: path) {
                case .success(let found): matched = found
                case .failure(let error): return .failure(error)
                }
                guard let newObject = element["$new_object"]?.objectValue else {
                    return .failure(FieldError("\(path).$new_object", "is required and must be an object"))
                }
                if let error = checkNestedObject(newObject, path: "\(path).$new_object") { return .failure(error) }
                updates.append(ObjectArrayUpdate(match: matched, newObject: newObject))
            }
        }
        if let value = members["$remove"] {
            guard let elements = value.arrayValue else {
                return .failure(FieldError("\(name).$remove", "must be an array"))
            }
            for (position, element) in elements.enumerated() {
                switch match(element, path: "\(name).$remove[\(position)]") {
                case .success(let found): removes.append(found)
                case .failure(let error): return .failure(error)
                }
            }
        }
        return .success(.modifyObjectArray(add: add, update: updates, remove: removes))
    }

    /// Nested object rules: keys without spaces, `.` or `$` (except `$time` wrappers), strings ≤ 255, valid `$time`s.
    func checkNestedObject(_ members: [String: JSONValue], path: String) -> FieldError? {
        for (key, value) in members {
            let child = "\(path).\(key)"
            guard !key.isEmpty, key.count <= limits.maxStringLength, !key.contains(" "), !key.contains("."),
                !key.hasPrefix("$")
            else {
                return FieldError(child, "nested keys must be 1 to 255 characters without spaces, '.' or '$'")
            }
            if let error = checkNestedValue(value, path: child) { return error }
        }
        return nil
    }

    private func checkNestedValue(_ value: JSONValue, path: String) -> FieldError? {
        switch value {
        case .string(let text):
            return text.count <= limits.maxStringLength
                ? nil : FieldError(path, "is longer than \(limits.maxStringLength) characters")
        case .double(let number):
            return number.isFinite ? nil : FieldError(path, "must be a finite number")
        case .array(let elements):
            for (position, element) in elements.enumerated() {
                if let error = checkNestedValue(element, path: "\(path)[\(position)]") { return error }
            }
            return nil
        case .object(let members):
            if members.keys.contains("$time") {
                guard members.count == 1, let text = members["$time"]?.stringValue, BrazeTime.parse(text) != nil else {
                    return FieldError("\(path).$time", "must be a valid time string")
                }
                return nil
            }
            return checkNestedObject(members, path: path)
        case .null, .bool, .int:
            return nil
        }
    }

    private func describe(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): return "'\(text.prefix(64))'"
        case .int(let number): return String(number)
        case .double(let number): return String(number)
        default: return value.typeName
        }
    }
}

/// Push platforms Beckon delivers to.
public enum PushPlatform {
    public static let all: Set<String> = ["ios", "android", "web"]

    /// APNs tokens are 64 hex characters; anything else sent without a platform is taken as FCM.
    public static func guess(token: String) -> String {
        token.utf8.count == 64 && token.allSatisfy(\.isHexDigit) ? "ios" : "android"
    }
}

/// Gender values Braze stores: M, F, O, N, P.
public enum Gender {
    public static func normalize(_ text: String) -> String? {
        switch text.lowercased() {
        case "m", "male": return "M"
        case "f", "female": return "F"
        case "o", "other": return "O"
        case "n", "not_applicable": return "N"
        case "p", "prefer_not_to_say": return "P"
        default: return nil
        }
    }
}

/// ISO-3166-1 alpha-2 codes, with a best-effort mapping of common country names (Braze maps names too).
public enum CountryCode {
    private static let names: [String: String] = [
        "korea": "KR", "south korea": "KR", "republic of korea": "KR", "대한민국": "KR", "한국": "KR",
        "japan": "JP", "china": "CN", "united states": "US", "usa": "US", "united kingdom": "GB", "uk": "GB",
        "germany": "DE", "france": "FR", "australia": "AU", "canada": "CA", "singapore": "SG", "taiwan": "TW",
        "vietnam": "VN", "thailand": "TH", "indonesia": "ID", "india": "IN",
    ]

    /// The alpha-2 code for `text`, or `nil` (stored as unknown) when it cannot be mapped.
    public static func normalize(_ text: String) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.count == 2, trimmed.allSatisfy({ $0.isASCII && $0.isLetter }) { return trimmed.uppercased() }
        return names[trimmed.lowercased()]
    }
}

/// ISO 4217 alphabetic currency codes accepted for purchases.
public enum CurrencyCode {
    public static let iso4217: Set<String> = [
        "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF", "BMD",
        "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE",
        "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF",
        "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS",
        "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD",
        "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR",
        "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK",
        "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD",
        "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VES", "VND", "VUV", "WST", "XAF", "XCD", "XOF", "XPF", "YER", "ZAR",
        "ZMW", "ZWL",
    ]
}
