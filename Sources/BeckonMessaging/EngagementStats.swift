import BeckonStorage

extension SendQueue {
    /// One day of a campaign's `/campaigns/data_series`.
    public struct DailyStats: Sendable {
        public var day: Int64
        /// Sends and failures per variant.
        public var sent: [String: Int] = [:]
        public var errors: [String: Int] = [:]
        public var uniqueRecipients = 0
        /// Conversions by label (A–D) on the day they happened, and on the day of the send.
        public var conversions: [String: Int] = [:]
        public var conversionsBySendTime: [String: Int] = [:]

        public init(day: Int64) { self.day = day }
    }

    /// Per-day engagement of a campaign between `start` and `end` (epoch ms), days counted from
    /// `offsetMilliseconds` (the workspace's UTC offset).
    public func dailyStats(campaignID: String, start: Int64, end: Int64, offsetMilliseconds: Int64) async throws -> [Int64: DailyStats] {
        try await database.read { connection in
            var days: [Int64: DailyStats] = [:]
            let offset = SQLValue.integer(offsetMilliseconds)
            let range: [SQLValue] = [.text(campaignID), .integer(start), .integer(end)]
            for row in try connection.query(
                """
                SELECT (time + ?) / 86400000, type, variant, COUNT(*) FROM engagement_events
                WHERE campaign_id = ? AND time >= ? AND time <= ? AND type IN ('delivery', 'failure') GROUP BY 1, 2, 3
                """, [offset] + range)
            {
                // A settled message is one row: delivered or failed, both sent.
                let day = row[0].int ?? 0
                var stats = days[day] ?? DailyStats(day: day)
                let count = Int(row[3].int ?? 0)
                stats.sent[row[2].string ?? "", default: 0] += count
                if row[1].string == "failure" { stats.errors[row[2].string ?? "", default: 0] += count }
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
