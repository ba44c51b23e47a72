import Foundation

/// What an app SDK sends in one call to `POST /sdk/v1/data`: one device's queued sessions,
/// events, purchases, attribute changes and its push token.
///
/// The device is the anonymous identity (`device_id`); `external_id`, once the app knows the
/// user, identifies the profile and merges the device's anonymous history into it.
public struct SDKBatch: Sendable {
    public var appID: String
    public var deviceID: String
    public var externalID: String?
    public var platform: String
    public var appVersion: String?
    public var device: DeviceInfo?
    public var sessions: [SessionRecord] = []
    /// Events, purchases and attributes, validated by the same rules as `/users/track`.
    public var track = TrackRequest()
    public var pushToken: PushTokenRegistration?
    /// Pushes the user opened: the `beckon_message_id` of the payload and when.
    public var pushOpens: [PushOpen] = []

    public init(appID: String, deviceID: String, externalID: String?, platform: String) {
        self.appID = appID
        self.deviceID = deviceID
        self.externalID = externalID
        self.platform = platform
    }

    /// The anonymous identity of a device before (and besides) its external id.
    public var deviceAlias: UserAlias { UserAlias(name: deviceID, label: "beckon_device_id") }

    /// The profile this batch writes to.
    public var identifier: UserIdentifier { externalID.map(UserIdentifier.externalID) ?? .alias(deviceAlias) }
}

/// A push the user opened, as the SDK reports it.
public struct PushOpen: Sendable, Hashable {
    /// The payload's `beckon_message_id` (a delivery id) or the message id.
    public let messageID: String
    public let time: Int64

    public init(messageID: String, time: Int64) {
        self.messageID = messageID
        self.time = time
    }

    /// The durable message id: a delivery id is `<message id>.<8 hex digits>`.
    public var durableMessageID: String {
        guard let dot = messageID.lastIndex(of: "."), messageID[messageID.index(after: dot)...].count == 8 else { return messageID }
        return String(messageID[..<dot])
    }
}

/// Checks a Web Push subscription: an https endpoint, a 65-byte uncompressed P-256 `p256dh`
/// and a 16-byte `auth`, both base64url.
public enum WebPushSubscription {
    /// The problem with the subscription, naming the field, or `nil` when it is usable.
    public static func problem(endpoint: String, p256dh: String?, auth: String?, path: String) -> String? {
        guard let url = URLComponents(string: endpoint), url.scheme == "https", url.host?.isEmpty == false else {
            return "'\(path).token' of a web push subscription must be its https endpoint URL"
        }
        guard let key = p256dh.flatMap(decode), key.count == 65, key.first == 4 else {
            return "'\(path).web_push_keys.p256dh' must be the subscription's 65-byte uncompressed P-256 key as base64url"
        }
        guard let secret = auth.flatMap(decode), secret.count == 16 else {
            return "'\(path).web_push_keys.auth' must be the subscription's 16-byte auth secret as base64url"
        }
        return nil
    }

    /// base64url (or base64), with or without padding.
    static func decode(_ text: String) -> [UInt8]? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64).map(Array.init)
    }
}

/// Device details an SDK reports.
public struct DeviceInfo: Sendable, Hashable {
    public let model: String?
    public let osVersion: String?
    public let carrier: String?
    public let adTrackingEnabled: Bool?

    public init(model: String?, osVersion: String?, carrier: String?, adTrackingEnabled: Bool?) {
        self.model = model
        self.osVersion = osVersion
        self.carrier = carrier
        self.adTrackingEnabled = adTrackingEnabled
    }
}

/// One app session.
public struct SessionRecord: Sendable, Hashable {
    public let sessionID: String
    public let startMillis: Int64
    public let endMillis: Int64?

    public init(sessionID: String, startMillis: Int64, endMillis: Int64?) {
        self.sessionID = sessionID
        self.startMillis = startMillis
        self.endMillis = endMillis
    }
}

extension SDKBatch {
    /// iOS authorization states and the Android/web equivalents the SDK may send.
    public static let authorizationStates: Set<String> = ["authorized", "provisional", "denied", "blocked"]

    /// Validates an SDK body. Fatal problems (no device, bad platform) throw; per-object problems
    /// of events, purchases and attributes are reported like `/users/track` does.
    public static func parse(_ body: JSONValue, appID: String, now: Date, limits: TrackLimits = TrackLimits()) throws -> SDKBatch {
        guard let object = body.objectValue else { throw RequestError("Bad Request", ["the body must be a JSON object"]) }
        guard let deviceID = object["device_id"]?.stringValue, !deviceID.isEmpty, deviceID.count <= 255 else {
            throw RequestError("Bad Request", ["'device_id' is required and must be a string of 1 to 255 characters"])
        }
        guard let platform = object["platform"]?.stringValue, PushPlatform.all.contains(platform) else {
            throw RequestError("Bad Request", ["'platform' must be one of ios, android, web"])
        }
        var externalID: String?
        if let value = object["external_id"], !value.isNull {
            guard let id = value.stringValue, !id.isEmpty, id.count <= 512 else {
                throw RequestError("Bad Request", ["'external_id' must be a non-empty string of at most 512 characters"])
            }
            externalID = id
        }
        var batch = SDKBatch(appID: appID, deviceID: deviceID, externalID: externalID, platform: platform)
        batch.appVersion = object["app_version"]?.stringValue
        if let device = object["device"], !device.isNull {
            guard device.objectValue != nil else { throw RequestError("Bad Request", ["'device' must be an object"]) }
            var tracking: Bool?
            if case .bool(let flag)? = device["ad_tracking_enabled"] { tracking = flag }
            batch.device = DeviceInfo(
                model: device["model"]?.stringValue, osVersion: device["os_version"]?.stringValue,
                carrier: device["carrier"]?.stringValue, adTrackingEnabled: tracking)
        }
        let nowMillis = BrazeTime.epochMilliseconds(now)
        if let sessions = object["sessions"], !sessions.isNull {
            guard let elements = sessions.arrayValue, elements.count <= 100 else {
                throw RequestError("Bad Request", ["'sessions' must be an array of at most 100 sessions"])
            }
            for (index, element) in elements.enumerated() {
                guard let id = element["session_id"]?.stringValue, !id.isEmpty else {
                    throw RequestError("Bad Request", ["'sessions[\(index)].session_id' is required"])
                }
                guard let start = element["start"]?.stringValue.flatMap(BrazeTime.parse) else {
                    throw RequestError("Bad Request", ["'sessions[\(index)].start' must be an ISO 8601 time"])
                }
                var end: Int64?
                if let value = element["end"], !value.isNull {
                    guard let date = value.stringValue.flatMap(BrazeTime.parse) else {
                        throw RequestError("Bad Request", ["'sessions[\(index)].end' must be an ISO 8601 time"])
                    }
                    end = min(BrazeTime.epochMilliseconds(date), nowMillis)
                }
                batch.sessions.append(
                    SessionRecord(sessionID: id, startMillis: min(BrazeTime.epochMilliseconds(start), nowMillis), endMillis: end))
            }
        }
        if let token = object["push_token"], !token.isNull {
            guard let text = token["token"]?.stringValue, !text.isEmpty, text.utf8.count <= 4096 else {
                throw RequestError("Bad Request", ["'push_token.token' is required (at most 4096 bytes)"])
            }
            let authorization = token["authorization"]?.stringValue ?? "authorized"
            guard authorizationStates.contains(authorization) else {
                throw RequestError("Bad Request", ["'push_token.authorization' must be one of authorized, provisional, denied, blocked"])
            }
            var keys: [String: String] = [:]
            if platform == "web" {
                for key in ["endpoint", "p256dh", "auth", "vapid_public_key"] {
                    if let value = token["web_push_keys"]?[key]?.stringValue { keys[key] = value }
                }
                if let problem = WebPushSubscription.problem(endpoint: text, p256dh: keys["p256dh"], auth: keys["auth"], path: "push_token") {
                    throw RequestError("Bad Request", [problem])
                }
            }
            batch.pushToken = PushTokenRegistration(
                appID: appID, token: text, deviceID: deviceID, platform: platform, authorization: authorization, webPushKeys: keys)
        }
        if let opens = object["push_opens"], !opens.isNull {
            guard let elements = opens.arrayValue, elements.count <= 100 else {
                throw RequestError("Bad Request", ["'push_opens' must be an array of at most 100 opens {\"message_id\", \"time\"}"])
            }
            for (index, element) in elements.enumerated() {
                guard let id = element["message_id"]?.stringValue, !id.isEmpty, id.count <= 200 else {
                    throw RequestError("Bad Request", ["'push_opens[\(index)].message_id' is required: the push payload's beckon_message_id"])
                }
                var time = nowMillis
                if let value = element["time"], !value.isNull {
                    guard let date = value.stringValue.flatMap(BrazeTime.parse) else {
                        throw RequestError("Bad Request", ["'push_opens[\(index)].time' must be an ISO 8601 time"])
                    }
                    time = min(BrazeTime.epochMilliseconds(date), nowMillis)
                }
                batch.pushOpens.append(PushOpen(messageID: id, time: time))
            }
        }
        let identity: [String: JSONValue] = {
            if let externalID { return ["external_id": .string(externalID)] }
            return ["user_alias": .object(["alias_name": .string(deviceID), "alias_label": .string("beckon_device_id")]),
                    "_update_existing_only": .bool(false)]
        }()
        func withIdentity(_ value: JSONValue) -> JSONValue {
            guard var members = value.objectValue else { return value }
            for key in ["external_id", "user_alias", "braze_id", "_update_existing_only"] {
                members[key] = nil
            }
            members.merge(identity) { _, new in new }
            members["app_id"] = members["app_id"] ?? .string(appID)
            return .object(members)
        }
        var trackBody: [String: JSONValue] = [:]
        if let attributes = object["attributes"], !attributes.isNull {
            guard var members = attributes.objectValue else {
                throw RequestError("Bad Request", ["'attributes' must be an object of attribute changes"])
            }
            members.merge(identity) { _, new in new }
            trackBody["attributes"] = .array([.object(members)])
        }
        for key in ["events", "purchases"] {
            guard let value = object[key], !value.isNull else { continue }
            guard let elements = value.arrayValue else { throw RequestError("Bad Request", ["'\(key)' must be an array"]) }
            trackBody[key] = .array(elements.map(withIdentity))
        }
        if !trackBody.isEmpty {
            var track = try TrackRequest.parse(.object(trackBody), now: now, limits: limits)
            track.attributes = track.attributes.map { update in
                var update = update
                update.updateExistingOnly = false
                return update
            }
            track.events = track.events.map { event in
                var event = event
                event.updateExistingOnly = false
                return event
            }
            track.purchases = track.purchases.map { purchase in
                var purchase = purchase
                purchase.updateExistingOnly = false
                return purchase
            }
            batch.track = track
        }
        return batch
    }
}
