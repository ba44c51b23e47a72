import BeckonChannels
import BeckonCore
import Foundation

/// What a campaign sends, to whom and when, as validated from its JSON. Stored as that JSON;
/// every dispatch keeps the definition it was made with, so editing an active campaign changes
/// future sends only.
public struct CampaignDefinition: Sendable {
    /// Who may receive it: the segments (all of them) and the filter, ANDed; empty means everyone.
    public struct Audience: Sendable, Hashable {
        public var segmentIDs: [String] = []
        public var filter: JSONValue?

        /// The combined filter, or `nil` for every user of the workspace. A stored filter that no
        /// longer parses throws: the send fails rather than reach users the filter would exclude.
        public func combinedFilter() throws -> SegmentFilter? {
            var parts: [SegmentFilter] = segmentIDs.map { .segment($0) }
            if let filter { parts.append(try SegmentFilter.parse(filter)) }
            if parts.isEmpty { return nil }
            return parts.count == 1 ? parts[0] : .all(parts)
        }
    }

    /// One arm of the campaign: a share of the audience and its messages.
    public struct Variant: Sendable, Hashable {
        public var name: String
        public var percent: Int
        /// Channel name → that channel's message as written (validated by the channel).
        public var messages: [String: JSONValue]
        /// Channels tried in order (`channel_priority`): a user gets the first one that can reach
        /// them, and the next one when it finds their address dead. Channels not listed are sent as usual.
        public var channelPriority: [String] = []

        /// The channels this variant sends on, sorted.
        public var channels: [String] { messages.keys.sorted() }
    }

    /// When the campaign sends.
    public enum Delivery: Sendable, Hashable {
        /// Once at `at` (UTC), or at that wall-clock time in each user's zone.
        case scheduled(at: Date, localTime: String?)
        /// Each `POST /campaigns/trigger/send` makes a dispatch.
        case apiTriggered
        /// A user's event or purchase schedules the message for that user.
        case actionBased(ActionDelivery)

        public var type: String {
            switch self {
            case .scheduled: return "scheduled"
            case .apiTriggered: return "api_triggered"
            case .actionBased: return "action_based"
            }
        }
    }

    /// Something a user does that starts, cancels or converts a campaign.
    public enum Action: Sendable, Hashable {
        /// A custom event, with property values that must all match.
        case event(name: String, where: [String: JSONValue])
        /// A purchase, of one product or any.
        case purchase(productID: String?)
        /// An app session starting (SDK).
        case sessionStart
        /// The user entering a segment, noticed when their profile, events or purchases change.
        case enteredSegment(String)
        /// The user opening a push of a campaign (`nil`: of the campaign this action belongs to).
        case pushOpened(campaignID: String?)

        /// Whether an observed action is this action, for the campaign `campaignID` it belongs to.
        public func matches(_ observed: ObservedAction, campaignID: String) -> Bool {
            switch (self, observed.kind) {
            case (.event(let name, let conditions), .event(let observedName)):
                guard name == observedName else { return false }
                return conditions.allSatisfy { key, value in observed.properties[key] == value }
            case (.purchase(let productID), .purchase(let observedProduct)):
                return productID == nil || productID == observedProduct
            case (.sessionStart, .sessionStart):
                return true
            case (.pushOpened(let opened), .pushOpen(let observedCampaign)):
                return (opened ?? campaignID) == observedCampaign
            default:
                return false
            }
        }
    }

    /// How an action-based campaign waits and who it skips.
    public struct ActionDelivery: Sendable, Hashable {
        public var trigger: Action
        public var delay: Delay
        /// Any of these after the trigger cancels the message not yet sent.
        public var cancelIf: [Action]
        /// Days before a user may get the campaign again; `nil`: once ever.
        public var reeligibleAfterDays: Int?
    }

    /// The wait between the trigger and the send.
    public enum Delay: Sendable, Hashable {
        case seconds(Int)
        /// `afterDays` days later at `hour:minute` in the user's time zone.
        case atLocalTime(hour: Int, minute: Int, afterDays: Int)
    }

    /// A repeating schedule.
    public struct Recurrence: Sendable, Hashable {
        public var periodDays: Int
        /// The last send time allowed (for local-time sends, read as a wall-clock time).
        public var until: Date?
    }

    /// A conversion: the action within `windowSeconds` after a send.
    public struct ConversionEvent: Sendable, Hashable {
        public var action: Action
        public var windowSeconds: Int
    }

    public var name: String
    public var tags: [String]
    public var audience: Audience
    public var variants: [Variant]
    public var controlPercent: Int
    public var delivery: Delivery
    /// For scheduled campaigns: repeat every day or week (until a time); each run sends to the
    /// whole audience again.
    public var recurrence: Recurrence?
    /// Messages per minute, spread evenly; `nil` is unpaced.
    public var rateLimitPerMinute: Int?
    /// Whether the workspace's frequency caps apply (and whether its sends count toward them).
    public var frequencyCapped: Bool
    /// Korean advertising rules: "(광고)" prefix, opt-out footer, no night sends without consent.
    public var advertising: Bool
    /// Up to 4 (A is primary), each counted once per user per campaign.
    public var conversionEvents: [ConversionEvent]
    /// The definition as JSON, as stored and answered.
    public var json: JSONValue

}

/// A campaign request that cannot be used: every problem, each naming its field.
public struct CampaignDefinitionError: Error, Sendable, CustomStringConvertible {
    public let problems: [String]
    public var description: String { problems.joined(separator: "; ") }
}

extension CampaignDefinition {
    /// Parses and validates a campaign body. All problems are reported at once. Each message is
    /// validated by its channel in `channels`; templates are parsed, so a syntax error names its
    /// field, line and column. With `channels` `nil` (a stored definition being sent), messages
    /// are taken as stored: each is prepared, and fails on its own, when it is sent.
    public static func parse(_ body: JSONValue, channels: ChannelCatalog?) throws(CampaignDefinitionError) -> CampaignDefinition {
        var problems: [String] = []
        guard let object = body.objectValue else { throw CampaignDefinitionError(problems: ["the body must be a JSON object"]) }
        let known: Set<String> = [
            "name", "tags", "audience", "messages", "channel_priority", "variants", "control_percent", "delivery", "rate_limit_per_minute", "frequency_capped",
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

        var flags: [String: Bool] = [:]
        for flag in ["frequency_capped", "advertising"] {
            guard let value = object[flag] else { continue }
            if case .bool(let on) = value { flags[flag] = on } else { problems.append("\(flag): must be a boolean") }
        }
        let advertising = flags["advertising"] ?? false
        let rules = MessageRules(isAdvertising: advertising)

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
                    if let messages = parseMessages(item["messages"], path: "\(path).messages", channels: channels, rules: rules, problems: &problems) {
                        let priority = parsePriority(item["channel_priority"], messages: messages, path: "\(path).channel_priority", problems: &problems)
                        variants.append(Variant(name: variantName, percent: Int(percent), messages: messages, channelPriority: priority))
                    }
                }
                if variants.count == items.count, variants.map(\.percent).reduce(0, +) + controlPercent != 100 {
                    problems.append("variants: percents plus control_percent must add up to 100")
                }
                if Set(variants.map(\.name)).count != variants.count { problems.append("variants: names must be different") }
            } else {
                problems.append("variants: must be an array of 1 to 8 variants")
            }
        } else if let messages = parseMessages(object["messages"], path: "messages", channels: channels, rules: rules, problems: &problems) {
            let priority = parsePriority(object["channel_priority"], messages: messages, path: "channel_priority", problems: &problems)
            variants = [Variant(name: "Variant 1", percent: 100 - controlPercent, messages: messages, channelPriority: priority)]
        }

        var delivery = Delivery.apiTriggered
        var recurrence: Recurrence?
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
                if let given = value["recurrence"], !given.isNull {
                    let every = given["every"]?.stringValue
                    var until: Date?
                    if let text = given["until"]?.stringValue {
                        until = BrazeTime.parse(text) ?? LocalTime.parse(text, in: TimeZone(identifier: "UTC")!)
                        if until == nil { problems.append("delivery.recurrence.until: must be an ISO 8601 time") }
                    }
                    if every == "day" || every == "week" {
                        recurrence = Recurrence(periodDays: every == "day" ? 1 : 7, until: until)
                    } else {
                        problems.append("delivery.recurrence.every: must be 'day' or 'week'")
                    }
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
                if let action = parseActionDelivery(value, problems: &problems) { delivery = .actionBased(action) }
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
        var conversions: [ConversionEvent] = []
        if let value = object["conversion_events"], !value.isNull {
            if let list = value.arrayValue, list.count <= 4 {
                for (index, item) in list.enumerated() {
                    let path = "conversion_events[\(index)]"
                    let action = parseAction(item, path: path, problems: &problems)
                    var window = 3 * 86_400
                    if let hours = item["window_hours"] {
                        if case .int(let value) = hours, (1...720).contains(value) { window = Int(value) * 3_600 } else {
                            problems.append("\(path).window_hours: must be a whole number from 1 to 720 (30 days)")
                        }
                    }
                    if let action { conversions.append(ConversionEvent(action: action, windowSeconds: window)) }
                }
            } else {
                problems.append("conversion_events: must be an array of at most 4 events")
            }
        }
        guard problems.isEmpty else { throw CampaignDefinitionError(problems: problems) }
        return CampaignDefinition(
            name: name, tags: tags, audience: audience, variants: variants, controlPercent: controlPercent, delivery: delivery,
            recurrence: recurrence, rateLimitPerMinute: rateLimit, frequencyCapped: flags["frequency_capped"] ?? true, advertising: advertising,
            conversionEvents: conversions, json: body)
    }

    /// `{"CHANNEL": {…}, …}`: each message validated by its channel.
    static func parseMessages(
        _ value: JSONValue?, path: String, channels: ChannelCatalog?, rules: MessageRules, problems: inout [String]
    ) -> [String: JSONValue]? {
        guard let messages = value?.objectValue, !messages.isEmpty else {
            problems.append("\(path): is required: {\"webhook\": {\"url\", \"method\", \"headers\", \"body\"}}")
            return nil
        }
        let before = problems.count
        guard let channels else { return messages }
        for name in messages.keys.sorted() {
            guard let channel = channels[name] else {
                problems.append("\(path).\(name): channel not available yet (available: \(channels.names.joined(separator: ", ")))")
                continue
            }
            channel.validate(messages[name] ?? .null, path: "\(path).\(name)", rules: rules, problems: &problems)
        }
        return problems.count == before ? messages : nil
    }
}

extension CampaignDefinition {
    /// `{"event": NAME, "where": {…}}` or `{"purchase": {"product_id": …}}`.
    /// `channel_priority`: two or more of the message set's channels, each once.
    static func parsePriority(_ value: JSONValue?, messages: [String: JSONValue], path: String, problems: inout [String]) -> [String] {
        guard let value, !value.isNull else { return [] }
        guard let list = value.arrayValue, list.count >= 2 else {
            problems.append("\(path): must be an array of two or more channels, such as [\"push\", \"sms\"]")
            return []
        }
        var names: [String] = []
        for (index, entry) in list.enumerated() {
            guard let name = entry.stringValue, messages[name] != nil else {
                problems.append("\(path)[\(index)]: must be one of this message set's channels (\(messages.keys.sorted().joined(separator: ", ")))")
                continue
            }
            guard !names.contains(name) else {
                problems.append("\(path)[\(index)]: '\(name)' is listed twice")
                continue
            }
            names.append(name)
        }
        return names
    }

    static func parseAction(_ value: JSONValue, path: String, problems: inout [String]) -> Action? {
        if let name = value["event"] {
            guard let text = name.stringValue, !text.isEmpty else {
                problems.append("\(path).event: must be an event name")
                return nil
            }
            var conditions: [String: JSONValue] = [:]
            if let clause = value["where"], !clause.isNull {
                guard let members = clause.objectValue else {
                    problems.append("\(path).where: must be an object of property values")
                    return nil
                }
                conditions = members
            }
            return .event(name: text, where: conditions)
        }
        if let purchase = value["purchase"] {
            guard let members = purchase.objectValue else {
                problems.append("\(path).purchase: must be an object (optionally with product_id)")
                return nil
            }
            return .purchase(productID: members["product_id"]?.stringValue)
        }
        if value["session_start"] != nil { return .sessionStart }
        if let segment = value["entered_segment"] {
            guard let id = segment.stringValue, !id.isEmpty else {
                problems.append("\(path).entered_segment: must be a segment id")
                return nil
            }
            return .enteredSegment(id)
        }
        if let opened = value["push_opened"] {
            guard let members = opened.objectValue else {
                problems.append("\(path).push_opened: must be an object: {} (this campaign's push) or {\"campaign_id\": ID}")
                return nil
            }
            if let id = members["campaign_id"], !id.isNull {
                guard let text = id.stringValue, !text.isEmpty else {
                    problems.append("\(path).push_opened.campaign_id: must be a campaign id")
                    return nil
                }
                return .pushOpened(campaignID: text)
            }
            return .pushOpened(campaignID: nil)
        }
        problems.append(
            "\(path): must be {\"event\": NAME, \"where\": {…}}, {\"purchase\": {…}}, {\"session_start\": {}}, {\"entered_segment\": ID} or {\"push_opened\": {}}")
        return nil
    }

    static func parseActionDelivery(_ value: [String: JSONValue], problems: inout [String]) -> ActionDelivery? {
        let before = problems.count
        guard let triggerValue = value["trigger"] else {
            problems.append("delivery.trigger: is required for action_based delivery")
            return nil
        }
        let trigger = parseAction(triggerValue, path: "delivery.trigger", problems: &problems)
        if case .pushOpened(nil)? = trigger {
            problems.append("delivery.trigger.push_opened.campaign_id: is required: the campaign whose push opens trigger this one")
        }
        var delay = Delay.seconds(0)
        if let delayValue = value["delay"], !delayValue.isNull {
            if case .int(let seconds)? = delayValue["seconds"], (0...2_592_000).contains(seconds) {
                delay = .seconds(Int(seconds))
            } else if let time = delayValue["at_local_time"]?.stringValue {
                let parts = time.split(separator: ":").compactMap { Int($0) }
                var afterDays = 0
                if let days = delayValue["after_days"] {
                    if case .int(let value) = days, (0...30).contains(value) { afterDays = Int(value) } else {
                        problems.append("delivery.delay.after_days: must be a whole number from 0 to 30")
                    }
                }
                if parts.count == 2, (0...23).contains(parts[0]), (0...59).contains(parts[1]) {
                    delay = .atLocalTime(hour: parts[0], minute: parts[1], afterDays: afterDays)
                } else {
                    problems.append("delivery.delay.at_local_time: must be HH:MM, such as 10:00")
                }
            } else {
                problems.append("delivery.delay: must be {\"seconds\": 0 to 2592000} or {\"at_local_time\": \"10:00\", \"after_days\": 1}")
            }
        }
        var cancelIf: [Action] = []
        if let list = value["cancel_if"], !list.isNull {
            if let items = list.arrayValue {
                for (index, item) in items.enumerated() {
                    if let action = parseAction(item, path: "delivery.cancel_if[\(index)]", problems: &problems) { cancelIf.append(action) }
                }
            } else {
                problems.append("delivery.cancel_if: must be an array of triggers")
            }
        }
        var reeligible: Int?
        if let value = value["reeligible_after"], !value.isNull {
            if case .int(let days)? = value["days"], (1...365).contains(days) { reeligible = Int(days) } else {
                problems.append("delivery.reeligible_after: must be {\"days\": 1 to 365} or null (once per user)")
            }
        }
        guard problems.count == before, let trigger else { return nil }
        return ActionDelivery(trigger: trigger, delay: delay, cancelIf: cancelIf, reeligibleAfterDays: reeligible)
    }
}

/// An event, purchase, session or profile change as ingested, for triggers, cancellations and conversions.
public struct ObservedAction: Sendable {
    public enum Kind: Sendable, Hashable {
        case event(String)
        case purchase(productID: String)
        case sessionStart
        /// Attributes changed (segment entry is re-checked).
        case profileUpdate
        /// A push of this campaign was opened.
        case pushOpen(campaignID: String)
    }

    public let kind: Kind
    public let properties: [String: JSONValue]

    public init(kind: Kind, properties: [String: JSONValue]) {
        self.kind = kind
        self.properties = properties
    }
}

/// Wall-clock times without a zone (`2025-07-01T10:00:00`), for sends in each user's local time.
enum LocalTime {
    /// `millis` read as a UTC wall-clock time, written without a zone.
    static func format(_ millis: Int64) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
        return formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1_000))
    }

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
