import Foundation

/// A segment's filter: the JSON tree marketers and engineers write, parsed and validated.
///
/// The contract (documented in docs/segments.md): `all`/`any`/`not`, attribute comparisons,
/// custom events (with property filters, counts and rolling windows), first/last times,
/// purchases and revenue, sessions, last used app, push reachability, segment and cohort
/// membership, and the random bucket.
public indirect enum SegmentFilter: Sendable, Hashable {
    case all([SegmentFilter])
    case any([SegmentFilter])
    case not(SegmentFilter)
    case attribute(AttributeCondition)
    case event(name: String, where: [String: JSONValue], count: CountCondition, window: TimeWindow?)
    case eventTime(name: String, which: FirstOrLast, condition: TimeCondition)
    case purchase(productID: String?, count: CountCondition, window: TimeWindow?)
    case revenue(NumberCondition, window: TimeWindow?)
    case sessions(count: CountCondition, window: TimeWindow?)
    case lastUsedApp(TimeCondition)
    case push(platform: String?, state: PushState)
    /// Has a valid push token on one of `platforms` with one of `authorizations`
    /// (`authorized`, `provisional`, `denied`, `blocked`), and did not unsubscribe from push.
    case pushToken(platforms: [String], authorizations: [String])
    /// Opened a push of the campaign within the window (any time when `nil`).
    case pushOpened(campaignID: String, window: TimeWindow?)
    /// Explicitly `subscribed` to the subscription group (or, with `subscribed` false, explicitly unsubscribed).
    case subscriptionGroup(id: String, subscribed: Bool)
    case segment(String)
    case cohort(String)
    case randomBucket(NumberCondition)

    public enum FirstOrLast: String, Sendable { case first, last }

    public enum PushState: String, Sendable { case optedIn = "opted_in", provisional, any }
}

/// A rolling window ending now: `{"days": N}` (1–730) or `{"hours": N}`.
///
/// Windows are exact: an event 24 h + 1 s ago is not within the last 1 day.
public struct TimeWindow: Sendable, Hashable {
    public let milliseconds: Int64

    public init(milliseconds: Int64) { self.milliseconds = milliseconds }
}

/// `{"op": "eq"|"gt"|"gte"|"lt"|"lte", "value": N}` on a count; absent means "at least once".
public struct CountCondition: Sendable, Hashable {
    public enum Operator: String, Sendable, CaseIterable { case eq, gt, gte, lt, lte }
    public let op: Operator
    public let value: Int64

    public init(op: Operator, value: Int64) {
        self.op = op
        self.value = value
    }

    public static let atLeastOnce = CountCondition(op: .gte, value: 1)

    /// Whether a user with no occurrences at all satisfies the condition.
    public var holdsForZero: Bool { evaluate(0) }

    public func evaluate(_ count: Int64) -> Bool {
        switch op {
        case .eq: return count == value
        case .gt: return count > value
        case .gte: return count >= value
        case .lt: return count < value
        case .lte: return count <= value
        }
    }
}

/// A numeric comparison (`eq ne gt gte lt lte between`).
public struct NumberCondition: Sendable, Hashable {
    public enum Operator: String, Sendable, CaseIterable { case eq, ne, gt, gte, lt, lte, between }
    public let op: Operator
    public let value: Double
    /// The upper bound of `between` (inclusive).
    public let upper: Double?

    public init(op: Operator, value: Double, upper: Double?) {
        self.op = op
        self.value = value
        self.upper = upper
    }

    public func evaluate(_ number: Double) -> Bool {
        switch op {
        case .eq: return number == value
        case .ne: return number != value
        case .gt: return number > value
        case .gte: return number >= value
        case .lt: return number < value
        case .lte: return number <= value
        case .between: return number >= value && number <= (upper ?? value)
        }
    }
}

/// A time comparison: `before`/`after` an instant, or `within_last`/`more_than_ago` a window.
public enum TimeCondition: Sendable, Hashable {
    case before(Int64)
    case after(Int64)
    case withinLast(TimeWindow)
    case moreThanAgo(TimeWindow)
}

/// A condition on a standard or custom attribute.
public struct AttributeCondition: Sendable, Hashable {
    /// What the attribute holds, which decides the operators allowed.
    public enum Kind: String, Sendable { case string, number, boolean, time, array }

    public enum Operator: String, Sendable, CaseIterable {
        case eq, ne, `in`, notIn = "not_in", contains, notContains = "not_contains", startsWith = "starts_with", matches
        case exists, notExists = "not_exists", blank, notBlank = "not_blank"
        case gt, gte, lt, lte, between
        case before, after, withinLast = "within_last", moreThanAgo = "more_than_ago"
        case includesAny = "includes_any", includesAll = "includes_all", includesNone = "includes_none"
        case sizeEq = "size_eq", sizeGt = "size_gt", sizeLt = "size_lt"
    }

    /// `first_name`, … or `custom.PATH`.
    public let name: String
    /// The standard attribute, or `nil` for a custom one.
    public let standard: StandardSegmentAttribute?
    /// The custom attribute path (`address.city`, `pets[].type`), or `nil` for a standard one.
    public let customPath: String?
    public let op: Operator
    public let value: JSONValue
}

/// Standard attributes filters can name, with their type.
public enum StandardSegmentAttribute: String, Sendable, CaseIterable {
    case firstName = "first_name", lastName = "last_name", email, phone, country, language
    case timeZone = "time_zone", gender, dob, homeCity = "home_city"
    case emailSubscribe = "email_subscribe", pushSubscribe = "push_subscribe", createdAt = "created_at"
    case externalID = "external_id"

    /// The `users` column holding it.
    public var column: String { self == .createdAt ? "created_at" : rawValue }

    public var kind: AttributeCondition.Kind {
        switch self {
        case .createdAt: return .time
        case .dob: return .time
        default: return .string
        }
    }
}
