import BeckonCore
import BeckonStorage
import Foundation

/// Compiles a segment filter to one SQL predicate over `users u`, for SQLite and PostgreSQL alike.
///
/// Every node becomes a boolean expression on the outer `users u` row. Behavioural nodes read
/// the per-user aggregates (`event_daily`, `event_property_daily`, `purchase_daily`,
/// `session_daily`) for whole days inside a window and the logs only for the two edge days, so
/// windows are exact to the millisecond without scanning the logs. With `scope: .user(id)` each
/// subquery is restricted to that user, which makes a membership check a handful of index probes.
public struct SegmentCompiler: Sendable {
    /// Which users a compiled query looks at.
    public enum Scope: Sendable, Hashable {
        case allUsers
        case user(Int64)
    }

    let dialect: SQLDialect
    let workspaceID: Int64
    let now: Int64
    let scope: Scope
    /// Event name → properties counted per value (`product_viewed` → [`brand`]).
    let segmentable: [String: [String]]
    /// The filter of a referenced segment; throws for unknown ids.
    let resolveSegment: @Sendable (String) throws -> SegmentFilter

    static let day: Int64 = 86_400_000

    public init(
        dialect: SQLDialect, workspaceID: Int64, now: Int64, scope: Scope, segmentable: [String: [String]],
        resolveSegment: @escaping @Sendable (String) throws -> SegmentFilter
    ) {
        self.dialect = dialect
        self.workspaceID = workspaceID
        self.now = now
        self.scope = scope
        self.segmentable = segmentable
        self.resolveSegment = resolveSegment
    }

    /// The predicate for `filter` (referenced segments inlined; a cycle is an error).
    public func predicate(_ filter: SegmentFilter) throws -> SQLFragment {
        try predicate(filter, visiting: [])
    }

    private var ws: SQLValue { .integer(workspaceID) }

    /// `AND user_id = ?` inside subqueries when compiling for one user.
    private func scoped(_ column: String = "user_id") -> SQLFragment {
        if case .user(let id) = scope { return SQLFragment(" AND \(column) = ?", [.integer(id)]) }
        return SQLFragment("")
    }

    private func predicate(_ filter: SegmentFilter, visiting: [String]) throws -> SQLFragment {
        switch filter {
        case .all(let children):
            return SQLFragment("(") + .joined(try children.map { try predicate($0, visiting: visiting) }, separator: " AND ") + SQLFragment(")")
        case .any(let children):
            return SQLFragment("(") + .joined(try children.map { try predicate($0, visiting: visiting) }, separator: " OR ") + SQLFragment(")")
        case .not(let child):
            return SQLFragment("NOT (") + (try predicate(child, visiting: visiting)) + SQLFragment(")")
        case .attribute(let condition):
            return try attribute(condition)
        case .event(let name, let whereClause, let count, let window):
            return try occurrences(eventSource(name: name, whereClause: whereClause), count: count, window: window)
        case .eventTime(let name, let which, let condition):
            let aggregate = which == .first ? "MIN(first_time)" : "MAX(last_time)"
            return SQLFragment(
                "u.id IN (SELECT user_id FROM event_daily WHERE workspace_id = ? AND name = ?", [ws, .text(name)])
                + scoped() + SQLFragment(" GROUP BY user_id HAVING ") + time(aggregate, condition) + SQLFragment(")")
        case .purchase(let productID, let count, let window):
            return try occurrences(purchaseSource(productID: productID, measure: .count), count: count, window: window)
        case .revenue(let condition, let window):
            let source = purchaseSource(productID: nil, measure: .revenue)
            let sum = try windowedSum(source, window: window)
            let comparison = number("SUM(n)", condition)
            let holdsForZero = condition.evaluate(0)
            let having = holdsForZero ? SQLFragment("NOT (") + comparison + SQLFragment(")") : comparison
            return SQLFragment(holdsForZero ? "u.id NOT IN (SELECT user_id FROM (" : "u.id IN (SELECT user_id FROM (")
                + sum + SQLFragment(") t GROUP BY user_id HAVING ") + having + SQLFragment(")")
        case .sessions(let count, let window):
            return try occurrences(sessionSource(), count: count, window: window)
        case .lastUsedApp(let condition):
            return SQLFragment("u.id IN (SELECT user_id FROM app_usage WHERE workspace_id = ?", [ws]) + scoped()
                + SQLFragment(" GROUP BY user_id HAVING ") + time("MAX(last_used)", condition) + SQLFragment(")")
        case .push(let platform, let state):
            var tokens = SQLFragment("u.id IN (SELECT user_id FROM push_tokens WHERE workspace_id = ? AND invalidated_at IS NULL", [ws]) + scoped()
            if let platform { tokens = tokens + SQLFragment(" AND platform = ?", [.text(platform)]) }
            switch state {
            case .optedIn:
                return tokens + SQLFragment(" AND authorization_state = 'authorized' AND foreground = 1) AND u.push_subscribe = 'opted_in'")
            case .provisional:
                return tokens + SQLFragment(" AND authorization_state = 'provisional') AND u.push_subscribe <> 'unsubscribed'")
            case .any:
                return tokens + SQLFragment(" AND foreground = 1) AND u.push_subscribe <> 'unsubscribed'")
            }
        case .pushToken(let platforms, let authorizations):
            // Correlated through `push_tokens_user`: a page of an audience probes its own users'
            // tokens instead of reading the workspace's.
            let platformList = platforms.map { _ in "?" }.joined(separator: ", ")
            let stateList = authorizations.map { _ in "?" }.joined(separator: ", ")
            return SQLFragment(
                "EXISTS (SELECT 1 FROM push_tokens pt WHERE pt.user_id = u.id AND pt.workspace_id = ? AND pt.invalidated_at IS NULL"
                    + " AND pt.platform IN (\(platformList)) AND pt.authorization_state IN (\(stateList)))",
                [ws] + platforms.map(SQLValue.text) + authorizations.map(SQLValue.text))
                + SQLFragment(" AND u.push_subscribe <> 'unsubscribed'")
        case .subscriptionGroup(let id, let subscribed):
            // Correlated through the primary key (user_id, group_id).
            return SQLFragment(
                "EXISTS (SELECT 1 FROM subscription_group_states sg WHERE sg.user_id = u.id AND sg.group_id = ? AND sg.state = ?)",
                [.text(id), .text(subscribed ? "subscribed" : "unsubscribed")])
        case .pushOpened(let campaign, let window):
            var opens = SQLFragment(
                "u.id IN (SELECT user_id FROM engagement_events WHERE campaign_id = ? AND type = 'open' AND channel = 'push'", [.text(campaign)])
            if let window { opens = opens + SQLFragment(" AND time >= ?", [.integer(now - window.milliseconds)]) }
            return opens + scoped() + SQLFragment(")")
        case .segment(let id):
            guard !visiting.contains(id) else {
                throw SegmentFilterError("filter", "segments reference each other in a cycle: \((visiting + [id]).joined(separator: " → "))")
            }
            return SQLFragment("(") + (try predicate(try resolveSegment(id), visiting: visiting + [id])) + SQLFragment(")")
        case .cohort(let id):
            return SQLFragment(
                "u.external_id IN (SELECT external_id FROM cohort_members WHERE workspace_id = ? AND cohort_id = ?)", [ws, .text(id)])
        case .randomBucket(let condition):
            return number("u.random_bucket", condition)
        }
    }

    // MARK: Comparisons

    func number(_ expression: String, _ condition: NumberCondition) -> SQLFragment {
        switch condition.op {
        case .eq: return SQLFragment("\(expression) = ?", [.real(condition.value)])
        case .ne: return SQLFragment("\(expression) <> ?", [.real(condition.value)])
        case .gt: return SQLFragment("\(expression) > ?", [.real(condition.value)])
        case .gte: return SQLFragment("\(expression) >= ?", [.real(condition.value)])
        case .lt: return SQLFragment("\(expression) < ?", [.real(condition.value)])
        case .lte: return SQLFragment("\(expression) <= ?", [.real(condition.value)])
        case .between: return SQLFragment("\(expression) BETWEEN ? AND ?", [.real(condition.value), .real(condition.upper ?? condition.value)])
        }
    }

    /// A time comparison on an expression holding epoch milliseconds.
    func time(_ expression: String, _ condition: TimeCondition) -> SQLFragment {
        switch condition {
        case .before(let instant): return SQLFragment("\(expression) < ?", [.integer(instant)])
        case .after(let instant): return SQLFragment("\(expression) > ?", [.integer(instant)])
        case .withinLast(let window): return SQLFragment("\(expression) >= ? AND \(expression) <= ?", [.integer(now - window.milliseconds), .integer(now)])
        case .moreThanAgo(let window): return SQLFragment("\(expression) < ?", [.integer(now - window.milliseconds)])
        }
    }

    // MARK: Behaviour in windows

    /// Where occurrences are counted: a per-day aggregate table and the log behind it.
    struct OccurrenceSource {
        let dailyTable: String
        /// Conditions on the daily table (besides workspace, user and day).
        let dailyFilter: SQLFragment
        /// The daily column summed (`count`, `revenue`).
        let dailyMeasure: String
        let logTable: String
        let logTime: String
        /// How each log row counts (`1`, `quantity`, `price * quantity`).
        let logMeasure: String
        /// Conditions tying a log row to the daily row `d` (same event name, product …) and filtering it.
        let logFilter: SQLFragment
    }

    enum PurchaseMeasure { case count, revenue }

    func eventSource(name: String, whereClause: [String: JSONValue]) throws -> OccurrenceSource {
        let properties = whereClause.keys.sorted()
        let jsonConditions = try properties.map { property -> SQLFragment in
            let scalar: JSONScalar
            switch whereClause[property] {
            case .string(let text)?: scalar = .string(text)
            case .int(let number)?: scalar = .number(Double(number))
            case .double(let number)?: scalar = .number(number)
            case .bool(let flag)?: scalar = .bool(flag)
            default: throw SegmentFilterError("filter.where.\(property)", "must be a string, number or boolean")
            }
            let (sql, arguments) = dialect.jsonEquals("e.properties", path: property.split(separator: ".").map(String.init), value: scalar)
            return SQLFragment(" AND " + sql, arguments)
        }
        let logFilter = SQLFragment("e.name = d.name") + .joined(jsonConditions, separator: "")
        if properties.count == 1, let property = properties.first, segmentable[name]?.contains(property) == true,
            let value = UserStore.segmentValue(whereClause[property])
        {
            return OccurrenceSource(
                dailyTable: "event_property_daily",
                dailyFilter: SQLFragment(" AND d.name = ? AND d.property = ? AND d.value = ?", [.text(name), .text(property), .text(value)]),
                dailyMeasure: "count", logTable: "events", logTime: "time", logMeasure: "1", logFilter: logFilter)
        }
        if properties.isEmpty {
            return OccurrenceSource(
                dailyTable: "event_daily", dailyFilter: SQLFragment(" AND d.name = ?", [.text(name)]), dailyMeasure: "count",
                logTable: "events", logTime: "time", logMeasure: "1", logFilter: logFilter)
        }
        // Properties not counted per value: the daily rows find who did the event on which day,
        // the log (per user, by index) decides which occurrences match.
        return OccurrenceSource(
            dailyTable: "event_daily", dailyFilter: SQLFragment(" AND d.name = ?", [.text(name)]), dailyMeasure: "",
            logTable: "events", logTime: "time", logMeasure: "1", logFilter: logFilter)
    }

    func purchaseSource(productID: String?, measure: PurchaseMeasure) -> OccurrenceSource {
        OccurrenceSource(
            dailyTable: "purchase_daily",
            dailyFilter: productID.map { SQLFragment(" AND d.product_id = ?", [.text($0)]) } ?? SQLFragment(""),
            dailyMeasure: measure == .count ? "count" : "revenue", logTable: "purchases", logTime: "time",
            logMeasure: measure == .count ? "quantity" : "price * quantity", logFilter: SQLFragment("e.product_id = d.product_id"))
    }

    func sessionSource() -> OccurrenceSource {
        OccurrenceSource(
            dailyTable: "session_daily", dailyFilter: SQLFragment(""), dailyMeasure: "count", logTable: "sessions",
            logTime: "started_at", logMeasure: "1", logFilter: SQLFragment("e.app_id = d.app_id"))
    }

    /// `u.id IN (users whose count satisfies the condition)`, or `NOT IN` the complement when the
    /// condition also holds for users who never did it.
    func occurrences(_ source: OccurrenceSource, count: CountCondition, window: TimeWindow?) throws -> SQLFragment {
        let sum = try windowedSum(source, window: window)
        let op: String
        switch count.op {
        case .eq: op = "="
        case .gt: op = ">"
        case .gte: op = ">="
        case .lt: op = "<"
        case .lte: op = "<="
        }
        if count.holdsForZero {
            return SQLFragment("u.id NOT IN (SELECT user_id FROM (") + sum
                + SQLFragment(") t GROUP BY user_id HAVING NOT (SUM(n) \(op) ?))", [.integer(count.value)])
        }
        return SQLFragment("u.id IN (SELECT user_id FROM (") + sum
            + SQLFragment(") t GROUP BY user_id HAVING SUM(n) \(op) ?)", [.integer(count.value)])
    }

    /// Rows `(user_id, n)` whose per-user sum is the measure inside the window (all time when `nil`).
    func windowedSum(_ source: OccurrenceSource, window: TimeWindow?) throws -> SQLFragment {
        let logCount = { (from: SQLFragment, to: SQLFragment) -> SQLFragment in
            SQLFragment("(SELECT COALESCE(SUM(\(source.logMeasure)), 0) FROM \(source.logTable) e WHERE e.user_id = d.user_id AND ")
                + source.logFilter + SQLFragment(" AND e.\(source.logTime) >= ") + from + SQLFragment(" AND e.\(source.logTime) <= ")
                + to + SQLFragment(")")
        }
        let base = SQLFragment(" FROM \(source.dailyTable) d WHERE d.workspace_id = ?", [ws]) + source.dailyFilter + scoped("d.user_id")
        guard let window else {
            if source.dailyMeasure.isEmpty {
                return SQLFragment("SELECT d.user_id, ") + logCount(SQLFragment("?", [.integer(Int64.min)]), SQLFragment("?", [.integer(now)]))
                    + SQLFragment(" AS n FROM (SELECT DISTINCT user_id, name FROM \(source.dailyTable) d WHERE d.workspace_id = ?", [ws])
                    + source.dailyFilter + scoped("d.user_id") + SQLFragment(") d")
            }
            return SQLFragment("SELECT d.user_id, d.\(source.dailyMeasure) AS n") + base
        }
        let start = now - window.milliseconds
        let startDay = AggregateDeltas.day(ofMillis: start)
        let endDay = AggregateDeltas.day(ofMillis: now)
        if source.dailyMeasure.isEmpty {
            return SQLFragment("SELECT d.user_id, ") + logCount(SQLFragment("?", [.integer(start)]), SQLFragment("?", [.integer(now)]))
                + SQLFragment(" AS n FROM (SELECT DISTINCT user_id, name FROM \(source.dailyTable) d WHERE d.workspace_id = ?", [ws])
                + source.dailyFilter + scoped("d.user_id") + SQLFragment(" AND d.day BETWEEN ? AND ?) d", [.integer(startDay), .integer(endDay)])
        }
        let measure = "d.\(source.dailyMeasure)"
        let startOfEndDay = endDay * Self.day
        let endOfStartDay = (startDay + 1) * Self.day - 1
        let expression: SQLFragment
        if startDay == endDay {
            expression = SQLFragment("CASE WHEN d.first_time >= ? AND d.last_time <= ? THEN \(measure) ELSE ", [.integer(start), .integer(now)])
                + logCount(SQLFragment("?", [.integer(start)]), SQLFragment("?", [.integer(now)])) + SQLFragment(" END")
        } else {
            expression = SQLFragment("CASE WHEN d.day = ? THEN (CASE WHEN d.first_time >= ? THEN \(measure) WHEN d.last_time < ? THEN 0 ELSE ",
                                     [.integer(startDay), .integer(start), .integer(start)])
                + logCount(SQLFragment("?", [.integer(start)]), SQLFragment("?", [.integer(endOfStartDay)]))
                + SQLFragment(" END) WHEN d.day = ? THEN (CASE WHEN d.last_time <= ? THEN \(measure) ELSE ", [.integer(endDay), .integer(now)])
                + logCount(SQLFragment("?", [.integer(startOfEndDay)]), SQLFragment("?", [.integer(now)]))
                + SQLFragment(" END) ELSE \(measure) END")
        }
        return SQLFragment("SELECT d.user_id, ") + expression + SQLFragment(" AS n") + base
            + SQLFragment(" AND d.day BETWEEN ? AND ?", [.integer(startDay), .integer(endDay)])
    }
}
