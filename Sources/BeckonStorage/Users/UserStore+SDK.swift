import BeckonCore

extension UserStore {
    /// Applies one SDK batch in one transaction: identity (merging the device's anonymous profile
    /// into the identified one), attributes, events, purchases, sessions, device and push token,
    /// with the facts `triggers` names in the trigger outbox.
    public func ingest(workspaceID: Int64, batch: SDKBatch, triggers: TriggerInterest = .none) async throws -> TrackResult {
        let segmentable = try await segmentableProperties(workspaceID: workspaceID)
        let now = nowMillis
        return try await committer.write(flushesAggregates: true) { connection, deltas in
            let userID = try self.sdkUser(batch, workspaceID: workspaceID, connection: connection, now: now)
            var outbox = OutboxWriter(interest: triggers, workspaceID: workspaceID, now: now)
            let result = try self.apply(
                batch.track, workspaceID: workspaceID, segmentable: segmentable, connection: connection, deltas: &deltas, outbox: &outbox,
                now: now)
            let user = SQLValue.integer(userID)
            let ws = SQLValue.integer(workspaceID)
            for session in batch.sessions {
                let existing = try connection.first(
                    "SELECT id FROM sessions WHERE user_id = ? AND session_id = ?", [user, .text(session.sessionID)])
                if existing != nil {
                    try connection.execute(
                        "UPDATE sessions SET ended_at = COALESCE(?, ended_at) WHERE user_id = ? AND session_id = ?",
                        [.integer(session.endMillis), user, .text(session.sessionID)])
                    continue
                }
                try connection.execute(
                    """
                    INSERT INTO sessions (workspace_id, user_id, app_id, session_id, platform, started_at, ended_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                    [ws, user, .text(batch.appID), .text(session.sessionID), .text(batch.platform), .integer(session.startMillis),
                     .integer(session.endMillis)])
                deltas.addSession(workspaceID: workspaceID, userID: userID, appID: batch.appID, time: session.startMillis)
                outbox.sessionStart(userID: userID, time: session.startMillis)
                try connection.execute(
                    """
                    INSERT INTO app_usage (user_id, app_id, workspace_id, platform, app_version, sessions, first_used, last_used)
                    VALUES (?, ?, ?, ?, ?, 1, ?, ?)
                    ON CONFLICT (user_id, app_id) DO UPDATE SET sessions = app_usage.sessions + 1,
                        platform = excluded.platform, app_version = COALESCE(excluded.app_version, app_usage.app_version),
                        first_used = \(connection.dialect.least("app_usage.first_used", "excluded.first_used")),
                        last_used = \(connection.dialect.greatest("app_usage.last_used", "excluded.last_used"))
                    """,
                    [user, .text(batch.appID), ws, .text(batch.platform), .text(batch.appVersion), .integer(session.startMillis),
                     .integer(session.startMillis)])
            }
            if let device = batch.device {
                try connection.execute(
                    """
                    INSERT INTO devices (user_id, device_id, workspace_id, model, os_version, carrier, ad_tracking_enabled, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (user_id, device_id) DO UPDATE SET model = excluded.model, os_version = excluded.os_version,
                        carrier = excluded.carrier, ad_tracking_enabled = excluded.ad_tracking_enabled, updated_at = excluded.updated_at
                    """,
                    [user, .text(batch.deviceID), ws, .text(device.model), .text(device.osVersion), .text(device.carrier),
                     device.adTrackingEnabled.map(SQLValue.bool) ?? .null, .integer(now)])
            }
            if let token = batch.pushToken {
                try self.registerPushToken(token, userID: userID, workspaceID: workspaceID, connection: connection, now: now)
            }
            for open in batch.pushOpens {
                try self.recordPushOpen(open, userID: userID, platform: batch.platform, connection: connection, outbox: &outbox)
            }
            try outbox.flush(connection)
            return result
        }
    }

    /// The profile of an SDK batch: the identified user, merging the device's anonymous profile into it.
    private func sdkUser(_ batch: SDKBatch, workspaceID: Int64, connection: any SQLConnection, now: Int64) throws -> Int64 {
        let anonymous = try resolve(.alias(batch.deviceAlias), workspaceID: workspaceID, create: false, connection: connection, now: now)
        guard let externalID = batch.externalID else {
            if let anonymous { return anonymous }
            return try resolve(.alias(batch.deviceAlias), workspaceID: workspaceID, create: true, connection: connection, now: now) ?? 0
        }
        let identified = try resolve(.externalID(externalID), workspaceID: workspaceID, create: false, connection: connection, now: now)
        switch (anonymous, identified) {
        case (let anonymousID?, let identifiedID?) where anonymousID != identifiedID:
            let owner = try connection.first("SELECT external_id FROM users WHERE id = ?", [.integer(anonymousID)])
            if owner?[0].isNull ?? false {
                try merge(sourceID: anonymousID, into: identifiedID, connection: connection, now: now)
            }
            return identifiedID
        case (let anonymousID?, nil):
            try connection.execute(
                "UPDATE users SET external_id = ?, updated_at = ? WHERE id = ? AND external_id IS NULL",
                [.text(externalID), .integer(now), .integer(anonymousID)])
            if let id = try resolve(.externalID(externalID), workspaceID: workspaceID, create: false, connection: connection, now: now) {
                return id
            }
            return try resolve(.externalID(externalID), workspaceID: workspaceID, create: true, connection: connection, now: now) ?? 0
        case (_, let identifiedID?):
            return identifiedID
        case (nil, nil):
            let id = try resolve(.externalID(externalID), workspaceID: workspaceID, create: true, connection: connection, now: now) ?? 0
            try connection.execute(
                "INSERT INTO user_aliases (workspace_id, alias_label, alias_name, user_id) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [.integer(workspaceID), .text(batch.deviceAlias.label), .text(batch.deviceAlias.name), .integer(id)])
            return id
        }
    }

    /// Records a push open as an engagement event of the message's campaign, once per delivery id,
    /// with a `push_open` fact for the campaigns that count it (conversions, triggers); an id that
    /// is not one of this user's push messages is ignored (the SDK cannot prove more).
    func recordPushOpen(_ open: PushOpen, userID: Int64, platform: String, connection: any SQLConnection, outbox: inout OutboxWriter) throws {
        guard let message = try connection.first(
            "SELECT workspace_id, campaign_id, dispatch_id, variant, channel FROM messages WHERE id = ? AND user_id = ?",
            [.text(open.durableMessageID), .integer(userID)]), message[4].string == "push"
        else { return }
        // Through the campaign index; opens of campaign-less sends (`/messages/send`) are not deduplicated.
        if !message[1].isNull, try connection.first(
            "SELECT 1 FROM engagement_events WHERE campaign_id = ? AND type = 'open' AND message_id = ? AND details = ?",
            [message[1], .text(open.durableMessageID), .text(platform + " " + open.messageID)]) != nil
        {
            return
        }
        let external = try connection.first("SELECT external_id FROM users WHERE id = ?", [.integer(userID)])?[0] ?? .null
        try connection.execute(
            """
            INSERT INTO engagement_events (workspace_id, time, type, campaign_id, dispatch_id, message_id, variant, user_id, external_id, channel, details)
            VALUES (?, ?, 'open', ?, ?, ?, ?, ?, ?, 'push', ?)
            """,
            [message[0], .integer(open.time), message[1], message[2], .text(open.durableMessageID), message[3], .integer(userID), external,
             .text(platform + " " + open.messageID)])
        if let campaignID = message[1].string { outbox.pushOpen(userID: userID, campaignID: campaignID, time: open.time) }
    }
}
