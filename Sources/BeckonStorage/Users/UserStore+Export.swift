import BeckonCore

/// The `fields_to_export` Beckon understands (Braze's list, plus subscription details).
public enum ExportField {
    public static let all: [String] = [
        "apps", "braze_id", "country", "created_at", "custom_attributes", "custom_events", "devices", "dob", "email",
        "email_subscribe", "external_id", "first_name", "gender", "home_city", "language", "last_coordinates", "last_name",
        "phone", "purchases", "push_subscribe", "push_tokens", "random_bucket", "time_zone", "total_revenue",
        "user_aliases", "subscription_groups", "push_opted_in_at", "email_opted_in_at", "push_unsubscribed_at",
        "email_unsubscribed_at",
        "attributed_campaign", "attributed_source", "attributed_adgroup", "attributed_ad", "campaigns_received",
        "canvases_received", "cards_clicked", "uninstalled_at",
    ]
}

/// Who `/users/export/ids` asks for.
public struct ExportQuery: Sendable {
    public var externalIDs: [String] = []
    public var aliases: [UserAlias] = []
    public var brazeID: String?
    public var email: String?
    public var phone: String?
    public var deviceID: String?
    /// The fields to return; every field when `nil`.
    public var fields: Set<String>?

    public init() {}
}

/// Exported profiles and the identifiers that matched nobody.
public struct ExportResult: Sendable {
    public var users: [JSONValue] = []
    public var invalidUserIDs: [String] = []
}

extension UserStore {
    /// `/users/export/ids`: the profiles the query names, with the requested fields.
    public func export(workspaceID: Int64, query: ExportQuery) async throws -> ExportResult {
        try await database.read { connection in
            var result = ExportResult()
            var userIDs: [Int64] = []
            func add(_ identifier: UserIdentifier, label: String) throws {
                let matches = try self.candidates(
                    identifier, prioritization: [.mostRecentlyUpdated], workspaceID: workspaceID, connection: connection)
                if let first = matches.first {
                    if !userIDs.contains(first) { userIDs.append(first) }
                } else {
                    result.invalidUserIDs.append(label)
                }
            }
            for id in query.externalIDs { try add(.externalID(id), label: id) }
            for alias in query.aliases { try add(.alias(alias), label: "\(alias.label):\(alias.name)") }
            if let id = query.brazeID { try add(.brazeID(id), label: id) }
            if let email = query.email { try add(.email(Email.normalize(email)), label: email) }
            if let phone = query.phone { try add(.phone(Phone.normalize(phone)), label: phone) }
            if let device = query.deviceID {
                if let row = try connection.first(
                    "SELECT user_id FROM devices WHERE workspace_id = ? AND device_id = ? ORDER BY updated_at DESC LIMIT 1",
                    [.integer(workspaceID), .text(device)]), let id = row[0].int
                {
                    if !userIDs.contains(id) { userIDs.append(id) }
                } else {
                    result.invalidUserIDs.append(device)
                }
            }
            for userID in userIDs {
                if let user = try self.exportUser(userID, fields: query.fields, connection: connection) {
                    result.users.append(user)
                }
            }
            return result
        }
    }

    /// The `users` columns `profileFields` reads, in its order.
    static let profileColumns = """
        external_id, braze_id, email, phone, first_name, last_name, country, language, time_zone, gender, dob,
        home_city, email_subscribe, push_subscribe, longitude, latitude, custom_attributes, random_bucket,
        total_revenue, created_at, email_opted_in_at, email_unsubscribed_at, push_opted_in_at, push_unsubscribed_at,
        extras
        """

    /// One `subscription_groups` entry as exports and message renders show it.
    static func subscriptionGroupJSON(id: String?, state: String?) -> JSONValue {
        .object(["subscription_group_id": .string(id ?? ""), "subscription_state": .string(state ?? "")])
    }

    /// The profile fields that come from the `users` row (`profileColumns`, in order).
    static func profileFields(_ row: SQLRow, userID: Int64, fields: Set<String>?) throws -> [String: JSONValue] {
        func wants(_ field: String) -> Bool { fields?.contains(field) ?? true }
        var user: [String: JSONValue] = [:]
        let strings: [(String, Int)] = [
            ("external_id", 0), ("braze_id", 1), ("email", 2), ("phone", 3), ("first_name", 4), ("last_name", 5),
            ("country", 6), ("language", 7), ("time_zone", 8), ("gender", 9), ("dob", 10), ("home_city", 11),
            ("email_subscribe", 12), ("push_subscribe", 13),
        ]
        for (name, column) in strings where wants(name) {
            if let value = row[column].string { user[name] = .string(value) }
        }
        if wants("last_coordinates"), let longitude = row[14].double, let latitude = row[15].double {
            user["last_coordinates"] = .array([.double(longitude), .double(latitude)])
        }
        if wants("custom_attributes") {
            let members = try row[16].storedObject(table: "users", row: "\(userID)", column: "custom_attributes")
            if !members.isEmpty { user["custom_attributes"] = .object(members) }
        }
        if wants("random_bucket") { user["random_bucket"] = .int(row[17].int ?? 0) }
        if wants("total_revenue") { user["total_revenue"] = .double(row[18].double ?? 0) }
        if wants("created_at") { user["created_at"] = .string(BrazeTime.format(epochMilliseconds: row[19].int ?? 0)) }
        let times: [(String, Int)] = [
            ("email_opted_in_at", 20), ("email_unsubscribed_at", 21), ("push_opted_in_at", 22), ("push_unsubscribed_at", 23),
        ]
        for (name, column) in times where wants(name) {
            if let millis = row[column].int { user[name] = .string(BrazeTime.format(epochMilliseconds: millis)) }
        }
        if fields == nil {
            for (key, value) in try row[24].storedObject(table: "users", row: "\(userID)", column: "extras") { user[key] = value }
        }
        return user
    }

    func exportUser(_ userID: Int64, fields: Set<String>?, connection: any SQLConnection) throws -> JSONValue? {
        let id = SQLValue.integer(userID)
        guard let row = try connection.first("SELECT \(Self.profileColumns) FROM users WHERE id = ?", [id]) else { return nil }
        func wants(_ field: String) -> Bool { fields?.contains(field) ?? true }
        var user = try Self.profileFields(row, userID: userID, fields: fields)
        if wants("user_aliases") {
            let aliases = try connection.query(
                "SELECT alias_name, alias_label FROM user_aliases WHERE user_id = ? ORDER BY alias_label", [id])
            if !aliases.isEmpty {
                user["user_aliases"] = .array(aliases.map {
                    .object(["alias_name": .string($0[0].string ?? ""), "alias_label": .string($0[1].string ?? "")])
                })
            }
        }
        if wants("custom_events") {
            let events = try connection.query(
                "SELECT name, SUM(count), MIN(first_time), MAX(last_time) FROM event_daily WHERE user_id = ? GROUP BY name ORDER BY name",
                [id])
            if !events.isEmpty { user["custom_events"] = .array(events.map(Self.summary)) }
        }
        if wants("purchases") {
            let purchases = try connection.query(
                """
                SELECT product_id, SUM(count), MIN(first_time), MAX(last_time) FROM purchase_daily WHERE user_id = ?
                GROUP BY product_id ORDER BY product_id
                """, [id])
            if !purchases.isEmpty { user["purchases"] = .array(purchases.map(Self.summary)) }
        }
        if wants("push_tokens") {
            let tokens = try connection.query(
                """
                SELECT app_id, platform, token, device_id, foreground, authorization_state FROM push_tokens
                WHERE user_id = ? ORDER BY updated_at DESC
                """, [id])
            if !tokens.isEmpty {
                user["push_tokens"] = .array(tokens.map { token in
                    var object: [String: JSONValue] = [
                        "app": .string(token[0].string ?? ""), "platform": .string(Self.platformName(token[1].string)),
                        "token": .string(token[2].string ?? ""), "notifications_enabled": .bool(token[4].int == 1),
                        "authorization": .string(token[5].string ?? "authorized"),
                    ]
                    if let device = token[3].string { object["device_id"] = .string(device) }
                    return .object(object)
                })
            }
        }
        if wants("subscription_groups") {
            let groups = try connection.query(
                "SELECT group_id, state FROM subscription_group_states WHERE user_id = ? ORDER BY group_id", [id])
            if !groups.isEmpty {
                user["subscription_groups"] = .array(groups.map {
                    Self.subscriptionGroupJSON(id: $0[0].string, state: $0[1].string)
                })
            }
        }
        if wants("apps") {
            let apps = try connection.query(
                "SELECT app_id, platform, app_version, sessions, first_used, last_used FROM app_usage WHERE user_id = ? ORDER BY app_id",
                [id])
            if !apps.isEmpty {
                user["apps"] = .array(apps.map { app in
                    .object([
                        "name": .string(app[0].string ?? ""), "platform": .string(Self.platformName(app[1].string)),
                        "version": app[2].string.map(JSONValue.string) ?? .null, "sessions": .int(app[3].int ?? 0),
                        "first_used": .string(BrazeTime.format(epochMilliseconds: app[4].int ?? 0)),
                        "last_used": .string(BrazeTime.format(epochMilliseconds: app[5].int ?? 0)),
                    ])
                })
            }
        }
        if wants("devices") {
            let devices = try connection.query(
                "SELECT device_id, model, os_version, carrier, ad_tracking_enabled FROM devices WHERE user_id = ? ORDER BY device_id",
                [id])
            if !devices.isEmpty {
                user["devices"] = .array(devices.map { device in
                    .object([
                        "device_id": .string(device[0].string ?? ""),
                        "model": device[1].string.map(JSONValue.string) ?? .null,
                        "os": device[2].string.map(JSONValue.string) ?? .null,
                        "carrier": device[3].string.map(JSONValue.string) ?? .null,
                        "ad_tracking_enabled": device[4].int.map { .bool($0 == 1) } ?? .null,
                    ])
                })
            }
        }
        return .object(user)
    }

    private static func summary(_ row: SQLRow) -> JSONValue {
        .object([
            "name": .string(row[0].string ?? ""), "count": .int(row[1].int ?? 0),
            "first": .string(BrazeTime.format(epochMilliseconds: row[2].int ?? 0)),
            "last": .string(BrazeTime.format(epochMilliseconds: row[3].int ?? 0)),
        ])
    }

    private static func platformName(_ platform: String?) -> String {
        switch platform {
        case "ios": return "iOS"
        case "android": return "Android"
        case "web": return "Web"
        default: return platform ?? ""
        }
    }
}
