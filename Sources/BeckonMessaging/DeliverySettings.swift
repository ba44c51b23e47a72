import BeckonCore
import BeckonStorage
import Foundation
import Synchronization

/// A workspace's delivery controls: frequency caps, quiet hours and the Korean advertising preset.
public struct DeliverySettings: Sendable, Hashable, Codable {
    /// "At most `max` messages per user in `days` days", for one channel or `any`.
    public struct FrequencyCap: Sendable, Hashable, Codable {
        public var channel: String
        public var max: Int
        public var days: Int
    }

    /// A daily window in the user's local time (it may cross midnight) with no sends.
    public struct QuietHours: Sendable, Hashable, Codable {
        public var start: String
        public var end: String
        /// `delay` holds messages until the window ends; `skip` drops them (logged).
        public var action: String
    }

    /// What advertising campaigns add, and who may get them at night.
    public struct Advertising: Sendable, Hashable, Codable {
        /// The free opt-out line appended to every advertising message, e.g. `무료거부 080-123-4567`.
        public var optOutText: String
        /// The subscription group whose `subscribed` members consented to ads from 21:00 to 08:00.
        public var nightConsentGroup: String?

        enum CodingKeys: String, CodingKey {
            case optOutText = "opt_out_text"
            case nightConsentGroup = "night_consent_group"
        }
    }

    public var frequencyCaps: [FrequencyCap] = []
    public var quietHours: QuietHours?
    public var advertising: Advertising?
    /// The global control group's share of users (1–15 %): users whose random bucket is below
    /// `percent × 100` get no scheduled or action-based campaign (API-triggered sends still reach them).
    public var globalControlPercent: Int?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case frequencyCaps = "frequency_caps"
        case quietHours = "quiet_hours"
        case advertising
        case globalControlPercent = "global_control_group_percent"
    }

    /// Minutes after midnight of `HH:MM`, or `nil`.
    static func minutes(_ text: String) -> Int? {
        let parts = text.split(separator: ":").compactMap { Int($0) }
        guard parts.count == 2, (0...23).contains(parts[0]), (0...59).contains(parts[1]) else { return nil }
        return parts[0] * 60 + parts[1]
    }

    /// Reads a settings body; every bad field is reported at once. Caps may name `any` or one of `channels`.
    public static func parse(_ body: JSONValue, channels: [String]) throws(CampaignDefinitionError) -> DeliverySettings {
        var problems: [String] = []
        var settings = DeliverySettings()
        guard let object = body.objectValue else { throw CampaignDefinitionError(problems: ["the body must be a JSON object"]) }
        for key in object.keys.sorted() where !["frequency_caps", "quiet_hours", "advertising", "global_control_group_percent"].contains(key) {
            problems.append("\(key): unknown setting (frequency_caps, quiet_hours, advertising, global_control_group_percent)")
        }
        if let value = object["global_control_group_percent"], !value.isNull {
            if case .int(let percent) = value, (1...15).contains(percent) { settings.globalControlPercent = Int(percent) } else {
                problems.append("global_control_group_percent: must be a whole number from 1 to 15, or null")
            }
        }
        if let caps = object["frequency_caps"] {
            if let list = caps.arrayValue, list.count <= 10 {
                for (index, item) in list.enumerated() {
                    let path = "frequency_caps[\(index)]"
                    let channel = item["channel"]?.stringValue ?? "any"
                    if channel != "any", !channels.contains(channel) {
                        problems.append("\(path).channel: must be 'any' or one of \(channels.joined(separator: ", "))")
                    }
                    guard case .int(let max)? = item["max"], (1...1_000).contains(max) else {
                        problems.append("\(path).max: is required: 1 to 1000 messages")
                        continue
                    }
                    guard case .int(let days)? = item["days"], (1...90).contains(days) else {
                        problems.append("\(path).days: is required: 1 to 90 days")
                        continue
                    }
                    settings.frequencyCaps.append(FrequencyCap(channel: channel, max: Int(max), days: Int(days)))
                }
            } else {
                problems.append("frequency_caps: must be an array of at most 10 rules")
            }
        }
        if let quiet = object["quiet_hours"], !quiet.isNull {
            let start = quiet["start"]?.stringValue ?? ""
            let end = quiet["end"]?.stringValue ?? ""
            let action = quiet["action"]?.stringValue ?? "delay"
            if minutes(start) == nil { problems.append("quiet_hours.start: must be HH:MM") }
            if minutes(end) == nil { problems.append("quiet_hours.end: must be HH:MM") }
            if start == end { problems.append("quiet_hours: start and end must differ") }
            if action != "delay", action != "skip" { problems.append("quiet_hours.action: must be 'delay' or 'skip'") }
            settings.quietHours = QuietHours(start: start, end: end, action: action)
        }
        if let advertising = object["advertising"], !advertising.isNull {
            let optOut = advertising["opt_out_text"]?.stringValue ?? ""
            if optOut.isEmpty { problems.append("advertising.opt_out_text: is required, e.g. \"무료거부 080-123-4567\"") }
            settings.advertising = Advertising(optOutText: optOut, nightConsentGroup: advertising["night_consent_group"]?.stringValue)
        }
        guard problems.isEmpty else { throw CampaignDefinitionError(problems: problems) }
        return settings
    }
}

/// Each workspace's `DeliverySettings`, cached for a few seconds.
public final class DeliverySettingsStore: Sendable {
    let database: any SQLDatabase
    let clock: any BeckonClock
    private let cache = Mutex<[Int64: (DeliverySettings, ContinuousClock.Instant)]>([:])

    public init(database: any SQLDatabase, clock: any BeckonClock) {
        self.database = database
        self.clock = clock
    }

    public func settings(workspaceID: Int64) async throws -> DeliverySettings {
        let now = ContinuousClock.now
        if let (settings, readAt) = cache.withLock({ $0[workspaceID] }), now - readAt < .seconds(5) { return settings }
        let text = try await database.read { connection in
            try connection.first("SELECT settings FROM delivery_settings WHERE workspace_id = ?", [.integer(workspaceID)])?[0].string
        }
        var settings = DeliverySettings()
        if let text {
            do {
                settings = try JSONDecoder().decode(DeliverySettings.self, from: Data(text.utf8))
            } catch {
                throw StoredDataError(table: "delivery_settings", row: "\(workspaceID)", column: "settings", problem: "\(error)")
            }
        }
        cache.withLock { $0[workspaceID] = (settings, now) }
        return settings
    }

    public func save(workspaceID: Int64, settings: DeliverySettings) async throws {
        let text = String(decoding: try JSONEncoder().encode(settings), as: UTF8.self)
        let now = BrazeTime.epochMilliseconds(clock.now())
        try await database.write { connection in
            try connection.execute("DELETE FROM delivery_settings WHERE workspace_id = ?", [.integer(workspaceID)])
            try connection.execute(
                "INSERT INTO delivery_settings (workspace_id, settings, updated_at) VALUES (?, ?, ?)", [.integer(workspaceID), .text(text), .integer(now)])
        }
        cache.withLock { _ = $0.removeValue(forKey: workspaceID) }
    }
}
