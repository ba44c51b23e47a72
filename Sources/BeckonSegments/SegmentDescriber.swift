import BeckonCore
import Foundation

/// Turns a filter into the human-readable summary Braze returns as `/segments/details` `description`.
public enum SegmentDescriber {
    public static func describe(_ filter: SegmentFilter) -> String {
        switch filter {
        case .all(let children): return children.map { group($0) }.joined(separator: " AND ")
        case .any(let children): return children.map { group($0) }.joined(separator: " OR ")
        case .not(let child): return "NOT (\(describe(child)))"
        case .attribute(let condition):
            let subject = condition.customPath.map { "Custom Attribute '\($0)'" } ?? "'\(condition.name)'"
            let value: String
            switch condition.value {
            case .null: value = ""
            case .string(let text): value = " '\(text)'"
            default: value = " \(condition.value.serialized())"
            }
            return "\(subject) \(condition.op.rawValue.replacingOccurrences(of: "_", with: " "))\(value)"
        case .event(let name, let whereClause, let count, let window):
            var text = "Custom Event '\(name)' \(countText(count))"
            if !whereClause.isEmpty {
                text += " where " + whereClause.keys.sorted().map { "\($0) = \(whereClause[$0]?.serialized() ?? "")" }.joined(separator: ", ")
            }
            return text + windowText(window)
        case .eventTime(let name, let which, let condition):
            return "\(which == .first ? "First" : "Last") did Custom Event '\(name)' \(timeText(condition))"
        case .purchase(let product, let count, let window):
            return "Purchased \(product.map { "product '\($0)'" } ?? "any product") \(countText(count))\(windowText(window))"
        case .revenue(let condition, let window):
            return "Money spent \(numberText(condition))\(windowText(window))"
        case .sessions(let count, let window):
            return "Sessions \(countText(count))\(windowText(window))"
        case .lastUsedApp(let condition):
            return "Last used app \(timeText(condition))"
        case .push(let platform, let state):
            return "Push \(state.rawValue.replacingOccurrences(of: "_", with: " ")) on \(platform ?? "any platform")"
        case .pushToken(let platforms, let authorizations):
            return "Has a push token on \(platforms.joined(separator: " or ")) that is \(authorizations.joined(separator: " or "))"
        case .pushOpened(let campaign, let window):
            return "Opened push of campaign '\(campaign)'\(windowText(window))"
        case .subscriptionGroup(let id, let subscribed): return "\(subscribed ? "Subscribed" : "Unsubscribed") to subscription group '\(id)'"
        case .segment(let id): return "In segment '\(id)'"
        case .cohort(let id): return "In cohort '\(id)'"
        case .randomBucket(let condition): return "Random bucket \(numberText(condition))"
        }
    }

    private static func group(_ filter: SegmentFilter) -> String {
        switch filter {
        case .all, .any: return "(\(describe(filter)))"
        default: return describe(filter)
        }
    }

    private static func countText(_ count: CountCondition) -> String {
        if count == .atLeastOnce { return "at least once" }
        let words: [CountCondition.Operator: String] = [.eq: "exactly", .gt: "more than", .gte: "at least", .lt: "fewer than", .lte: "at most"]
        return "\(words[count.op] ?? count.op.rawValue) \(count.value) times"
    }

    private static func windowText(_ window: TimeWindow?) -> String {
        guard let window else { return "" }
        let hours = window.milliseconds / 3_600_000
        return hours % 24 == 0 ? " in the last \(hours / 24) days" : " in the last \(hours) hours"
    }

    private static func timeText(_ condition: TimeCondition) -> String {
        switch condition {
        case .before(let millis): return "before \(BrazeTime.format(epochMilliseconds: millis))"
        case .after(let millis): return "after \(BrazeTime.format(epochMilliseconds: millis))"
        case .withinLast(let window): return "within\(windowText(window).replacingOccurrences(of: " in", with: ""))"
        case .moreThanAgo(let window): return "more than \(window.milliseconds / 3_600_000) hours ago"
        }
    }

    private static func numberText(_ condition: NumberCondition) -> String {
        if condition.op == .between { return "between \(condition.value) and \(condition.upper ?? condition.value)" }
        return "\(condition.op.rawValue) \(condition.value)"
    }
}
