import Foundation

/// A filter that cannot be used, naming the node (`filter.all[1].op`) and the problem.
public struct SegmentFilterError: Error, Sendable, Hashable, CustomStringConvertible {
    public let path: String
    public let problem: String

    public init(_ path: String, _ problem: String) {
        self.path = path
        self.problem = problem
    }

    public var description: String { "\(path): \(problem)" }
}

extension SegmentFilter {
    /// The most nodes one filter may have, so a filter can never make an unbounded query.
    public static let maxNodes = 200

    /// Parses and validates a filter tree.
    public static func parse(_ json: JSONValue, path: String = "filter") throws -> SegmentFilter {
        var budget = maxNodes
        return try parse(json, path: path, budget: &budget)
    }

    private static func parse(_ json: JSONValue, path: String, budget: inout Int) throws -> SegmentFilter {
        budget -= 1
        guard budget >= 0 else { throw SegmentFilterError(path, "the filter has more than \(maxNodes) nodes") }
        guard let node = json.objectValue else {
            throw SegmentFilterError(path, "must be an object, got \(json.typeName)")
        }
        func children(_ key: String) throws -> [SegmentFilter] {
            guard let list = node[key]?.arrayValue else { throw SegmentFilterError("\(path).\(key)", "must be an array of filters") }
            guard !list.isEmpty else { throw SegmentFilterError("\(path).\(key)", "must not be empty") }
            return try list.enumerated().map { index, child in try parse(child, path: "\(path).\(key)[\(index)]", budget: &budget) }
        }
        if node["all"] != nil { return .all(try children("all")) }
        if node["any"] != nil { return .any(try children("any")) }
        if let inner = node["not"] { return .not(try parse(inner, path: "\(path).not", budget: &budget)) }
        if node["attribute"] != nil { return .attribute(try attribute(node, path: path)) }
        if let name = node["event"] {
            guard let event = name.stringValue, !event.isEmpty else { throw SegmentFilterError("\(path).event", "must be an event name") }
            for which in [FirstOrLast.first, .last] {
                if let condition = node[which.rawValue] {
                    return .eventTime(name: event, which: which, condition: try timeCondition(condition, path: "\(path).\(which.rawValue)"))
                }
            }
            var whereClause: [String: JSONValue] = [:]
            if let value = node["where"], !value.isNull {
                guard let members = value.objectValue else { throw SegmentFilterError("\(path).where", "must be an object of property: value") }
                for (key, member) in members {
                    switch member {
                    case .string, .int, .double, .bool: whereClause[key] = member
                    default: throw SegmentFilterError("\(path).where.\(key)", "must be a string, number or boolean")
                    }
                }
            }
            return .event(
                name: event, where: whereClause, count: try count(node["count"], path: "\(path).count"),
                window: try window(node["within_last"], path: "\(path).within_last"))
        }
        if let product = node["purchase"] {
            guard let id = product.stringValue, !id.isEmpty else {
                throw SegmentFilterError("\(path).purchase", "must be a product id or \"*\"")
            }
            return .purchase(
                productID: id == "*" ? nil : id, count: try count(node["count"], path: "\(path).count"),
                window: try window(node["within_last"], path: "\(path).within_last"))
        }
        if let revenue = node["revenue"] {
            return .revenue(
                try number(revenue, path: "\(path).revenue"), window: try window(node["within_last"], path: "\(path).within_last"))
        }
        if let session = node["session"] {
            return .sessions(
                count: try count(session["count"], path: "\(path).session.count"),
                window: try window(session["within_last"], path: "\(path).session.within_last"))
        }
        if let used = node["last_used_app"] {
            return .lastUsedApp(try timeCondition(used, path: "\(path).last_used_app"))
        }
        if let push = node["push"], push["authorization"] != nil {
            var platforms = PushPlatform.all.sorted()
            if let platform = push["platform"]?.stringValue, platform != "any" {
                guard PushPlatform.all.contains(platform) else { throw SegmentFilterError("\(path).push.platform", "must be ios, android, web or any") }
                platforms = [platform]
            }
            let states = ["authorized", "provisional", "denied", "blocked"]
            let given = push["authorization"].flatMap { $0.arrayValue ?? [$0] } ?? []
            var authorizations: [String] = []
            for (index, value) in given.enumerated() {
                guard let state = value.stringValue, states.contains(state) else {
                    throw SegmentFilterError("\(path).push.authorization\(given.count > 1 ? "[\(index)]" : "")", "must be authorized, provisional, denied or blocked")
                }
                if !authorizations.contains(state) { authorizations.append(state) }
            }
            guard !authorizations.isEmpty else { throw SegmentFilterError("\(path).push.authorization", "must name at least one authorization") }
            return .pushToken(platforms: platforms, authorizations: authorizations)
        }
        if let opened = node["push_opened"] {
            guard let campaign = opened["campaign_id"]?.stringValue, !campaign.isEmpty else {
                throw SegmentFilterError("\(path).push_opened.campaign_id", "is required: the campaign whose push was opened")
            }
            return .pushOpened(campaignID: campaign, window: try window(opened["within_last"], path: "\(path).push_opened.within_last"))
        }
        if let group = node["subscription_group"] {
            guard let id = group["id"]?.stringValue, !id.isEmpty else {
                throw SegmentFilterError("\(path).subscription_group.id", "is required: the subscription group id")
            }
            let state = group["state"]?.stringValue ?? "subscribed"
            guard ["subscribed", "unsubscribed"].contains(state) else {
                throw SegmentFilterError("\(path).subscription_group.state", "must be subscribed or unsubscribed")
            }
            return .subscriptionGroup(id: id, subscribed: state == "subscribed")
        }
        if let push = node["push"] {
            let platform = push["platform"]?.stringValue ?? "any"
            guard platform == "any" || PushPlatform.all.contains(platform) else {
                throw SegmentFilterError("\(path).push.platform", "must be ios, android, web or any")
            }
            guard let state = PushState(rawValue: push["state"]?.stringValue ?? "any") else {
                throw SegmentFilterError("\(path).push.state", "must be opted_in, provisional or any")
            }
            return .push(platform: platform == "any" ? nil : platform, state: state)
        }
        if let segment = node["segment"] {
            guard let id = segment.stringValue, !id.isEmpty else { throw SegmentFilterError("\(path).segment", "must be a segment id") }
            return .segment(id)
        }
        if let cohort = node["cohort"] {
            guard let id = cohort.stringValue, !id.isEmpty else { throw SegmentFilterError("\(path).cohort", "must be a cohort id") }
            return .cohort(id)
        }
        if let bucket = node["random_bucket"] {
            return .randomBucket(try number(bucket, path: "\(path).random_bucket"))
        }
        throw SegmentFilterError(
            path,
            "unknown filter node; expected one of all, any, not, attribute, event, purchase, revenue, session, last_used_app, push, push_opened, subscription_group, segment, cohort, random_bucket"
        )
    }

    /// Parses `{"days": N}` (1–730) or `{"hours": N}`; `nil` when absent.
    public static func window(_ value: JSONValue?, path: String) throws -> TimeWindow? {
        guard let value, !value.isNull else { return nil }
        if let days = value["days"] {
            guard case .int(let count) = days, (1...730).contains(count) else {
                throw SegmentFilterError("\(path).days", "must be a whole number of days from 1 to 730")
            }
            return TimeWindow(milliseconds: count * 86_400_000)
        }
        if let hours = value["hours"] {
            guard case .int(let count) = hours, (1...(730 * 24)).contains(count) else {
                throw SegmentFilterError("\(path).hours", "must be a whole number of hours from 1 to 17520")
            }
            return TimeWindow(milliseconds: count * 3_600_000)
        }
        throw SegmentFilterError(path, "must be {\"days\": N} or {\"hours\": N}")
    }

    static func count(_ value: JSONValue?, path: String) throws -> CountCondition {
        guard let value, !value.isNull else { return .atLeastOnce }
        guard let opName = value["op"]?.stringValue, let op = CountCondition.Operator(rawValue: opName) else {
            throw SegmentFilterError("\(path).op", "must be one of eq, gt, gte, lt, lte")
        }
        guard case .int(let number)? = value["value"], number >= 0 else {
            throw SegmentFilterError("\(path).value", "must be a whole number ≥ 0")
        }
        return CountCondition(op: op, value: number)
    }

    static func number(_ value: JSONValue, path: String) throws -> NumberCondition {
        guard let opName = value["op"]?.stringValue, let op = NumberCondition.Operator(rawValue: opName) else {
            throw SegmentFilterError("\(path).op", "must be one of eq, ne, gt, gte, lt, lte, between")
        }
        if op == .between {
            guard let bounds = value["value"]?.arrayValue, bounds.count == 2, let low = bounds[0].numberValue,
                let high = bounds[1].numberValue, low <= high
            else { throw SegmentFilterError("\(path).value", "between needs [low, high] with low ≤ high") }
            return NumberCondition(op: op, value: low, upper: high)
        }
        guard let number = value["value"]?.numberValue, number.isFinite else {
            throw SegmentFilterError("\(path).value", "must be a number")
        }
        return NumberCondition(op: op, value: number, upper: nil)
    }

    static func timeCondition(_ value: JSONValue, path: String) throws -> TimeCondition {
        guard let opName = value["op"]?.stringValue else {
            throw SegmentFilterError("\(path).op", "must be one of before, after, within_last, more_than_ago")
        }
        switch opName {
        case "before", "after":
            guard let text = value["value"]?.stringValue, let date = BrazeTime.parse(text) else {
                throw SegmentFilterError("\(path).value", "must be an ISO 8601 time")
            }
            let millis = BrazeTime.epochMilliseconds(date)
            return opName == "before" ? .before(millis) : .after(millis)
        case "within_last", "more_than_ago":
            guard let window = try window(value["value"], path: "\(path).value") else {
                throw SegmentFilterError("\(path).value", "must be {\"days\": N} or {\"hours\": N}")
            }
            return opName == "within_last" ? .withinLast(window) : .moreThanAgo(window)
        default:
            throw SegmentFilterError("\(path).op", "unknown time operator '\(opName)'; use before, after, within_last or more_than_ago")
        }
    }

    static func attribute(_ node: [String: JSONValue], path: String) throws -> AttributeCondition {
        guard let name = node["attribute"]?.stringValue, !name.isEmpty else {
            throw SegmentFilterError("\(path).attribute", "must be an attribute name")
        }
        var standard: StandardSegmentAttribute?
        var customPath: String?
        if name.hasPrefix("custom.") {
            let custom = String(name.dropFirst("custom.".count))
            guard !custom.isEmpty, !custom.hasPrefix("."), !custom.hasSuffix("."), !custom.contains("..") else {
                throw SegmentFilterError("\(path).attribute", "'\(name)' is not a valid custom attribute path")
            }
            customPath = custom
        } else if let known = StandardSegmentAttribute(rawValue: name) {
            standard = known
        } else {
            throw SegmentFilterError(
                "\(path).attribute",
                "unknown attribute '\(name)'; use a standard attribute (\(StandardSegmentAttribute.allCases.map(\.rawValue).joined(separator: ", "))) or custom.NAME")
        }
        guard let opName = node["op"]?.stringValue, let op = AttributeCondition.Operator(rawValue: opName) else {
            throw SegmentFilterError("\(path).op", "unknown operator '\(node["op"]?.stringValue ?? "")'")
        }
        let value = node["value"] ?? .null
        if let standard {
            let allowed: Set<AttributeCondition.Operator> = standard.kind == .time
                ? [.before, .after, .withinLast, .moreThanAgo, .exists, .notExists]
                : [.eq, .ne, .in, .notIn, .contains, .notContains, .startsWith, .matches, .exists, .notExists, .blank, .notBlank]
            guard allowed.contains(op) else {
                throw SegmentFilterError(
                    "\(path).op", "'\(opName)' is not an operator for \(standard.kind.rawValue) attribute '\(name)'; use one of \(allowed.map(\.rawValue).sorted().joined(separator: ", "))")
            }
        }
        try checkValue(op: op, value: value, path: "\(path).value")
        return AttributeCondition(name: name, standard: standard, customPath: customPath, op: op, value: value)
    }

    private static func checkValue(op: AttributeCondition.Operator, value: JSONValue, path: String) throws {
        switch op {
        case .exists, .notExists, .blank, .notBlank:
            return
        case .eq, .ne:
            switch value {
            case .string, .int, .double, .bool: return
            default: throw SegmentFilterError(path, "must be a string, number or boolean")
            }
        case .in, .notIn, .includesAny, .includesAll, .includesNone:
            guard let list = value.arrayValue, !list.isEmpty, list.count <= 256,
                list.allSatisfy({ $0.stringValue != nil || $0.numberValue != nil })
            else { throw SegmentFilterError(path, "must be a list of 1 to 256 strings or numbers") }
        case .contains, .notContains, .startsWith:
            guard let text = value.stringValue, !text.isEmpty else { throw SegmentFilterError(path, "must be a non-empty string") }
        case .matches:
            guard let pattern = value.stringValue, !pattern.isEmpty, pattern.count <= 32_764 else {
                throw SegmentFilterError(path, "must be a regular expression")
            }
            do {
                _ = try NSRegularExpression(pattern: pattern, options: [.caseInsensitive])
            } catch {
                throw SegmentFilterError(path, "'\(pattern)' is not a valid regular expression")
            }
        case .gt, .gte, .lt, .lte:
            guard value.numberValue?.isFinite == true else { throw SegmentFilterError(path, "must be a number") }
        case .between:
            guard let bounds = value.arrayValue, bounds.count == 2, let low = bounds[0].numberValue, let high = bounds[1].numberValue,
                low <= high
            else { throw SegmentFilterError(path, "between needs [low, high] with low ≤ high") }
        case .sizeEq, .sizeGt, .sizeLt:
            guard case .int(let size) = value, size >= 0 else { throw SegmentFilterError(path, "must be a whole number ≥ 0") }
        case .before, .after:
            guard let text = value.stringValue, BrazeTime.parse(text) != nil else {
                throw SegmentFilterError(path, "must be an ISO 8601 time")
            }
        case .withinLast, .moreThanAgo:
            _ = try window(value, path: path)
        }
    }
}
