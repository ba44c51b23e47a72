/// Builds a render context from Braze-shaped data, so `${first_name}`, `custom_attribute.${tier}`,
/// `event_properties.${…}` and the other Braze personalization objects resolve.
///
/// The data is an object: `{"user": {"first_name", "last_name", "email", "phone", "external_id",
/// "braze_id", "home_city", "country", "language", "time_zone", "dob", "gender", …,
/// "custom_attributes": {…}}, "event_properties": {…}, "canvas_entry_properties": {…},
/// "api_trigger_properties": {…}, "campaign": {…}, "canvas": {…}, "context": {…}}`.
/// Content blocks are passed separately (`RenderEnvironment.contentBlocks`).
public enum BrazeContext {
    /// `${name}` → the user field it reads (first match wins).
    static let standardAttributes: [(String, [String])] = [
        ("first_name", ["first_name"]), ("last_name", ["last_name"]), ("email_address", ["email_address", "email"]),
        ("phone_number", ["phone_number", "phone"]), ("user_id", ["user_id", "external_id"]), ("braze_id", ["braze_id"]),
        ("city", ["city", "home_city"]), ("country", ["country"]), ("language", ["language"]), ("time_zone", ["time_zone"]),
        ("date_of_birth", ["date_of_birth", "dob"]), ("gender", ["gender"]), ("last_used_app_date", ["last_used_app_date"]),
        ("most_recent_app_version", ["most_recent_app_version"]), ("most_recent_locale", ["most_recent_locale"]),
        ("most_recent_location", ["most_recent_location"]), ("random_bucket_number", ["random_bucket_number", "random_bucket"]),
        ("set_user_to_unsubscribed_url", ["set_user_to_unsubscribed_url"]),
        ("set_user_to_subscribed_url", ["set_user_to_subscribed_url"]),
        ("set_user_to_opted_in_url", ["set_user_to_opted_in_url"]),
    ]

    /// The render context for Braze-shaped `data`.
    public static func make(from data: LiquidValue) -> LiquidObject {
        guard case .object(var context) = data else { return LiquidObject() }
        let user: LiquidObject
        if case .object(let object) = context["user"] { user = object } else { user = LiquidObject() }
        for (name, fields) in standardAttributes {
            let value = fields.lazy.map { user[$0] }.first { $0 != .nil } ?? .nil
            context["${\(name)}"] = value
        }
        if case .object = user["custom_attributes"] {
            context["custom_attribute"] = user["custom_attributes"]
        } else if context["custom_attribute"] == .nil {
            context["custom_attribute"] = .object(LiquidObject())
        }
        for namespace in ["subscribed_state", "most_recently_used_device", "targeted_device"] where context[namespace] == .nil {
            context[namespace] = user[namespace]
        }
        return context
    }
}
