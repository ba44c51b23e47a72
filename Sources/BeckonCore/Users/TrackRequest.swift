import Foundation

/// A validated `/users/track` body: the objects to apply and the per-object errors to report.
///
/// Validation is per object: an object with any bad field is rejected whole and reported with
/// its array and index; its valid siblings are still applied, as Braze does.
public struct TrackRequest: Sendable {
    public var attributes: [AttributeUpdate] = []
    public var events: [TrackedEvent] = []
    public var purchases: [TrackedPurchase] = []
    public var errors: [TrackItemError] = []
    /// Which arrays the body carried; the response only counts those.
    public var hadAttributes = false
    public var hadEvents = false
    public var hadPurchases = false

    public init() {}

    /// The most objects one array may carry.
    public static let maxObjectsPerArray = 75
}

/// One rejected object of a `/users/track` body, in Braze's error shape.
public struct TrackItemError: Sendable, Hashable, Codable {
    public let type: String
    public let inputArray: String
    public let index: Int

    public init(type: String, inputArray: String, index: Int) {
        self.type = type
        self.inputArray = inputArray
        self.index = index
    }

    enum CodingKeys: String, CodingKey {
        case type
        case inputArray = "input_array"
        case index
    }
}

/// A fatal problem with a whole request body: nothing was applied.
public struct RequestError: Error, Sendable, CustomStringConvertible {
    /// The Braze `message` text, e.g. `Bad Request` or `Max Input Length Exceeded`.
    public let message: String
    /// Details naming the field and the problem.
    public let details: [String]

    public init(_ message: String, _ details: [String] = []) {
        self.message = message
        self.details = details
    }

    public var description: String { ([message] + details).joined(separator: ": ") }
}

/// Standard profile fields that `/users/track` sets by name (reference §2.2.1).
public enum ProfileField: String, Sendable, CaseIterable, Codable {
    case firstName = "first_name"
    case lastName = "last_name"
    case email
    case phone
    case country
    case language
    case timeZone = "time_zone"
    case gender
    case dob
    case homeCity = "home_city"
    case emailSubscribe = "email_subscribe"
    case pushSubscribe = "push_subscribe"
    case imageURL = "image_url"
}

/// Standard fields kept on the profile as they were sent (legacy or rarely filtered).
public enum ProfileExtraField {
    public static let times: Set<String> = ["date_of_first_session", "date_of_last_session", "marked_email_as_spam_at"]
    public static let booleans: Set<String> = ["email_open_tracking_disabled", "email_click_tracking_disabled"]
    public static let objects: Set<String> = ["facebook", "twitter"]
}

/// One attributes object: who, and what to change on the profile.
public struct AttributeUpdate: Sendable {
    public var index: Int
    public var identifier: UserIdentifier
    public var updateExistingOnly: Bool
    /// Standard fields to set; a `nil` value removes the field.
    public var profile: [ProfileField: String?] = [:]
    /// Standard fields kept as JSON (legacy and session dates); `.null` removes.
    public var extras: [String: JSONValue] = [:]
    public var lastCoordinates: (longitude: Double, latitude: Double)?
    public var custom: [CustomAttributeChange] = []
    public var subscriptionGroups: [SubscriptionGroupChange] = []
    public var pushTokens: [PushTokenRegistration] = []
    public var mergeObjects = false

    public init(index: Int, identifier: UserIdentifier, updateExistingOnly: Bool) {
        self.index = index
        self.identifier = identifier
        self.updateExistingOnly = updateExistingOnly
    }
}

/// A change to one custom attribute.
public struct CustomAttributeChange: Sendable {
    public let name: String
    public let operation: CustomAttributeOperation

    public init(name: String, operation: CustomAttributeOperation) {
        self.name = name
        self.operation = operation
    }
}

/// What `/users/track` can do to a custom attribute (reference §2.2.2 and §2.2.4).
public enum CustomAttributeOperation: Sendable {
    /// Replace with a value: string, number, boolean, time (kept as the ISO string), array, object.
    case set(JSONValue)
    /// `null`: remove the attribute.
    case remove
    /// `{"inc": N}`.
    case increment(Int64)
    /// `{"add": […], "remove": […]}` on an array of scalars.
    case modifyArray(add: [JSONValue], remove: [JSONValue])
    /// `{"$add", "$update", "$remove"}` on an array of objects.
    case modifyObjectArray(add: [JSONValue], update: [ObjectArrayUpdate], remove: [ObjectArrayMatch])
}

/// `$update` of an array of objects: merge `newObject` into the elements whose key matches.
public struct ObjectArrayUpdate: Sendable {
    public let match: ObjectArrayMatch
    public let newObject: [String: JSONValue]
}

/// `$identifier_key` / `$identifier_value`: which elements of an array of objects an operation hits.
public struct ObjectArrayMatch: Sendable {
    public let key: String
    public let value: JSONValue
}

/// `subscription_groups[]` entry.
public struct SubscriptionGroupChange: Sendable, Hashable {
    public let groupID: String
    public let state: String
}

/// A push token registered through the REST API or the SDK.
public struct PushTokenRegistration: Sendable, Hashable {
    public let appID: String
    public let token: String
    public let deviceID: String?
    /// `ios`, `android` or `web`.
    public let platform: String
    /// iOS authorization: `authorized`, `provisional` or `denied`; `authorized` elsewhere unless blocked.
    public let authorization: String
    /// Web push keys, when the token is a Web Push subscription.
    public let webPushKeys: [String: String]

    public init(
        appID: String, token: String, deviceID: String?, platform: String, authorization: String,
        webPushKeys: [String: String] = [:]
    ) {
        self.appID = appID
        self.token = token
        self.deviceID = deviceID
        self.platform = platform
        self.authorization = authorization
        self.webPushKeys = webPushKeys
    }

    /// Whether the token can show visible notifications (authorized or provisional).
    public var foreground: Bool { authorization != "denied" && authorization != "blocked" }
}

/// One event occurrence.
public struct TrackedEvent: Sendable {
    public var index: Int
    public var identifier: UserIdentifier
    public var updateExistingOnly: Bool
    public var name: String
    public var timeMillis: Int64
    public var appID: String?
    /// The properties object, already validated; `nil` when absent.
    public var properties: [String: JSONValue]?

    public init(
        index: Int, identifier: UserIdentifier, updateExistingOnly: Bool, name: String, timeMillis: Int64,
        appID: String?, properties: [String: JSONValue]?
    ) {
        self.index = index
        self.identifier = identifier
        self.updateExistingOnly = updateExistingOnly
        self.name = name
        self.timeMillis = timeMillis
        self.appID = appID
        self.properties = properties
    }
}

/// One purchase.
public struct TrackedPurchase: Sendable {
    public var index: Int
    public var identifier: UserIdentifier
    public var updateExistingOnly: Bool
    public var productID: String
    public var currency: String
    public var price: Double
    public var quantity: Int
    public var timeMillis: Int64
    public var appID: String?
    public var properties: [String: JSONValue]?
}
