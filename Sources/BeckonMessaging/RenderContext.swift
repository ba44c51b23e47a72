import BeckonCore
import Liquid

/// The one Liquid context every render is made with — sends, `POST /beckon/v1/campaigns/{id}/preview`,
/// `POST /liquid/preview`, `beckon liquid render` and (later) the dashboard — so a preview shows
/// exactly what is sent.
public struct RenderContext: Sendable {
    /// The campaign fields templates read as `campaign.*`.
    public struct Campaign: Sendable {
        public var apiID: String?
        public var name: String
        public var dispatchID: String?
        public var sendID: String?
        public var messageID: String?
        public var variantName: String

        public init(apiID: String?, name: String, dispatchID: String?, sendID: String?, messageID: String?, variantName: String) {
            self.apiID = apiID
            self.name = name
            self.dispatchID = dispatchID
            self.sendID = sendID
            self.messageID = messageID
            self.variantName = variantName
        }
    }

    /// The user's messaging profile (`UserStore.profiles`), or an inline user.
    public var user: JSONValue?
    public var campaign: Campaign?
    /// `event_properties` (action triggers) or `api_trigger_properties` (API sends) and their values.
    public var triggerProperties: (key: String, value: JSONValue)?
    /// Further top-level objects (`canvas_entry_properties`, a preview's `context`, a CLI data file).
    public var extra: [String: JSONValue]

    public init(
        user: JSONValue? = nil, campaign: Campaign? = nil, triggerProperties: (key: String, value: JSONValue)? = nil,
        extra: [String: JSONValue] = [:]
    ) {
        self.user = user
        self.campaign = campaign
        self.triggerProperties = triggerProperties
        self.extra = extra
    }

    /// The data as JSON, as templates see it before Braze's `${…}` names are added.
    public var data: JSONValue {
        var data = extra
        if let user { data["user"] = user }
        if let campaign {
            data["campaign"] = .object([
                "api_id": campaign.apiID.map(JSONValue.string) ?? .null, "name": .string(campaign.name),
                "dispatch_id": campaign.dispatchID.map(JSONValue.string) ?? .null, "send_id": campaign.sendID.map(JSONValue.string) ?? .null,
                "message_api_id": campaign.messageID.map(JSONValue.string) ?? .null, "variant_name": .string(campaign.variantName),
            ])
        }
        if let triggerProperties { data[triggerProperties.key] = triggerProperties.value }
        return .object(data)
    }

    /// The Liquid context: the data with Braze's personalization names.
    public var liquid: LiquidObject { BrazeContext.make(from: LiquidValue(data)) }
}

extension LiquidValue {
    /// The same document as a Liquid value (no text round trip).
    public init(_ json: JSONValue) {
        switch json {
        case .null: self = .nil
        case .bool(let flag): self = .bool(flag)
        case .int(let number): self = .int(Int(number))
        case .double(let number): self = .double(number)
        case .string(let text): self = .string(text)
        case .array(let items): self = .array(items.map(LiquidValue.init))
        case .object(let members):
            var object = LiquidObject()
            for key in members.keys.sorted() { object[key] = LiquidValue(members[key] ?? .null) }
            self = .object(object)
        }
    }
}
