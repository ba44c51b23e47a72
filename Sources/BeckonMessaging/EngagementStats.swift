import BeckonStorage

extension SendQueue {
    /// One day of a campaign's `/campaigns/data_series`.
    public struct DailyStats: Sendable {
        public var day: Int64
        /// Engagement per message row of the day (channel, platform for push, variant).
        public var messages: [MessageKey: MessageCounts] = [:]
        public var uniqueRecipients = 0
        /// Conversions by label (A–D) on the day they happened, and on the day of the send.
        public var conversions: [String: Int] = [:]
        public var conversionsBySendTime: [String: Int] = [:]

        public init(day: Int64) { self.day = day }
    }

    /// One message row of `/campaigns/data_series`: a channel (push split by platform) and variant.
    public struct MessageKey: Sendable, Hashable, Comparable {
        public var channel: String
        /// `ios`, `android` or `web` for push; nil for other channels.
        public var platform: String?
        public var variant: String

        public static func < (left: MessageKey, right: MessageKey) -> Bool {
            (left.channel, left.platform ?? "", left.variant) < (right.channel, right.platform ?? "", right.variant)
        }
    }

    /// Counts of one message row: `sent` counts delivered and failed messages (a push delivered to
    /// tokens on two platforms counts once on each; a failed push, which reached no platform, in
    /// none), `opens` the direct opens the SDKs reported, `bounces` the dead addresses retired.
    public struct MessageCounts: Sendable, Equatable {
        public var sent = 0
        public var errors = 0
        public var opens = 0
        public var bounces = 0
    }

    /// Per-day engagement of a campaign between `start` and `end` (epoch ms), days counted from
    /// `offsetMilliseconds` (the workspace's UTC offset).
    public func dailyStats(campaignID: String, start: Int64, end: Int64, offsetMilliseconds: Int64) async throws -> [Int64: DailyStats] {
        try await database.read { connection in
            var days: [Int64: DailyStats] = [:]
            let offset = SQLValue.integer(offsetMilliseconds)
            let range: [SQLValue] = [.text(campaignID), .integer(start), .integer(end)]
            // Push rows carry their platforms in `details`: "ios,web" on a delivery, "ios: reason" on a
            // bounce, "ios <token delivery id>" on an open.
            for row in try connection.query(
                """
                SELECT (time + ?) / 86400000, type, variant, channel, CASE WHEN channel = 'push' THEN details END, COUNT(*) FROM engagement_events
                WHERE campaign_id = ? AND time >= ? AND time <= ? AND type IN ('delivery', 'failure', 'bounce', 'open') GROUP BY 1, 2, 3, 4, 5
                """, [offset] + range)
            {
                let day = row[0].int ?? 0
                let type = row[1].string ?? ""
                let channel = row[3].string ?? ""
                let count = Int(row[5].int ?? 0)
                var platforms: [String?] = [nil]
                if channel == "push" {
                    let details = row[4].string ?? ""
                    switch type {
                    case "delivery": platforms = details.split(separator: ",").map { String($0) }
                    case "bounce": platforms = [String(details.prefix { $0 != ":" })]
                    case "open": platforms = [String(details.prefix { $0 != " " })]
                    default: platforms = []
                    }
                }
                var stats = days[day] ?? DailyStats(day: day)
                for platform in platforms {
                    let key = MessageKey(channel: channel, platform: platform, variant: row[2].string ?? "")
                    var counts = stats.messages[key] ?? MessageCounts()
                    switch type {
                    case "delivery": counts.sent += count
                    case "failure":
                        counts.sent += count
                        counts.errors += count
                    case "bounce": counts.bounces += count
                    default: counts.opens += count
                    }
                    stats.messages[key] = counts
                }
                days[day] = stats
            }
            for row in try connection.query(
                """
                SELECT (time + ?) / 86400000, COUNT(DISTINCT user_id) FROM engagement_events
                WHERE campaign_id = ? AND time >= ? AND time <= ? AND type IN ('delivery', 'failure') GROUP BY 1
                """, [offset] + range)
            {
                let day = row[0].int ?? 0
                days[day, default: DailyStats(day: day)].uniqueRecipients = Int(row[1].int ?? 0)
            }
            for row in try connection.query(
                """
                SELECT (c.time + ?) / 86400000, (s.updated_at + ?) / 86400000, c.details, COUNT(*) FROM engagement_events c
                JOIN messages s ON s.id = c.message_id
                WHERE c.campaign_id = ? AND c.time >= ? AND c.time <= ? AND c.type = 'conversion' GROUP BY 1, 2, 3
                """, [offset, offset] + range)
            {
                let label = row[2].string ?? "A"
                let count = Int(row[3].int ?? 0)
                let day = row[0].int ?? 0
                days[day, default: DailyStats(day: day)].conversions[label, default: 0] += count
                let sendDay = row[1].int ?? 0
                days[sendDay, default: DailyStats(day: sendDay)].conversionsBySendTime[label, default: 0] += count
            }
            return days
        }
    }
}
