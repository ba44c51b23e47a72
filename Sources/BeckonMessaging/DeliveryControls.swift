import BeckonCore
import Foundation

/// The rules that decide whether a message may go now: quiet hours, the advertising night rule
/// and frequency caps. They fail closed: a cap that cannot be counted holds the message (and
/// says why), it never lets it through.
struct DeliveryControls: Sendable {
    let queue: SendQueue
    /// How long a message waits when a rule cannot be evaluated (e.g. the database is away).
    static let retryWhenUnknownMilliseconds: Int64 = 60_000

    /// `nil` when the message may go now, else a later time (`retry`) or a skip.
    func check(
        _ message: QueuedMessage, profile: JSONValue, definition: CampaignDefinition, settings: DeliverySettings, zone: TimeZone, now: Date
    ) async -> MessageOutcome? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let parts = calendar.dateComponents([.hour, .minute], from: now)
        let minuteOfDay = (parts.hour ?? 0) * 60 + (parts.minute ?? 0)
        func inside(_ start: Int, _ end: Int) -> Bool { start < end ? (minuteOfDay >= start && minuteOfDay < end) : (minuteOfDay >= start || minuteOfDay < end) }
        func next(_ minutes: Int) -> Int64 {
            let today = calendar.date(bySettingHour: minutes / 60, minute: minutes % 60, second: 0, of: now) ?? now
            let target = today > now ? today : (calendar.date(byAdding: .day, value: 1, to: today) ?? today)
            return BrazeTime.epochMilliseconds(target)
        }
        if let quiet = settings.quietHours {
            guard let start = DeliverySettings.minutes(quiet.start), let end = DeliverySettings.minutes(quiet.end) else {
                return .retry(
                    at: BrazeTime.epochMilliseconds(now) + Self.retryWhenUnknownMilliseconds,
                    reason: "quiet hours '\(quiet.start)'–'\(quiet.end)' cannot be read; held until they are fixed", countsAsAttempt: false)
            }
            if inside(start, end) {
                if quiet.action == "skip" { return .skipped(reason: "quiet hours \(quiet.start)–\(quiet.end) in \(zone.identifier)") }
                return .retry(at: next(end), reason: "held for quiet hours until \(quiet.end) \(zone.identifier)", countsAsAttempt: false)
            }
        }
        if definition.advertising, inside(21 * 60, 8 * 60) {
            let group = settings.advertising?.nightConsentGroup
            let consented = group != nil && (profile["subscription_groups"]?.arrayValue ?? []).contains {
                $0["subscription_group_id"]?.stringValue == group && $0["subscription_state"]?.stringValue == "subscribed"
            }
            if !consented {
                return .retry(at: next(8 * 60), reason: "advertising is not sent 21:00–08:00 without night-time consent; held until 08:00 \(zone.identifier)", countsAsAttempt: false)
            }
        }
        if definition.frequencyCapped {
            for cap in settings.frequencyCaps where cap.channel == "any" || cap.channel == message.channel {
                let since = BrazeTime.epochMilliseconds(now) - Int64(cap.days) * 86_400_000
                let count: Int
                do {
                    count = try await queue.deliveredCount(userID: message.userID, since: since, channel: cap.channel == "any" ? nil : cap.channel)
                } catch {
                    return .retry(
                        at: BrazeTime.epochMilliseconds(now) + Self.retryWhenUnknownMilliseconds,
                        reason: "frequency cap could not be counted (\(error)); held, not sent", countsAsAttempt: false)
                }
                if count >= cap.max {
                    return .skipped(reason: "frequency cap: at most \(cap.max) \(cap.channel == "any" ? "messages" : cap.channel + " messages") per \(cap.days) days")
                }
            }
        }
        return nil
    }
}
