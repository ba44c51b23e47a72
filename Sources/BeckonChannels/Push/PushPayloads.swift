import BeckonCore
import Crypto
import Foundation

extension PushDeliveryID {
    /// The longest delivery id a size check must leave room for.
    static let placeholder = String(repeating: "0", count: 48)
}

/// The APNs request of one rendered push: headers and the `aps` payload (RFC-free, Apple's
/// "Generating a remote notification"). The body limit is 4096 bytes.
enum APNsRequest {
    static let maxPayloadBytes = 4_096

    static func build(_ content: PushContent, campaignID: String?) throws -> JSONValue {
        var aps: [String: JSONValue] = [:]
        var alert: [String: JSONValue] = [:]
        for (field, key) in [("title", "title"), ("subtitle", "subtitle"), ("body", "body")] {
            if let text = content.text(field) { alert[key] = .string(text) }
        }
        if !alert.isEmpty { aps["alert"] = .object(alert) }
        if let badge = try content.integer("badge", range: 0...99_999) { aps["badge"] = .int(badge) }
        if let sound = content.text("sound") { aps["sound"] = .string(sound) }
        if let thread = content.text("thread_id") { aps["thread-id"] = .string(thread) }
        if let category = content.text("category") { aps["category"] = .string(category) }
        if content.flag("content_available") { aps["content-available"] = .int(1) }
        if content.text("image_url") != nil || content.flag("mutable_content") { aps["mutable-content"] = .int(1) }
        if let level = content.text("interruption_level") { aps["interruption-level"] = .string(level) }
        var payload: [String: JSONValue] = content.data.mapValues(JSONValue.string)
        payload["aps"] = .object(aps)
        if let link = content.text("deep_link") { payload["deep_link"] = .string(link) }
        if let image = content.text("image_url") { payload["image_url"] = .string(image) }
        if let campaignID { payload["campaign_id"] = .string(campaignID) }
        var headers: [String: JSONValue] = [
            "apns-push-type": .string(content.isSilent ? "background" : "alert"),
            "apns-priority": .string(content.isSilent || content.text("priority") == "normal" ? "5" : "10"),
        ]
        if let collapse = content.text("collapse_key") {
            guard collapse.utf8.count <= 64 else {
                throw MessageRenderError("push collapse_key is \(collapse.utf8.count) bytes; APNs allows at most 64 (apns-collapse-id)")
            }
            headers["apns-collapse-id"] = .string(collapse)
        }
        var request: [String: JSONValue] = ["headers": .object(headers), "payload": .object(payload)]
        if let ttl = try content.integer("ttl_seconds", range: 0...2_419_200) { request["ttl_seconds"] = .int(ttl) }
        var sized = payload
        sized["beckon_message_id"] = .string(PushDeliveryID.placeholder)
        let size = JSONValue.object(sized).serialized().utf8.count
        guard size <= maxPayloadBytes else {
            throw MessageRenderError("the iOS push payload is \(size) bytes; APNs allows at most \(maxPayloadBytes)")
        }
        return .object(request)
    }

    /// The body sent for one token.
    static func body(_ rendered: JSONValue, deliveryID: String) -> String {
        var payload = rendered["payload"]?.objectValue ?? [:]
        payload["beckon_message_id"] = .string(deliveryID)
        return JSONValue.object(payload).serialized()
    }
}

/// The FCM HTTP v1 `messages:send` body of one rendered push for Android tokens.
enum FCMRequest {
    /// FCM's limit on the `notification` and `data` keys and values; Beckon keeps 96 bytes of headroom.
    static let maxPayloadBytes = 4_000
    static let notificationPriorities = [
        "PRIORITY_UNSPECIFIED", "PRIORITY_MIN", "PRIORITY_LOW", "PRIORITY_DEFAULT", "PRIORITY_HIGH", "PRIORITY_MAX",
    ]

    /// Keys FCM reserves in `data`.
    static func isReservedDataKey(_ key: String) -> Bool {
        ["from", "gcm", "message_type", "collapse_key", "notification", "aps", "campaign_id", "deep_link", "image_url", "content_available"]
            .contains(key) || key.hasPrefix("google")
    }

    static func build(_ content: PushContent, campaignID: String?) throws -> JSONValue {
        var message: [String: JSONValue] = [:]
        var notification: [String: JSONValue] = [:]
        if let title = content.text("title") { notification["title"] = .string(title) }
        if let body = content.text("body") { notification["body"] = .string(body) }
        if let image = content.text("image_url") { notification["image"] = .string(image) }
        if !content.isSilent, !notification.isEmpty { message["notification"] = .object(notification) }
        var data = content.data
        if let link = content.text("deep_link") { data["deep_link"] = link }
        if let campaignID { data["campaign_id"] = campaignID }
        if content.isSilent { data["content_available"] = "1" }
        message["data"] = .object(data.mapValues(JSONValue.string))
        var android: [String: JSONValue] = ["priority": .string(content.text("priority") == "normal" ? "NORMAL" : "HIGH")]
        if let ttl = try content.integer("ttl_seconds", range: 0...2_419_200) { android["ttl"] = .string("\(ttl)s") }
        if let collapse = content.text("collapse_key") { android["collapse_key"] = .string(collapse) }
        var androidNotification: [String: JSONValue] = [:]
        for key in ["channel_id", "notification_priority", "sound", "tag", "icon", "click_action", "color"] {
            if let value = content.text(key) { androidNotification[key] = .string(value) }
        }
        if let color = androidNotification["color"]?.stringValue, !Self.isColor(color) {
            throw MessageRenderError("push android.color rendered '\(color.prefix(20))', not a #rrggbb colour")
        }
        if !androidNotification.isEmpty, !content.isSilent { android["notification"] = .object(androidNotification) }
        message["android"] = .object(android)
        var sizedData = data
        sizedData["beckon_message_id"] = PushDeliveryID.placeholder
        let size = Self.size(notification: content.isSilent ? [:] : notification, data: sizedData)
        guard size <= maxPayloadBytes else {
            throw MessageRenderError("the Android push is \(size) bytes of notification and data; FCM allows at most \(maxPayloadBytes)")
        }
        return .object(["message": .object(message)])
    }

    static func size(notification: [String: JSONValue], data: [String: String]) -> Int {
        notification.reduce(0) { $0 + $1.key.utf8.count + ($1.value.stringValue?.utf8.count ?? 0) }
            + data.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
    }

    static func isColor(_ text: String) -> Bool {
        text.count == 7 && text.first == "#" && text.dropFirst().allSatisfy(\.isHexDigit)
    }

    /// The body sent for one token.
    static func body(_ rendered: JSONValue, token: String, deliveryID: String) -> String {
        var message = rendered["message"]?.objectValue ?? [:]
        message["token"] = .string(token)
        var data = message["data"]?.objectValue ?? [:]
        data["beckon_message_id"] = .string(deliveryID)
        message["data"] = .object(data)
        return JSONValue.object(["message": .object(message)]).serialized()
    }
}

/// The Web Push payload (before encryption) the web SDK's service worker shows, and its headers.
enum WebPushRequest {
    /// The largest encrypted body Beckon sends: 4078 bytes, so the plaintext may have 3975.
    static let maxEncryptedBytes = 4_078
    static let maxPlaintextBytes = maxEncryptedBytes - 103

    static func build(_ content: PushContent, campaignID: String?) throws -> JSONValue {
        var payload: [String: JSONValue] = [:]
        if let title = content.text("title") { payload["title"] = .string(title) }
        if let body = content.text("body") { payload["body"] = .string(body) }
        if let icon = content.text("icon") { payload["icon"] = .string(icon) }
        if let image = content.text("image_url") { payload["image"] = .string(image) }
        if let link = content.text("deep_link") { payload["url"] = .string(link) }
        if let actions = content.fields["actions"] { payload["actions"] = actions }
        if content.flag("require_interaction") { payload["require_interaction"] = .bool(true) }
        payload["data"] = .object(content.data.mapValues(JSONValue.string))
        if let campaignID { payload["campaign_id"] = .string(campaignID) }
        let urgency: String = content.isSilent ? "low" : content.text("priority") == "normal" ? "normal" : "high"
        var headers: [String: JSONValue] = [
            "TTL": .string(String(try content.integer("ttl_seconds", range: 0...2_419_200) ?? 2_419_200)), "Urgency": .string(urgency),
        ]
        if let topic = content.text("collapse_key") {
            guard topic.count <= 32, topic.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_") })
            else {
                throw MessageRenderError("push collapse_key '\(topic.prefix(40))' cannot be a Web Push Topic (at most 32 characters of A–Z a–z 0–9 - _)")
            }
            headers["Topic"] = .string(topic)
        }
        var sized = payload
        sized["beckon_message_id"] = .string(PushDeliveryID.placeholder)
        let size = JSONValue.object(sized).serialized().utf8.count
        guard size <= maxPlaintextBytes else {
            throw MessageRenderError(
                "the web push payload is \(size + 103) bytes after encryption; Beckon sends at most \(maxEncryptedBytes) (\(maxPlaintextBytes) before)")
        }
        return .object(["headers": .object(headers), "payload": .object(payload)])
    }

    /// The plaintext sent (encrypted) to one subscription.
    static func plaintext(_ rendered: JSONValue, deliveryID: String) -> [UInt8] {
        var payload = rendered["payload"]?.objectValue ?? [:]
        payload["beckon_message_id"] = .string(deliveryID)
        return Array(JSONValue.object(payload).serialized().utf8)
    }
}
