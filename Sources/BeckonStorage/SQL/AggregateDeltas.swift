/// Increments to the per-user aggregate tables, merged in memory and written in one pass.
///
/// Writes record what they add (an event on a day, a purchase, a session); the group committer
/// merges the deltas of a whole batch so a thousand events of one user on one day cost one upsert.
public struct AggregateDeltas: Sendable {
    struct EventKey: Hashable, Comparable {
        let workspaceID: Int64, userID: Int64, name: String, day: Int64
        static func < (a: Self, b: Self) -> Bool { (a.userID, a.name, a.day) < (b.userID, b.name, b.day) }
    }
    struct PropertyKey: Hashable, Comparable {
        let workspaceID: Int64, userID: Int64, name: String, property: String, value: String, day: Int64
        static func < (a: Self, b: Self) -> Bool {
            (a.userID, a.name, a.property, a.value, a.day) < (b.userID, b.name, b.property, b.value, b.day)
        }
    }
    struct PurchaseKey: Hashable, Comparable {
        let workspaceID: Int64, userID: Int64, productID: String, day: Int64
        static func < (a: Self, b: Self) -> Bool { (a.userID, a.productID, a.day) < (b.userID, b.productID, b.day) }
    }
    struct SessionKey: Hashable, Comparable {
        let workspaceID: Int64, userID: Int64, appID: String, day: Int64
        static func < (a: Self, b: Self) -> Bool { (a.userID, a.appID, a.day) < (b.userID, b.appID, b.day) }
    }
    struct Occurrences: Sendable {
        var count: Int64, first: Int64, last: Int64
        mutating func add(_ other: Occurrences) {
            count += other.count
            first = min(first, other.first)
            last = max(last, other.last)
        }
    }
    struct PurchaseTotals: Sendable {
        var occurrences: Occurrences, quantity: Int64, revenue: Double
    }

    var events: [EventKey: Occurrences] = [:]
    var properties: [PropertyKey: Occurrences] = [:]
    var purchases: [PurchaseKey: PurchaseTotals] = [:]
    var sessions: [SessionKey: Occurrences] = [:]
    var revenue: [Int64: Double] = [:]

    public init() {}

    public var isEmpty: Bool {
        events.isEmpty && properties.isEmpty && purchases.isEmpty && sessions.isEmpty && revenue.isEmpty
    }

    /// The UTC day number (days since 1970-01-01) of a millisecond time: the aggregates' bucket.
    public static func day(ofMillis millis: Int64) -> Int64 {
        millis >= 0 ? millis / 86_400_000 : (millis - 86_399_999) / 86_400_000
    }

    /// Counts one occurrence of custom event `name`.
    public mutating func addEvent(workspaceID: Int64, userID: Int64, name: String, time: Int64) {
        let key = EventKey(workspaceID: workspaceID, userID: userID, name: name, day: Self.day(ofMillis: time))
        events[key, default: Occurrences(count: 0, first: time, last: time)].add(Occurrences(count: 1, first: time, last: time))
    }

    /// Counts one occurrence of a segmentable property value of event `name`.
    public mutating func addEventProperty(
        workspaceID: Int64, userID: Int64, name: String, property: String, value: String, time: Int64
    ) {
        let key = PropertyKey(
            workspaceID: workspaceID, userID: userID, name: name, property: property, value: value,
            day: Self.day(ofMillis: time))
        properties[key, default: Occurrences(count: 0, first: time, last: time)].add(
            Occurrences(count: 1, first: time, last: time))
    }

    /// Counts a purchase of `quantity` items at `price` each (Braze counts it as `quantity` purchases).
    public mutating func addPurchase(
        workspaceID: Int64, userID: Int64, productID: String, time: Int64, quantity: Int64, price: Double
    ) {
        let key = PurchaseKey(workspaceID: workspaceID, userID: userID, productID: productID, day: Self.day(ofMillis: time))
        let amount = price * Double(quantity)
        var totals = purchases[key] ?? PurchaseTotals(occurrences: Occurrences(count: 0, first: time, last: time), quantity: 0, revenue: 0)
        totals.occurrences.add(Occurrences(count: quantity, first: time, last: time))
        totals.quantity += quantity
        totals.revenue += amount
        purchases[key] = totals
        revenue[userID, default: 0] += amount
    }

    /// Counts one session start in app `appID`.
    public mutating func addSession(workspaceID: Int64, userID: Int64, appID: String, time: Int64) {
        let key = SessionKey(workspaceID: workspaceID, userID: userID, appID: appID, day: Self.day(ofMillis: time))
        sessions[key, default: Occurrences(count: 0, first: time, last: time)].add(Occurrences(count: 1, first: time, last: time))
    }

    /// Adds everything `other` recorded.
    public mutating func merge(_ other: AggregateDeltas) {
        for (key, value) in other.events { events[key, default: Occurrences(count: 0, first: value.first, last: value.last)].add(value) }
        for (key, value) in other.properties {
            properties[key, default: Occurrences(count: 0, first: value.first, last: value.last)].add(value)
        }
        for (key, value) in other.purchases {
            if var existing = purchases[key] {
                existing.occurrences.add(value.occurrences)
                existing.quantity += value.quantity
                existing.revenue += value.revenue
                purchases[key] = existing
            } else {
                purchases[key] = value
            }
        }
        for (key, value) in other.sessions { sessions[key, default: Occurrences(count: 0, first: value.first, last: value.last)].add(value) }
        for (key, value) in other.revenue { revenue[key, default: 0] += value }
    }

    /// Writes the increments as upserts, in key order (so concurrent nodes lock rows in the same order).
    public func apply(_ connection: any SQLConnection) throws {
        let dialect = connection.dialect
        let firstLast = { (table: String) in
            "first_time = \(dialect.least("\(table).first_time", "excluded.first_time")), last_time = \(dialect.greatest("\(table).last_time", "excluded.last_time"))"
        }
        try upsert(
            connection, table: "event_daily", columns: ["user_id", "name", "day", "workspace_id", "count", "first_time", "last_time"],
            conflict: "user_id, name, day",
            update: "count = event_daily.count + excluded.count, \(firstLast("event_daily"))",
            rows: events.keys.sorted().map { key in
                let value = events[key]!
                return [.integer(key.userID), .text(key.name), .integer(key.day), .integer(key.workspaceID),
                        .integer(value.count), .integer(value.first), .integer(value.last)]
            })
        try upsert(
            connection, table: "event_property_daily",
            columns: ["user_id", "name", "property", "value", "day", "workspace_id", "count", "first_time", "last_time"],
            conflict: "user_id, name, property, value, day",
            update: "count = event_property_daily.count + excluded.count, \(firstLast("event_property_daily"))",
            rows: properties.keys.sorted().map { key in
                let value = properties[key]!
                return [.integer(key.userID), .text(key.name), .text(key.property), .text(key.value), .integer(key.day),
                        .integer(key.workspaceID), .integer(value.count), .integer(value.first), .integer(value.last)]
            })
        try upsert(
            connection, table: "purchase_daily",
            columns: ["user_id", "product_id", "day", "workspace_id", "count", "quantity", "revenue", "first_time", "last_time"],
            conflict: "user_id, product_id, day",
            update: """
                count = purchase_daily.count + excluded.count, quantity = purchase_daily.quantity + excluded.quantity, \
                revenue = purchase_daily.revenue + excluded.revenue, \(firstLast("purchase_daily"))
                """,
            rows: purchases.keys.sorted().map { key in
                let value = purchases[key]!
                return [.integer(key.userID), .text(key.productID), .integer(key.day), .integer(key.workspaceID),
                        .integer(value.occurrences.count), .integer(value.quantity), .real(value.revenue),
                        .integer(value.occurrences.first), .integer(value.occurrences.last)]
            })
        try upsert(
            connection, table: "session_daily", columns: ["user_id", "app_id", "day", "workspace_id", "count", "first_time", "last_time"],
            conflict: "user_id, app_id, day",
            update: "count = session_daily.count + excluded.count, \(firstLast("session_daily"))",
            rows: sessions.keys.sorted().map { key in
                let value = sessions[key]!
                return [.integer(key.userID), .text(key.appID), .integer(key.day), .integer(key.workspaceID),
                        .integer(value.count), .integer(value.first), .integer(value.last)]
            })
        for userID in revenue.keys.sorted() {
            try connection.execute(
                "UPDATE users SET total_revenue = total_revenue + ? WHERE id = ?", [.real(revenue[userID]!), .integer(userID)])
        }
    }

    private func upsert(
        _ connection: any SQLConnection, table: String, columns: [String], conflict: String, update: String,
        rows: [[SQLValue]]
    ) throws {
        guard !rows.isEmpty else { return }
        let chunkSize = 200
        let tuple = "(" + Array(repeating: "?", count: columns.count).joined(separator: ", ") + ")"
        var start = 0
        while start < rows.count {
            let chunk = rows[start..<min(start + chunkSize, rows.count)]
            let sql = """
                INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES \
                \(Array(repeating: tuple, count: chunk.count).joined(separator: ", ")) \
                ON CONFLICT (\(conflict)) DO UPDATE SET \(update)
                """
            try connection.execute(sql, chunk.flatMap { $0 })
            start += chunkSize
        }
    }
}
