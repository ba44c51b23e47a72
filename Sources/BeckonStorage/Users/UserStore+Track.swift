import BeckonCore

/// What `/users/track` reports back.
public struct TrackResult: Sendable {
    public var attributesProcessed = 0
    public var eventsProcessed = 0
    public var purchasesProcessed = 0
    public var errors: [TrackItemError] = []

    public init() {}
}

extension UserStore {
    /// Applies a validated `/users/track` request: attributes, then events, then purchases.
    ///
    /// Objects naming a user that does not exist while `_update_existing_only` holds are reported
    /// in `errors` rather than dropped silently. The facts `triggers` names are written to the
    /// trigger outbox in the same transaction. `first` runs in that transaction before anything is
    /// applied (a send recorded with the attributes it depends on); when it throws, nothing of the
    /// request is written and the error is passed on.
    public func track(
        workspaceID: Int64, request: TrackRequest, triggers: TriggerInterest = .none,
        first: (@Sendable (any SQLConnection) throws -> Void)? = nil
    ) async throws -> TrackResult {
        let segmentable = try await segmentableProperties(workspaceID: workspaceID)
        let now = nowMillis
        return try await committer.write { connection, deltas in
            try first?(connection)
            var outbox = OutboxWriter(interest: triggers, workspaceID: workspaceID, now: now)
            let result = try self.apply(
                request, workspaceID: workspaceID, segmentable: segmentable, connection: connection, deltas: &deltas, outbox: &outbox,
                now: now)
            try outbox.flush(connection)
            return result
        }
    }

    /// The body of `track`, shared with SDK ingestion so both write exactly the same rows.
    func apply(
        _ request: TrackRequest, workspaceID: Int64, segmentable: [String: [String]], connection: any SQLConnection,
        deltas: inout AggregateDeltas, outbox: inout OutboxWriter, now: Int64
    ) throws -> TrackResult {
        var result = TrackResult()
        result.errors = request.errors
        var users = try resolveExternalIDs(request, workspaceID: workspaceID, connection: connection, now: now)
        func user(_ identifier: UserIdentifier, create: Bool) throws -> Int64? {
            if let known = users[identifier] { return known }
            let found = try resolve(identifier, workspaceID: workspaceID, create: create, connection: connection, now: now)
            if let found { users[identifier] = found }
            return found
        }
        for update in request.attributes {
            guard let userID = try user(update.identifier, create: !update.updateExistingOnly) else {
                result.errors.append(Self.notFound(update.identifier, array: "attributes", index: update.index))
                continue
            }
            try applyAttributes(update, userID: userID, workspaceID: workspaceID, connection: connection, now: now)
            outbox.profileChanged(userID: userID)
            result.attributesProcessed += 1
        }
        var eventRows: [[SQLValue]] = []
        for event in request.events {
            guard let userID = try user(event.identifier, create: !event.updateExistingOnly) else {
                result.errors.append(Self.notFound(event.identifier, array: "events", index: event.index))
                continue
            }
            eventRows.append([
                .integer(workspaceID), .integer(userID), .text(event.name), .integer(event.timeMillis), .text(event.appID),
                .text(event.properties.map { JSONValue.object($0).serialized() }),
            ])
            deltas.addEvent(workspaceID: workspaceID, userID: userID, name: event.name, time: event.timeMillis)
            outbox.event(userID: userID, name: event.name, properties: event.properties, time: event.timeMillis)
            if event.name == "push_opened", let opened = event.properties?["message_id"]?.stringValue,
                let platform = try Self.pushOpenPlatform(opened, userID: userID, stated: event.properties?["platform"]?.stringValue, connection: connection)
            {
                try recordPushOpen(PushOpen(messageID: opened, time: event.timeMillis), userID: userID, platform: platform, connection: connection, outbox: &outbox)
            }
            if let properties = event.properties, let marked = segmentable[event.name] {
                for property in marked {
                    if let value = Self.segmentValue(Self.property(property, in: properties)) {
                        deltas.addEventProperty(
                            workspaceID: workspaceID, userID: userID, name: event.name, property: property, value: value,
                            time: event.timeMillis)
                    }
                }
            }
            result.eventsProcessed += 1
        }
        try connection.insertRows(into: "events", columns: ["workspace_id", "user_id", "name", "time", "app_id", "properties"],
            rows: eventRows)
        var purchaseRows: [[SQLValue]] = []
        for purchase in request.purchases {
            guard let userID = try user(purchase.identifier, create: !purchase.updateExistingOnly) else {
                result.errors.append(Self.notFound(purchase.identifier, array: "purchases", index: purchase.index))
                continue
            }
            purchaseRows.append([
                .integer(workspaceID), .integer(userID), .text(purchase.productID), .text(purchase.currency),
                .real(purchase.price), .integer(Int64(purchase.quantity)), .integer(purchase.timeMillis),
                .text(purchase.appID), .text(purchase.properties.map { JSONValue.object($0).serialized() }),
            ])
            deltas.addPurchase(
                workspaceID: workspaceID, userID: userID, productID: purchase.productID, time: purchase.timeMillis,
                quantity: Int64(purchase.quantity), price: purchase.price)
            outbox.purchase(userID: userID, productID: purchase.productID, properties: purchase.properties, time: purchase.timeMillis)
            result.purchasesProcessed += 1
        }
        try connection.insertRows(into: "purchases",
            columns: ["workspace_id", "user_id", "product_id", "currency", "price", "quantity", "time", "app_id", "properties"],
            rows: purchaseRows)
        result.errors.sort { ($0.inputArray, $0.index) < ($1.inputArray, $1.index) }
        return result
    }

    /// Resolves every `external_id` of a request in two round trips (one lookup, one multi-row
    /// insert for the new users) instead of one per object.
    func resolveExternalIDs(
        _ request: TrackRequest, workspaceID: Int64, connection: any SQLConnection, now: Int64
    ) throws -> [UserIdentifier: Int64] {
        var wanted: [String: Bool] = [:]
        func note(_ identifier: UserIdentifier, create: Bool) {
            if case .externalID(let id) = identifier { wanted[id] = (wanted[id] ?? false) || create }
        }
        for update in request.attributes { note(update.identifier, create: !update.updateExistingOnly) }
        for event in request.events { note(event.identifier, create: !event.updateExistingOnly) }
        for purchase in request.purchases { note(purchase.identifier, create: !purchase.updateExistingOnly) }
        guard !wanted.isEmpty else { return [:] }
        var resolved: [UserIdentifier: Int64] = [:]
        let ids = wanted.keys.sorted()
        for start in stride(from: 0, to: ids.count, by: 200) {
            let chunk = Array(ids[start..<min(start + 200, ids.count)])
            let rows = try connection.query(
                "SELECT external_id, id FROM users WHERE workspace_id = ? AND external_id IN (\(Array(repeating: "?", count: chunk.count).joined(separator: ", ")))",
                [.integer(workspaceID)] + chunk.map { .text($0) })
            for row in rows {
                if let id = row[0].string, let userID = row[1].int { resolved[.externalID(id)] = userID }
            }
        }
        let missing = ids.filter { wanted[$0] == true && resolved[.externalID($0)] == nil }
        for start in stride(from: 0, to: missing.count, by: 100) {
            let chunk = Array(missing[start..<min(start + 100, missing.count)])
            let rows = try connection.query(
                """
                INSERT INTO users (workspace_id, external_id, braze_id, random_bucket, created_at, updated_at)
                VALUES \(Array(repeating: "(?, ?, ?, ?, ?, ?)", count: chunk.count).joined(separator: ", ")) RETURNING external_id, id
                """,
                chunk.flatMap { id -> [SQLValue] in
                    [.integer(workspaceID), .text(id), .text(Self.newBrazeID()), .integer(Int64.random(in: 0...9999)),
                     .integer(now), .integer(now)]
                })
            for row in rows {
                if let id = row[0].string, let userID = row[1].int { resolved[.externalID(id)] = userID }
            }
        }
        return resolved
    }

    static func notFound(_ identifier: UserIdentifier, array: String, index: Int) -> TrackItemError {
        TrackItemError(
            type: "no user with \(identifier) exists and '_update_existing_only' is true", inputArray: array, index: index)
    }

    /// Applies one attributes object to user `userID`.
    func applyAttributes(
        _ update: AttributeUpdate, userID: Int64, workspaceID: Int64, connection: any SQLConnection, now: Int64
    ) throws {
        guard let row = try connection.first(
            "SELECT email_subscribe, push_subscribe, custom_attributes, extras FROM users WHERE id = ?", [.integer(userID)])
        else { return }
        var assignments: [String] = ["updated_at = ?"]
        var arguments: [SQLValue] = [.integer(now)]
        for field in ProfileField.allCases {
            guard let change = update.profile[field] else { continue }
            assignments.append("\(field.rawValue) = ?")
            arguments.append(.text(change))
            let current = field == .emailSubscribe ? row[0].string : field == .pushSubscribe ? row[1].string : nil
            if field == .emailSubscribe || field == .pushSubscribe, let state = change, state != current {
                let prefix = field == .emailSubscribe ? "email" : "push"
                if state == "opted_in" {
                    assignments.append("\(prefix)_opted_in_at = ?")
                    arguments.append(.integer(now))
                } else if state == "unsubscribed" {
                    assignments.append("\(prefix)_unsubscribed_at = ?")
                    arguments.append(.integer(now))
                }
            }
        }
        if let coordinates = update.lastCoordinates {
            assignments.append("longitude = ?, latitude = ?")
            arguments.append(contentsOf: [.real(coordinates.longitude), .real(coordinates.latitude)])
        }
        if !update.extras.isEmpty {
            var extras = try row[3].storedObject(table: "users", row: "\(userID)", column: "extras")
            for (key, value) in update.extras {
                if key == "current_location" {
                    assignments.append("longitude = NULL, latitude = NULL")
                    continue
                }
                extras[key] = value.isNull ? nil : value
            }
            assignments.append("extras = ?")
            arguments.append(.text(JSONValue.object(extras).serialized()))
        }
        if !update.custom.isEmpty {
            let stored = try row[2].storedObject(table: "users", row: "\(userID)", column: "custom_attributes")
            var attributes = CustomAttributes(values: stored, maxArrayLength: limits.maxArrayLength)
            var changedRoots: [String] = []
            for change in update.custom where attributes.apply(change, mergeObjects: update.mergeObjects) {
                changedRoots.append(change.name)
            }
            if !changedRoots.isEmpty {
                assignments.append("custom_attributes = ?")
                arguments.append(.text(JSONValue.object(attributes.values).serialized()))
                try reindexAttributes(
                    Set(changedRoots), values: attributes.values, userID: userID, workspaceID: workspaceID,
                    connection: connection)
            }
        }
        arguments.append(.integer(userID))
        try connection.execute("UPDATE users SET \(assignments.joined(separator: ", ")) WHERE id = ?", arguments)
        for group in update.subscriptionGroups {
            try connection.execute(
                """
                INSERT INTO subscription_group_states (user_id, group_id, workspace_id, state, updated_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (user_id, group_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at
                """, [.integer(userID), .text(group.groupID), .integer(workspaceID), .text(group.state), .integer(now)])
        }
        for token in update.pushTokens {
            try registerPushToken(token, userID: userID, workspaceID: workspaceID, connection: connection, now: now)
        }
    }

    /// Rewrites the indexed rows of the custom attributes named in `roots`.
    func reindexAttributes(
        _ roots: Set<String>, values: [String: JSONValue], userID: Int64, workspaceID: Int64, connection: any SQLConnection
    ) throws {
        var rows: [[SQLValue]] = []
        for root in roots.sorted() {
            try connection.execute(
                "DELETE FROM user_attribute_values WHERE user_id = ? AND root = ?", [.integer(userID), .text(root)])
            guard let value = values[root] else { continue }
            for flat in FlattenedAttributeValue.rows(name: root, value: value) {
                rows.append([
                    .integer(userID), .text(root), .text(flat.path), .integer(Int64(flat.position)), .integer(workspaceID),
                    .text(flat.kind), .text(flat.text), .real(flat.number),
                ])
            }
        }
        try connection.insertRows(into: "user_attribute_values",
            columns: ["user_id", "root", "path", "position", "workspace_id", "kind", "text_value", "number_value"], rows: rows)
    }

    /// Registers a push token for a user; a token seen on another user moves here (same device, new user).
    func registerPushToken(
        _ token: PushTokenRegistration, userID: Int64, workspaceID: Int64, connection: any SQLConnection, now: Int64
    ) throws {
        let keys = JSONValue.object(token.webPushKeys.mapValues { .string($0) }).serialized()
        try connection.execute(
            """
            INSERT INTO push_tokens (workspace_id, token, user_id, app_id, platform, device_id, authorization_state, foreground,
                web_push_keys, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (workspace_id, token) DO UPDATE SET user_id = excluded.user_id, app_id = excluded.app_id,
                platform = excluded.platform, device_id = COALESCE(excluded.device_id, push_tokens.device_id),
                authorization_state = excluded.authorization_state, foreground = excluded.foreground,
                web_push_keys = excluded.web_push_keys, updated_at = excluded.updated_at, invalidated_at = NULL, invalid_reason = NULL
            """,
            [.integer(workspaceID), .text(token.token), .integer(userID), .text(token.appID), .text(token.platform),
             .text(token.deviceID), .text(token.authorization), .bool(token.foreground), .text(keys), .integer(now), .integer(now)])
    }

    /// The platform a `/users/track` `push_opened` event's `message_id` was delivered to: the user's
    /// token its delivery id names, else the event's `platform` property (ios, android, web).
    static func pushOpenPlatform(_ deliveryID: String, userID: Int64, stated: String?, connection: any SQLConnection) throws -> String? {
        let messageID = PushOpen(messageID: deliveryID, time: 0).durableMessageID
        if messageID != deliveryID {
            for row in try connection.query("SELECT token, platform FROM push_tokens WHERE user_id = ?", [.integer(userID)]) {
                if let token = row[0].string, PushDeliveryID.isDelivery(deliveryID, of: messageID, to: token) { return row[1].string }
            }
        }
        return stated.flatMap { ["ios", "android", "web"].contains($0) ? $0 : nil }
    }
}
