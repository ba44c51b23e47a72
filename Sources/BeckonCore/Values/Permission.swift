/// Braze's REST API key permission names; a key may only call endpoints whose permission it holds.
public enum Permission {
    /// Every permission name Braze defines (reference §1.2), plus Beckon's own.
    public static let all: [String] = [
        "users.track", "users.delete", "users.alias.new", "users.alias.update", "users.identify", "users.merge",
        "users.export.ids", "users.export.segment", "users.export.global_control_group",
        "users.external_ids.rename", "users.external_ids.remove",
        "email.unsubscribe", "email.status", "email.hard_bounces", "email.bounce.remove", "email.spam.remove",
        "email.blacklist",
        "messages.send", "messages.schedule.create", "messages.schedule.update", "messages.schedule.delete",
        "messages.schedule_broadcasts", "messages.live_activity.update", "transactional.send",
        "campaigns.trigger.send", "campaigns.trigger.schedule.create", "campaigns.trigger.schedule.update",
        "campaigns.trigger.schedule.delete", "campaigns.list", "campaigns.data_series", "campaigns.details",
        "sends.data_series", "sends.id.create",
        "canvas.trigger.send", "canvas.trigger.schedule.create", "canvas.trigger.schedule.update",
        "canvas.trigger.schedule.delete", "canvas.list", "canvas.data_series", "canvas.details",
        "canvas.data_summary",
        "segments.list", "segments.data_series", "segments.details",
        "purchases.product_list", "purchases.revenue_series", "purchases.quantity_series", "events.list",
        "events.data_series", "sessions.data_series", "kpi.mau.data_series", "kpi.dau.data_series",
        "kpi.new_users.data_series", "kpi.uninstalls.data_series",
        "templates.email.create", "templates.email.update", "templates.email.info", "templates.email.list",
        "content_blocks.create", "content_blocks.update", "content_blocks.info", "content_blocks.list",
        "subscription.status.set", "subscription.status.get", "subscription.groups.get",
        "catalogs.create", "catalogs.get", "catalogs.delete", "catalogs.add_items", "catalogs.create_item",
        "catalogs.get_item", "catalogs.get_items", "catalogs.update_item", "catalogs.replace_item",
        "catalogs.delete_item", "catalogs.delete_items",
        "preference_center.get", "preference_center.list", "preference_center.update",
        "preference_center.user.get",
        "beckon.workspace.admin", "beckon.liquid.preview", "beckon.segments.read", "beckon.segments.write",
        "beckon.connected_content.admin", "beckon.activity_log.read", "beckon.campaigns.read", "beckon.campaigns.write",
    ]

    private static let known = Set(all)

    /// Aliases Braze's own documents use for the same permission.
    private static let aliases = ["campaign.details": "campaigns.details"]

    /// The canonical name for `name`, or `nil` when no such permission exists.
    public static func canonical(_ name: String) -> String? {
        if known.contains(name) { return name }
        return aliases[name]
    }
}

/// A permission an endpoint requires, named once here so a route cannot ask for one that does not
/// exist (each is checked against Braze's list when first used); `name` is what API keys store.
public struct APIPermission: Hashable, Sendable, CustomStringConvertible {
    public let name: String

    private init(checked name: String) {
        precondition(Permission.canonical(name) == name, "unknown permission \(name)")
        self.name = name
    }

    public var description: String { name }

    /// Beckon's own endpoints are covered by `beckon.workspace.admin` too.
    public var isBeckonOwn: Bool { name.hasPrefix("beckon.") }

    public static let beckonActivityLogRead = APIPermission(checked: "beckon.activity_log.read")
    public static let beckonCampaignsRead = APIPermission(checked: "beckon.campaigns.read")
    public static let beckonCampaignsWrite = APIPermission(checked: "beckon.campaigns.write")
    public static let beckonConnectedContentAdmin = APIPermission(checked: "beckon.connected_content.admin")
    public static let beckonLiquidPreview = APIPermission(checked: "beckon.liquid.preview")
    public static let beckonSegmentsRead = APIPermission(checked: "beckon.segments.read")
    public static let beckonSegmentsWrite = APIPermission(checked: "beckon.segments.write")
    public static let beckonWorkspaceAdmin = APIPermission(checked: "beckon.workspace.admin")
    public static let campaignsDataSeries = APIPermission(checked: "campaigns.data_series")
    public static let campaignsDetails = APIPermission(checked: "campaigns.details")
    public static let campaignsList = APIPermission(checked: "campaigns.list")
    public static let campaignsTriggerScheduleCreate = APIPermission(checked: "campaigns.trigger.schedule.create")
    public static let campaignsTriggerScheduleDelete = APIPermission(checked: "campaigns.trigger.schedule.delete")
    public static let campaignsTriggerScheduleUpdate = APIPermission(checked: "campaigns.trigger.schedule.update")
    public static let campaignsTriggerSend = APIPermission(checked: "campaigns.trigger.send")
    public static let messagesSend = APIPermission(checked: "messages.send")
    public static let segmentsDataSeries = APIPermission(checked: "segments.data_series")
    public static let subscriptionStatusSet = APIPermission(checked: "subscription.status.set")
    public static let subscriptionStatusGet = APIPermission(checked: "subscription.status.get")
    public static let segmentsDetails = APIPermission(checked: "segments.details")
    public static let segmentsList = APIPermission(checked: "segments.list")
    public static let usersAliasNew = APIPermission(checked: "users.alias.new")
    public static let usersDelete = APIPermission(checked: "users.delete")
    public static let usersExportIds = APIPermission(checked: "users.export.ids")
    public static let usersIdentify = APIPermission(checked: "users.identify")
    public static let usersTrack = APIPermission(checked: "users.track")
}
