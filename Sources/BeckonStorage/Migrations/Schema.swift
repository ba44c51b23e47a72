/// Beckon's schema, oldest migration first. Never edit a released migration: add a new one.
public enum Schema {
    public static let migrations: [Migration] = [initial, segments, connectedContent, campaigns, messagingCore, push, sms, email, subscriptionGroups]

    /// Workspaces, API keys, profiles, identities, the event and purchase logs and their per-user aggregates.
    static let initial = Migration(version: 1, name: "initial") { dialect in
        let id = dialect.autoIncrementPrimaryKey
        let noRowID = dialect.withoutRowID
        return [
            """
            CREATE TABLE workspaces (
                id \(id), name TEXT NOT NULL UNIQUE, app_id TEXT NOT NULL UNIQUE,
                time_zone TEXT NOT NULL DEFAULT 'UTC', created_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE api_keys (
                id \(id), workspace_id BIGINT NOT NULL, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE,
                key_hint TEXT NOT NULL, permissions TEXT NOT NULL, ip_allowlist TEXT NOT NULL DEFAULT '',
                created_at BIGINT NOT NULL, last_used_at BIGINT, revoked_at BIGINT)
            """,
            "CREATE INDEX api_keys_workspace ON api_keys (workspace_id)",
            """
            CREATE TABLE users (
                id \(id), workspace_id BIGINT NOT NULL, external_id TEXT, braze_id TEXT NOT NULL,
                email TEXT, phone TEXT, first_name TEXT, last_name TEXT, country TEXT, language TEXT,
                time_zone TEXT, gender TEXT, dob TEXT, home_city TEXT, image_url TEXT,
                email_subscribe TEXT NOT NULL DEFAULT 'subscribed', push_subscribe TEXT NOT NULL DEFAULT 'subscribed',
                email_opted_in_at BIGINT, email_unsubscribed_at BIGINT, push_opted_in_at BIGINT, push_unsubscribed_at BIGINT,
                longitude DOUBLE PRECISION, latitude DOUBLE PRECISION,
                custom_attributes TEXT NOT NULL DEFAULT '{}', extras TEXT NOT NULL DEFAULT '{}',
                random_bucket INTEGER NOT NULL, total_revenue DOUBLE PRECISION NOT NULL DEFAULT 0,
                created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            "CREATE UNIQUE INDEX users_external_id ON users (workspace_id, external_id)",
            "CREATE UNIQUE INDEX users_braze_id ON users (workspace_id, braze_id)",
            "CREATE INDEX users_email ON users (workspace_id, email)",
            "CREATE INDEX users_phone ON users (workspace_id, phone)",
            """
            CREATE TABLE user_aliases (
                workspace_id BIGINT NOT NULL, alias_label TEXT NOT NULL, alias_name TEXT NOT NULL, user_id BIGINT NOT NULL,
                PRIMARY KEY (workspace_id, alias_label, alias_name))\(noRowID)
            """,
            "CREATE UNIQUE INDEX user_aliases_user_label ON user_aliases (user_id, alias_label)",
            """
            CREATE TABLE user_attribute_values (
                user_id BIGINT NOT NULL, root TEXT NOT NULL, path TEXT NOT NULL, position INTEGER NOT NULL,
                workspace_id BIGINT NOT NULL, kind TEXT NOT NULL, text_value TEXT, number_value DOUBLE PRECISION)
            """,
            "CREATE INDEX user_attribute_values_user ON user_attribute_values (user_id, root)",
            "CREATE INDEX user_attribute_values_text ON user_attribute_values (workspace_id, path, text_value)",
            "CREATE INDEX user_attribute_values_number ON user_attribute_values (workspace_id, path, number_value)",
            """
            CREATE TABLE subscription_group_states (
                user_id BIGINT NOT NULL, group_id TEXT NOT NULL, workspace_id BIGINT NOT NULL, state TEXT NOT NULL,
                updated_at BIGINT NOT NULL, PRIMARY KEY (user_id, group_id))\(noRowID)
            """,
            "CREATE INDEX subscription_group_states_group ON subscription_group_states (workspace_id, group_id, state)",
            """
            CREATE TABLE push_tokens (
                workspace_id BIGINT NOT NULL, token TEXT NOT NULL, user_id BIGINT NOT NULL, app_id TEXT NOT NULL,
                platform TEXT NOT NULL, device_id TEXT, authorization_state TEXT NOT NULL, foreground INTEGER NOT NULL,
                web_push_keys TEXT NOT NULL DEFAULT '{}', created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
                PRIMARY KEY (workspace_id, token))\(noRowID)
            """,
            "CREATE INDEX push_tokens_user ON push_tokens (user_id)",
            """
            CREATE TABLE events (
                id \(id), workspace_id BIGINT NOT NULL, user_id BIGINT NOT NULL, name TEXT NOT NULL,
                time BIGINT NOT NULL, app_id TEXT, properties TEXT)
            """,
            "CREATE INDEX events_user_name_time ON events (user_id, name, time)",
            """
            CREATE TABLE event_daily (
                user_id BIGINT NOT NULL, name TEXT NOT NULL, day INTEGER NOT NULL, workspace_id BIGINT NOT NULL,
                count BIGINT NOT NULL, first_time BIGINT NOT NULL, last_time BIGINT NOT NULL,
                PRIMARY KEY (user_id, name, day))\(noRowID)
            """,
            "CREATE INDEX event_daily_name_day ON event_daily (workspace_id, name, day)",
            """
            CREATE TABLE segmentable_properties (
                workspace_id BIGINT NOT NULL, event_name TEXT NOT NULL, property TEXT NOT NULL, created_at BIGINT NOT NULL,
                PRIMARY KEY (workspace_id, event_name, property))\(noRowID)
            """,
            """
            CREATE TABLE event_property_daily (
                user_id BIGINT NOT NULL, name TEXT NOT NULL, property TEXT NOT NULL, value TEXT NOT NULL,
                day INTEGER NOT NULL, workspace_id BIGINT NOT NULL, count BIGINT NOT NULL,
                first_time BIGINT NOT NULL, last_time BIGINT NOT NULL,
                PRIMARY KEY (user_id, name, property, value, day))\(noRowID)
            """,
            "CREATE INDEX event_property_daily_lookup ON event_property_daily (workspace_id, name, property, value, day)",
            """
            CREATE TABLE purchases (
                id \(id), workspace_id BIGINT NOT NULL, user_id BIGINT NOT NULL, product_id TEXT NOT NULL,
                currency TEXT NOT NULL, price DOUBLE PRECISION NOT NULL, quantity INTEGER NOT NULL, time BIGINT NOT NULL,
                app_id TEXT, properties TEXT)
            """,
            "CREATE INDEX purchases_user_time ON purchases (user_id, time)",
            """
            CREATE TABLE purchase_daily (
                user_id BIGINT NOT NULL, product_id TEXT NOT NULL, day INTEGER NOT NULL, workspace_id BIGINT NOT NULL,
                count BIGINT NOT NULL, quantity BIGINT NOT NULL, revenue DOUBLE PRECISION NOT NULL,
                first_time BIGINT NOT NULL, last_time BIGINT NOT NULL,
                PRIMARY KEY (user_id, product_id, day))\(noRowID)
            """,
            "CREATE INDEX purchase_daily_product_day ON purchase_daily (workspace_id, product_id, day)",
            """
            CREATE TABLE sessions (
                id \(id), workspace_id BIGINT NOT NULL, user_id BIGINT NOT NULL, app_id TEXT NOT NULL,
                session_id TEXT NOT NULL, platform TEXT, started_at BIGINT NOT NULL, ended_at BIGINT)
            """,
            "CREATE UNIQUE INDEX sessions_user_session ON sessions (user_id, session_id)",
            """
            CREATE TABLE session_daily (
                user_id BIGINT NOT NULL, app_id TEXT NOT NULL, day INTEGER NOT NULL, workspace_id BIGINT NOT NULL,
                count BIGINT NOT NULL, first_time BIGINT NOT NULL, last_time BIGINT NOT NULL,
                PRIMARY KEY (user_id, app_id, day))\(noRowID)
            """,
            "CREATE INDEX session_daily_day ON session_daily (workspace_id, day)",
            """
            CREATE TABLE app_usage (
                user_id BIGINT NOT NULL, app_id TEXT NOT NULL, workspace_id BIGINT NOT NULL, platform TEXT,
                app_version TEXT, sessions BIGINT NOT NULL, first_used BIGINT NOT NULL, last_used BIGINT NOT NULL,
                PRIMARY KEY (user_id, app_id))\(noRowID)
            """,
            """
            CREATE TABLE devices (
                user_id BIGINT NOT NULL, device_id TEXT NOT NULL, workspace_id BIGINT NOT NULL, model TEXT,
                os_version TEXT, carrier TEXT, ad_tracking_enabled INTEGER, updated_at BIGINT NOT NULL,
                PRIMARY KEY (user_id, device_id))\(noRowID)
            """,
        ]
    }

    /// Segments, their daily size snapshots, and imported cohort members.
    static let segments = Migration(version: 2, name: "segments") { dialect in
        let noRowID = dialect.withoutRowID
        return [
            """
            CREATE TABLE segments (
                id TEXT PRIMARY KEY, workspace_id BIGINT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
                tags TEXT NOT NULL DEFAULT '[]', filter TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            "CREATE INDEX segments_workspace ON segments (workspace_id, created_at)",
            """
            CREATE TABLE segment_daily_sizes (
                segment_id TEXT NOT NULL, day TEXT NOT NULL, workspace_id BIGINT NOT NULL, size BIGINT NOT NULL,
                computed_at BIGINT NOT NULL, PRIMARY KEY (segment_id, day))\(noRowID)
            """,
            """
            CREATE TABLE cohort_members (
                workspace_id BIGINT NOT NULL, cohort_id TEXT NOT NULL, external_id TEXT NOT NULL, added_at BIGINT NOT NULL,
                PRIMARY KEY (workspace_id, cohort_id, external_id))\(noRowID)
            """,
        ]
    }

    /// Connected Content credentials (sealed) and settings, and the message activity log.
    static let connectedContent = Migration(version: 3, name: "connected_content") { dialect in
        let id = dialect.autoIncrementPrimaryKey
        let noRowID = dialect.withoutRowID
        return [
            """
            CREATE TABLE connected_content_credentials (
                workspace_id BIGINT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL, username TEXT,
                sealed_secret TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
                PRIMARY KEY (workspace_id, name))\(noRowID)
            """,
            """
            CREATE TABLE connected_content_settings (
                workspace_id BIGINT PRIMARY KEY, settings TEXT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE activity_log (
                id \(id), workspace_id BIGINT NOT NULL, time BIGINT NOT NULL, type TEXT NOT NULL,
                campaign_id TEXT, variant TEXT, external_id TEXT, channel TEXT, url TEXT, status INTEGER,
                duration_ms INTEGER, reason TEXT NOT NULL)
            """,
            "CREATE INDEX activity_log_workspace ON activity_log (workspace_id, id)",
            "CREATE INDEX activity_log_campaign ON activity_log (workspace_id, campaign_id, id)",
            "CREATE INDEX activity_log_time ON activity_log (time)",
        ]
    }

    /// Campaigns, their dispatches (one send decision each, with the definition it was made with),
    /// the durable message queue, and engagement events.
    static let campaigns = Migration(version: 4, name: "campaigns") { dialect in
        let id = dialect.autoIncrementPrimaryKey
        return [
            """
            CREATE TABLE campaigns (
                id TEXT PRIMARY KEY, workspace_id BIGINT NOT NULL, name TEXT NOT NULL, tags TEXT NOT NULL DEFAULT '[]',
                definition TEXT NOT NULL, state TEXT NOT NULL, delivery_type TEXT NOT NULL, next_run_at BIGINT,
                created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, first_sent_at BIGINT, last_sent_at BIGINT)
            """,
            "CREATE INDEX campaigns_workspace ON campaigns (workspace_id, created_at)",
            "CREATE INDEX campaigns_due ON campaigns (state, next_run_at)",
            """
            CREATE TABLE dispatches (
                id TEXT PRIMARY KEY, workspace_id BIGINT NOT NULL, campaign_id TEXT, kind TEXT NOT NULL, send_id TEXT,
                definition TEXT NOT NULL, trigger_properties TEXT NOT NULL DEFAULT '{}', recipients TEXT,
                state TEXT NOT NULL, cursor BIGINT NOT NULL DEFAULT 0, scheduled_at BIGINT NOT NULL,
                created_at BIGINT NOT NULL, expanded_at BIGINT)
            """,
            "CREATE INDEX dispatches_state ON dispatches (state, scheduled_at)",
            """
            CREATE TABLE campaign_pacing (
                campaign_id TEXT PRIMARY KEY, next_slot BIGINT NOT NULL)
            """,
            """
            CREATE TABLE messages (
                id TEXT PRIMARY KEY, workspace_id BIGINT NOT NULL, dispatch_id TEXT NOT NULL, campaign_id TEXT,
                user_id BIGINT NOT NULL, channel TEXT NOT NULL, variant TEXT NOT NULL, state TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0, not_before BIGINT NOT NULL, trigger_properties TEXT, capped INTEGER NOT NULL DEFAULT 1,
                last_error TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            "CREATE INDEX messages_due ON messages (state, not_before)",
            "CREATE INDEX messages_dispatch ON messages (dispatch_id, state)",
            "CREATE INDEX messages_user ON messages (user_id, campaign_id)",
            """
            CREATE TABLE segment_entries (
                campaign_id TEXT NOT NULL, user_id BIGINT NOT NULL, entered_at BIGINT NOT NULL,
                PRIMARY KEY (campaign_id, user_id))\(dialect.withoutRowID)
            """,
            """
            CREATE TABLE delivery_settings (
                workspace_id BIGINT PRIMARY KEY, settings TEXT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE engagement_events (
                id \(id), workspace_id BIGINT NOT NULL, time BIGINT NOT NULL, type TEXT NOT NULL, campaign_id TEXT,
                dispatch_id TEXT, message_id TEXT, variant TEXT, user_id BIGINT, external_id TEXT, channel TEXT, details TEXT)
            """,
            "CREATE INDEX engagement_events_campaign ON engagement_events (workspace_id, campaign_id, type, time)",
            "CREATE INDEX engagement_events_user ON engagement_events (user_id, time)",
        ]
    }

    /// The messaging core: message leases (which node holds a claimed message, until when), the
    /// trigger outbox written in the ingest transaction, one entry row per campaign and user (a
    /// unique key, so a once-only campaign cannot start twice), idempotency keys of the trigger
    /// endpoints, and the indexes every per-campaign query of the engine uses.
    static let messagingCore = Migration(version: 5, name: "messaging core") { dialect in
        let id = dialect.autoIncrementPrimaryKey
        return [
            "ALTER TABLE messages ADD COLUMN lease_owner TEXT",
            "ALTER TABLE messages ADD COLUMN lease_expires_at BIGINT",
            "CREATE INDEX messages_campaign ON messages (campaign_id, state)",
            // Every lookup by dispatch goes through the campaign; one index fewer changes per settle.
            "DROP INDEX messages_dispatch",
            "ALTER TABLE dispatches ADD COLUMN user_id BIGINT",
            "CREATE INDEX dispatches_campaign_user ON dispatches (campaign_id, user_id, state)",
            """
            CREATE TABLE trigger_outbox (
                id \(id), workspace_id BIGINT NOT NULL, user_id BIGINT NOT NULL, kind TEXT NOT NULL, name TEXT,
                properties TEXT, time BIGINT NOT NULL, observed_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE campaign_entries (
                campaign_id TEXT NOT NULL, user_id BIGINT NOT NULL, entered_at BIGINT NOT NULL, dispatch_id TEXT NOT NULL,
                PRIMARY KEY (campaign_id, user_id))\(dialect.withoutRowID)
            """,
            """
            CREATE TABLE idempotency_keys (
                workspace_id BIGINT NOT NULL, endpoint TEXT NOT NULL, idempotency_key TEXT NOT NULL, request_hash TEXT NOT NULL,
                status INTEGER NOT NULL, response TEXT NOT NULL, created_at BIGINT NOT NULL,
                PRIMARY KEY (workspace_id, endpoint, idempotency_key))
            """,
            "CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at)",
            // Conversions once per campaign, user and label, by key.
            """
            CREATE TABLE campaign_conversions (
                campaign_id TEXT NOT NULL, user_id BIGINT NOT NULL, label TEXT NOT NULL, time BIGINT NOT NULL,
                PRIMARY KEY (campaign_id, user_id, label))\(dialect.withoutRowID)
            """,
            """
            INSERT INTO campaign_conversions (campaign_id, user_id, label, time)
            SELECT campaign_id, user_id, details, MIN(time) FROM engagement_events
            WHERE type = 'conversion' AND campaign_id IS NOT NULL AND user_id IS NOT NULL AND details IS NOT NULL
            GROUP BY campaign_id, user_id, details
            """,
            // Engagement events are appended in time order; their indexes must be too. Per-user
            // lookups (conversions) go through `messages (user_id, campaign_id)` instead of a
            // random-order index written twice per message.
            "DROP INDEX engagement_events_user",
            "DROP INDEX engagement_events_campaign",
            "CREATE INDEX engagement_events_campaign ON engagement_events (campaign_id, type, time)",
            // One row per settled message: its `delivery` or `failure` row stands for the send too.
            "DELETE FROM engagement_events WHERE type = 'send'",
            // Users who already got (or are about to get) an action-based campaign stay entered.
            """
            INSERT INTO campaign_entries (campaign_id, user_id, entered_at, dispatch_id)
            SELECT campaign_id, user_id, MAX(created_at), MAX(dispatch_id) FROM messages
            WHERE campaign_id IS NOT NULL AND dispatch_id LIKE 'dsp:%' AND state IN ('queued', 'sending', 'delivered', 'failed', 'control')
            GROUP BY campaign_id, user_id
            """,
        ]
    }

    /// Push: per-workspace provider credentials (secrets sealed) with a paused reason, retired
    /// tokens (kept, marked invalid, so a bounce is explained and a re-registration revives them),
    /// and the tokens a message already reached when it is retried for its other tokens.
    static let push = Migration(version: 6, name: "push") { dialect in
        [
            """
            CREATE TABLE push_credentials (
                workspace_id BIGINT NOT NULL, provider TEXT NOT NULL, settings TEXT NOT NULL, sealed_secret TEXT NOT NULL,
                paused_reason TEXT, paused_at BIGINT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
                PRIMARY KEY (workspace_id, provider))
            """,
            "ALTER TABLE push_tokens ADD COLUMN invalidated_at BIGINT",
            "ALTER TABLE push_tokens ADD COLUMN invalid_reason TEXT",
            """
            CREATE TABLE push_deliveries (
                message_id TEXT NOT NULL, token TEXT NOT NULL, delivered_at BIGINT NOT NULL,
                PRIMARY KEY (message_id, token))\(dialect.withoutRowID)
            """,
        ]
    }

    /// SMS: the workspace's vendor (settings, secrets sealed) and the pause a configuration error sets.
    static let sms = Migration(version: 7, name: "sms") { _ in
        [
            """
            CREATE TABLE sms_vendors (
                workspace_id BIGINT PRIMARY KEY, type TEXT NOT NULL, settings TEXT NOT NULL, sealed_secret TEXT NOT NULL,
                paused_reason TEXT, paused_at BIGINT, updated_at BIGINT NOT NULL)
            """
        ]
    }

    /// Email: each workspace's sending settings (the SMTP password and DKIM key sealed).
    static let email = Migration(version: 8, name: "email") { _ in
        [
            """
            CREATE TABLE email_settings (
                workspace_id BIGINT PRIMARY KEY, settings TEXT NOT NULL, sealed_secret TEXT NOT NULL, updated_at BIGINT NOT NULL)
            """
        ]
    }

    /// Subscription groups as objects (id, name, channel); each state records where it came from.
    /// Group ids already used in states (through `/users/track`) keep working without an object.
    static let subscriptionGroups = Migration(version: 9, name: "subscription groups") { _ in
        [
            """
            CREATE TABLE subscription_groups (
                workspace_id BIGINT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, channel TEXT NOT NULL,
                created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY (workspace_id, id))
            """,
            "CREATE UNIQUE INDEX subscription_groups_name ON subscription_groups (workspace_id, name)",
            "ALTER TABLE subscription_group_states ADD COLUMN source TEXT",
        ]
    }
}
