import BeckonCore
import Foundation
import Liquid

/// What a campaign sends, to whom and when, as validated from its JSON. Stored as that JSON;
/// every dispatch keeps the definition it was made with, so editing an active campaign changes
/// future sends only.
public struct CampaignDefinition: Sendable {
    /// Who may receive it: the segments (all of them) and the filter, ANDed; empty means everyone.
    public struct Audience: Sendable, Hashable {
        public var segmentIDs: [String] = []
        public var filter: JSONValue?

        /// The combined filter, or `nil` for every user of the workspace.
        public var combinedFilter: SegmentFilter? {
            var parts: [SegmentFilter] = segmentIDs.map { .segment($0) }
            if let filter, let parsed = try? SegmentFilter.parse(filter) { parts.append(parsed) }
            if parts.isEmpty { return nil }
            return parts.count == 1 ? parts[0] : .all(parts)
        }
    }

    /// A webhook request; every string is a Liquid template.
    public struct WebhookMessage: Sendable, Hashable {
        public var url: String
        public var method: String
        public var headers: [String: String]
        public var body: String
    }

    /// One arm of the campaign: a share of the audience and its messages.
    public struct Variant: Sendable, Hashable {
        public var name: String
        public var percent: Int
        public var webhook: WebhookMessage
    }

    /// When the campaign sends.
    public enum Delivery: Sendable, Hashable {
        /// Once at `at` (UTC), or at that wall-clock time in each user's zone.
        case scheduled(at: Date, localTime: String?)
        /// Each `POST /campaigns/trigger/send` makes a dispatch.
        case apiTriggered

        public var type: String {
            switch self {
            case .scheduled: return "scheduled"
            case .apiTriggered: return "api_triggered"
            }
        }
    }

    public var name: String
    public var tags: [String]
    public var audience: Audience
    public var variants: [Variant]
    public var controlPercent: Int
    public var delivery: Delivery
    /// Messages per minute, spread evenly; `nil` is unpaced.
    public var rateLimitPerMinute: Int?
    /// The definition as JSON, as stored and answered.
    public var json: JSONValue

    public static let channels = ["webhook"]
    static let methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
}

/// A campaign request that cannot be used: every problem, each naming its field.
public struct CampaignDefinitionError: Error, Sendable, CustomStringConvertible {
    public let problems: [String]
    public var description: String { problems.joined(separator: "; ") }
}

extension CampaignDefinition {
    /// Parses and validates a campaign body. All problems are
    /// reported at once. Templates are parsed, so a syntax error names its field, line and column.
    public static func parse(_ body: JSONValue) throws(CampaignDefinitionError) -> CampaignDefinition {
        var problems: [String] = []
        guard let object = body.objectValue else { throw CampaignDefinitionError(problems: ["the body must be a JSON object"]) }
        let known: Set<String> = [
            "name", "tags", "audience", "messages", "variants", "control_percent", "delivery", "rate_limit_per_minute", "frequency_capped",
            "advertising", "conversion_events",
        ]
        for key in object.keys.sorted() where !known.contains(key) { problems.append("\(key): unknown field") }

        let name = object["name"]?.stringValue?.trimmingCharacters(in: .whitespaces) ?? ""
        if name.isEmpty || name.count > 200 { problems.append("name: is required: 1 to 200 characters") }
        var tags: [String] = []
        if let value = object["tags"] {
            if let list = value.arrayValue, list.allSatisfy({ $0.stringValue != nil }), list.count <= 50 {
                tags = list.compactMap(\.stringValue)
            } else {
                problems.append("tags: must be an array of at most 50 strings")
            }
        }

        var audience = Audience()
        if let value = object["audience"], !value.isNull {
            if let members = value.objectValue {
                for key in members.keys.sorted() where key != "segment_ids" && key != "filter" {
                    problems.append("audience.\(key): unknown field (segment_ids, filter)")
                }
                if let ids = members["segment_ids"] {
                    if let list = ids.arrayValue, list.allSatisfy({ $0.stringValue != nil }) {
                        audience.segmentIDs = list.compactMap(\.stringValue)
                    } else {
                        problems.append("audience.segment_ids: must be an array of segment ids")
                    }
                }
                if let filter = members["filter"], !filter.isNull {
                    do {
                        _ = try SegmentFilter.parse(filter, path: "audience.filter")
                        audience.filter = filter
                    } catch {
                        problems.append("\(error)")
                    }
                }
            } else {
                problems.append("audience: must be an object with segment_ids and/or filter")
            }
        }

        var controlPercent = 0
        if let value = object["control_percent"] {
            if case .int(let percent) = value, (0...99).contains(percent) { controlPercent = Int(percent) } else {
                problems.append("control_percent: must be a whole number from 0 to 99")
            }
        }
        var variants: [Variant] = []
        if let list = object["variants"] {
            if object["messages"] != nil { problems.append("messages: give messages inside each variant when variants are used") }
            if let items = list.arrayValue, !items.isEmpty, items.count <= 8 {
                for (index, item) in items.enumerated() {
                    let path = "variants[\(index)]"
                    let variantName = item["name"]?.stringValue ?? "Variant \(index + 1)"
                    guard case .int(let percent)? = item["percent"], (1...100).contains(percent) else {
                        problems.append("\(path).percent: is required: a whole number from 1 to 100")
                        continue
                    }
                    if let webhook = parseMessages(item["messages"], path: "\(path).messages", problems: &problems) {
                        variants.append(Variant(name: variantName, percent: Int(percent), webhook: webhook))
                    }
                }
                if variants.count == items.count, variants.map(\.percent).reduce(0, +) + controlPercent != 100 {
                    problems.append("variants: percents plus control_percent must add up to 100")
                }
                if Set(variants.map(\.name)).count != variants.count { problems.append("variants: names must be different") }
            } else {
                problems.append("variants: must be an array of 1 to 8 variants")
            }
        } else if let webhook = parseMessages(object["messages"], path: "messages", problems: &problems) {
            variants = [Variant(name: "Variant 1", percent: 100 - controlPercent, webhook: webhook)]
        }

        var delivery = Delivery.apiTriggered
        if let value = object["delivery"]?.objectValue {
            switch value["type"]?.stringValue {
            case "api_triggered":
                delivery = .apiTriggered
            case "scheduled":
                let localTime = value["in_local_time"] == .bool(true)
                guard let text = value["at"]?.stringValue else {
                    problems.append("delivery.at: is required: an ISO 8601 time")
                    break
                }
                if value["recurrence"] != nil, value["recurrence"] != .null {
                    problems.append("delivery.recurrence: recurring schedules are not supported yet; create one campaign per send")
                }
                if localTime {
                    guard let date = LocalTime.parse(text, in: TimeZone(identifier: "UTC")!) else {
                        problems.append("delivery.at: with in_local_time, give a time without a zone, such as 2025-07-01T10:00:00")
                        break
                    }
                    delivery = .scheduled(at: date, localTime: text)
                } else {
                    guard let date = BrazeTime.parse(text) else {
                        problems.append("delivery.at: must be an ISO 8601 time, got '\(text)'")
                        break
                    }
                    delivery = .scheduled(at: date, localTime: nil)
                }
            case "action_based":
                problems.append("delivery.type: action_based campaigns are not supported yet (scheduled or api_triggered)")
            default:
                problems.append("delivery.type: must be 'scheduled', 'action_based' or 'api_triggered'")
            }
        } else {
            problems.append("delivery: is required: {\"type\": \"scheduled\", \"at\": …} or {\"type\": \"api_triggered\"}")
        }

        var rateLimit: Int?
        if let value = object["rate_limit_per_minute"], !value.isNull {
            if case .int(let perMinute) = value, (1...1_000_000).contains(perMinute) { rateLimit = Int(perMinute) } else {
                problems.append("rate_limit_per_minute: must be a whole number from 1 to 1000000, or null")
            }
        }
        for flag in ["frequency_capped", "advertising"] {
            if let value = object[flag], value != .bool(false) {
                problems.append("\(flag): \(value == .bool(true) ? "is not supported yet" : "must be a boolean")")
            }
        }
        if let value = object["conversion_events"], value != .array([]) {
            problems.append("conversion_events: conversion tracking is not supported yet")
        }
        guard problems.isEmpty else { throw CampaignDefinitionError(problems: problems) }
        return CampaignDefinition(
            name: name, tags: tags, audience: audience, variants: variants, controlPercent: controlPercent, delivery: delivery,
            rateLimitPerMinute: rateLimit, json: body)
    }

    /// `{"webhook": {"url", "method", "headers", "body"}}` with every template parsed.
    static func parseMessages(_ value: JSONValue?, path: String, problems: inout [String]) -> WebhookMessage? {
        guard let messages = value?.objectValue, !messages.isEmpty else {
            problems.append("\(path): is required: {\"webhook\": {\"url\", \"method\", \"headers\", \"body\"}}")
            return nil
        }
        for channel in messages.keys.sorted() where !channels.contains(channel) {
            problems.append("\(path).\(channel): channel not available yet (available: \(channels.joined(separator: ", ")))")
        }
        guard let webhook = messages["webhook"]?.objectValue else {
            if messages["webhook"] != nil { problems.append("\(path).webhook: must be an object") }
            return nil
        }
        let before = problems.count
        func template(_ text: String, _ field: String) {
            do { _ = try Template.parse(text) } catch let error as LiquidSyntaxError {
                problems.append("\(path).webhook.\(field): Liquid syntax error at line \(error.line), column \(error.column): \(error.message)")
            } catch {
                problems.append("\(path).webhook.\(field): \(error)")
            }
        }
        let url = webhook["url"]?.stringValue ?? ""
        if url.isEmpty { problems.append("\(path).webhook.url: is required") } else { template(url, "url") }
        let method = (webhook["method"]?.stringValue ?? "POST").uppercased()
        if !methods.contains(method) { problems.append("\(path).webhook.method: must be one of \(methods.joined(separator: ", "))") }
        var headers: [String: String] = [:]
        if let value = webhook["headers"], !value.isNull {
            if let members = value.objectValue {
                for (name, headerValue) in members.sorted(by: { $0.key < $1.key }) {
                    guard let text = headerValue.stringValue else {
                        problems.append("\(path).webhook.headers.\(name): must be a string")
                        continue
                    }
                    template(text, "headers.\(name)")
                    headers[name] = text
                }
            } else {
                problems.append("\(path).webhook.headers: must be an object of strings")
            }
        }
        let body = webhook["body"]?.stringValue ?? ""
        if webhook["body"] != nil, webhook["body"]?.stringValue == nil { problems.append("\(path).webhook.body: must be a string") }
        template(body, "body")
        return problems.count == before ? WebhookMessage(url: url, method: method, headers: headers, body: body) : nil
    }
}

/// Wall-clock times without a zone (`2025-07-01T10:00:00`), for sends in each user's local time.
enum LocalTime {
    static func parse(_ text: String, in zone: TimeZone) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = zone
        for format in ["yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd'T'HH:mm"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }
}
