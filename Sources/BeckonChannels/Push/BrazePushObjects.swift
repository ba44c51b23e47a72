import BeckonCore
import Foundation

/// Braze's push messaging objects of `/messages/send` (`apple_push`, `android_push`, `web_push`;
/// braze-api.md §5.7) as one Beckon push message: each object becomes that platform's override
/// object and `platforms` lists the objects given. Field names are Braze's; fields that only the
/// Braze SDKs read (`use_webview`, `message_variation_id`, `asset_file_type`, `relevance_score`)
/// are accepted and not sent; fields Beckon cannot send yet are a clear error, never dropped.
public enum BrazePushObjects {
    /// The Braze message keys and the platform each one reaches.
    public static let platforms: [(key: String, platform: PushPlatformName)] = [("apple_push", .ios), ("android_push", .android), ("web_push", .web)]

    /// Whether `key` is one of Braze's push message objects (including `kindle_push`, which is refused).
    public static func isPushKey(_ key: String) -> Bool {
        key == "kindle_push" || platforms.contains { $0.key == key }
    }

    /// The `messages.push` object for the push objects in `messages`, or nil when there are none;
    /// problems are appended as `messages.<key>.<field>: what is wrong`. `now` turns `expiry` into a TTL.
    public static func pushMessage(_ messages: [String: JSONValue], now: Date, problems: inout [String]) -> JSONValue? {
        if messages["kindle_push"] != nil { problems.append("messages.kindle_push: Kindle (Amazon Device Messaging) push is not supported") }
        var push: [String: JSONValue] = [:]
        var chosen: [JSONValue] = []
        for (key, platform) in platforms {
            guard let value = messages[key] else { continue }
            let path = "messages.\(key)"
            guard let object = value.objectValue else {
                problems.append("\(path): must be an object")
                continue
            }
            var fields = Fields(object: object, path: path)
            let translated: [String: JSONValue]
            switch platform {
            case .ios: translated = apple(&fields, now: now)
            case .android: translated = android(&fields)
            case .web: translated = web(&fields)
            }
            problems += fields.problems
            push[platform.rawValue] = .object(translated)
            chosen.append(.string(platform.rawValue))
        }
        guard !chosen.isEmpty else { return nil }
        push["platforms"] = .array(chosen)
        return .object(push)
    }

    /// Reading one Braze object: each field taken once, anything left over is an unknown field.
    private struct Fields {
        let object: [String: JSONValue]
        let path: String
        var taken: Set<String> = ["message_variation_id", "use_webview"]
        var problems: [String] = []

        init(object: [String: JSONValue], path: String) {
            self.object = object
            self.path = path
        }

        mutating func take(_ name: String) -> JSONValue? {
            taken.insert(name)
            guard let value = object[name], !value.isNull else { return nil }
            return value
        }

        mutating func string(_ name: String) -> String? {
            guard let value = take(name) else { return nil }
            guard let text = value.stringValue else {
                problems.append("\(path).\(name): must be a string, got \(value.typeName)")
                return nil
            }
            return text
        }

        mutating func integer(_ name: String, _ range: ClosedRange<Int64>) -> Int64? {
            guard let value = take(name) else { return nil }
            guard case .int(let number) = value, range.contains(number) else {
                problems.append("\(path).\(name): must be a whole number from \(range.lowerBound) to \(range.upperBound)")
                return nil
            }
            return number
        }

        mutating func flag(_ name: String) -> Bool? {
            guard let value = take(name) else { return nil }
            guard case .bool(let flag) = value else {
                problems.append("\(path).\(name): must be true or false")
                return nil
            }
            return flag
        }

        /// `extra`: an object whose values become strings (FCM's `data` takes strings only).
        mutating func extra(reserved: Set<String>) -> [String: JSONValue]? {
            guard let value = take("extra") else { return nil }
            guard let members = value.objectValue else {
                problems.append("\(path).extra: Invalid Extra Push Payload: must be an object of key-value pairs")
                return nil
            }
            var data: [String: JSONValue] = [:]
            for (key, member) in members.sorted(by: { $0.key < $1.key }) {
                if reserved.contains(key) {
                    problems.append("\(path).extra.\(key): Invalid Extra Push Payload: the key '\(key)' is reserved")
                    continue
                }
                switch member {
                case .string: data[key] = member
                case .object, .array: problems.append("\(path).extra.\(key): must be a string, number or boolean (push data values are strings)")
                case .null: continue
                default: data[key] = .string(member.serialized())
                }
            }
            return data
        }

        /// `send_to_most_recent_device_only: true` would need a per-message device choice Beckon does not make.
        mutating func mostRecentDeviceOnly() {
            if flag("send_to_most_recent_device_only") == true {
                problems.append("\(path).send_to_most_recent_device_only: not supported; Beckon sends to each of the user's valid tokens")
            }
        }

        mutating func refuse(_ names: [String], because reason: String) {
            for name in names where take(name) != nil { problems.append("\(path).\(name): not supported: \(reason)") }
        }

        mutating func finish() {
            for name in object.keys.sorted() where !taken.contains(name) { problems.append("\(path).\(name): unknown field") }
        }
    }

    private static func apple(_ fields: inout Fields, now: Date) -> [String: JSONValue] {
        var push: [String: JSONValue] = [:]
        let silent = fields.flag("content-available") == true
        if let alert = fields.take("alert") {
            if let text = alert.stringValue {
                push["body"] = .string(text)
            } else if let object = alert.objectValue {
                for (name, member) in object.sorted(by: { $0.key < $1.key }) {
                    switch name {
                    case "title", "body", "sound":
                        if let text = member.stringValue { push[name] = .string(text) } else {
                            fields.problems.append("\(fields.path).alert.\(name): must be a string")
                        }
                    default:
                        fields.problems.append("\(fields.path).alert.\(name): not supported (alert objects take title, body and sound; localized keys are not sent)")
                    }
                }
            } else {
                fields.problems.append("\(fields.path).alert: must be a string or an alert object {\"title\", \"body\"}")
            }
        } else if !silent {
            fields.problems.append("\(fields.path).alert: is required unless content-available is true")
        }
        if silent { push["content_available"] = .bool(true) }
        if let badge = fields.integer("badge", 0...99_999) { push["badge"] = .int(badge) }
        if let sound = fields.string("sound") { push["sound"] = .string(sound) }
        if let data = fields.extra(reserved: ["ab", "aps"]) { push["data"] = .object(data) }
        if let level = fields.string("interruption_level") { push["interruption_level"] = .string(level) }
        if let expiry = fields.string("expiry") {
            if let time = BrazeTime.parse(expiry) { push["ttl_seconds"] = .int(max(0, Int64(time.timeIntervalSince(now).rounded(.down)))) } else {
                fields.problems.append("\(fields.path).expiry: must be an ISO 8601 time")
            }
        }
        if let uri = fields.string("custom_uri") { push["deep_link"] = .string(uri) }
        if let thread = fields.string("notification_group_thread_id") { push["thread_id"] = .string(thread) }
        if let asset = fields.string("asset_url") { push["image_url"] = .string(asset) }
        _ = fields.take("asset_file_type")
        _ = fields.take("relevance_score")
        if let collapse = fields.string("collapse_id") { push["collapse_key"] = .string(collapse) }
        if let mutable = fields.flag("mutable_content") { push["mutable_content"] = .bool(mutable) }
        if let category = fields.string("category") { push["category"] = .string(category) }
        if let priority = fields.integer("apns_priority", 1...10) { push["priority"] = .string(priority == 10 ? "high" : "normal") }
        fields.mostRecentDeviceOnly()
        fields.refuse(["buttons"], because: "iOS buttons come from the app's notification category; set category")
        fields.finish()
        return push
    }

    private static func android(_ fields: inout Fields) -> [String: JSONValue] {
        var push: [String: JSONValue] = [:]
        let alert = fields.string("alert")
        let title = fields.string("title")
        if fields.flag("send_to_sync") == true {
            if alert != nil || title != nil {
                fields.problems.append("\(fields.path).send_to_sync: a send-to-sync (silent) push cannot have an alert or a title")
            }
            push["content_available"] = .bool(true)
        } else {
            if alert == nil { fields.problems.append("\(fields.path).alert: is required") }
            if title == nil { fields.problems.append("\(fields.path).title: is required") }
        }
        if let alert { push["body"] = .string(alert) }
        if let title { push["title"] = .string(title) }
        if var data = fields.extra(reserved: []) {
            if let image = data.removeValue(forKey: "appboy_image_url") { push["image_url"] = image }
            push["data"] = .object(data)
        }
        if let channel = fields.string("notification_channel_id") { push["channel_id"] = .string(channel) }
        if let priority = fields.take("priority") {
            // Braze: −2…2, anything else is 0.
            let level: Int64
            if case .int(let number) = priority, (-2...2).contains(number) { level = number } else { level = 0 }
            push["notification_priority"] = .string(["PRIORITY_MIN", "PRIORITY_LOW", "PRIORITY_DEFAULT", "PRIORITY_HIGH", "PRIORITY_MAX"][Int(level + 2)])
        }
        if let delivery = fields.string("android_priority") {
            if ["normal", "high"].contains(delivery) { push["priority"] = .string(delivery) } else {
                fields.problems.append("\(fields.path).android_priority: must be normal or high")
            }
        }
        if let collapse = fields.string("collapse_key") { push["collapse_key"] = .string(collapse) }
        if let sound = fields.string("sound") { push["sound"] = .string(sound) }
        if let uri = fields.string("custom_uri") { push["deep_link"] = .string(uri) }
        if let ttl = fields.integer("time_to_live", 0...2_419_200) { push["ttl_seconds"] = .int(ttl) }
        if let id = fields.integer("notification_id", Int64(Int32.min)...Int64(Int32.max)) { push["tag"] = .string(String(id)) }
        if let color = fields.integer("accent_color", 0...0xFFFF_FFFF) {
            push["color"] = .string("#" + String(format: "%06x", Int(color & 0xFF_FFFF)))
        }
        fields.mostRecentDeviceOnly()
        fields.refuse(["summary_text", "push_icon_image_url", "buttons", "conversation_data"], because: "Beckon's FCM notification has no such field yet")
        fields.finish()
        return push
    }

    private static func web(_ fields: inout Fields) -> [String: JSONValue] {
        var push: [String: JSONValue] = [:]
        if let alert = fields.string("alert") { push["body"] = .string(alert) } else { fields.problems.append("\(fields.path).alert: is required") }
        if let title = fields.string("title") { push["title"] = .string(title) } else { fields.problems.append("\(fields.path).title: is required") }
        if let data = fields.extra(reserved: []) { push["data"] = .object(data) }
        if let uri = fields.string("custom_uri") { push["deep_link"] = .string(uri) }
        if let icon = fields.string("image_url") { push["icon"] = .string(icon) }
        if let image = fields.string("large_image_url") { push["image_url"] = .string(image) }
        if let interaction = fields.flag("require_interaction") { push["require_interaction"] = .bool(interaction) }
        if let ttl = fields.integer("time_to_live", 0...2_419_200) { push["ttl_seconds"] = .int(ttl) }
        if let buttons = fields.take("buttons") {
            if let list = buttons.arrayValue, list.count <= 2 {
                var actions: [JSONValue] = []
                for (index, button) in list.enumerated() {
                    let path = "\(fields.path).buttons[\(index)]"
                    guard let text = button["text"]?.stringValue, !text.isEmpty else {
                        fields.problems.append("\(path).text: is required")
                        continue
                    }
                    let action = button["action"]?.stringValue ?? "OPEN_APP"
                    guard ["OPEN_APP", "URI", "CLOSE"].contains(action) else {
                        fields.problems.append("\(path).action: must be OPEN_APP, URI or CLOSE")
                        continue
                    }
                    var entry: [String: JSONValue] = ["action": .string(action.lowercased()), "title": .string(text)]
                    if action == "URI" {
                        guard let uri = button["uri"]?.stringValue, !uri.isEmpty else {
                            fields.problems.append("\(path).uri: is required when action is URI")
                            continue
                        }
                        entry["url"] = .string(uri)
                    }
                    actions.append(.object(entry))
                }
                push["actions"] = .array(actions)
            } else {
                fields.problems.append("\(fields.path).buttons: must be an array of at most 2 buttons {\"text\", \"action\", \"uri\"}")
            }
        }
        fields.mostRecentDeviceOnly()
        fields.finish()
        return push
    }
}
