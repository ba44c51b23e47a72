import BeckonChannels
import BeckonConnectedContent
import BeckonCore
import BeckonSegments
import BeckonStorage
import Logging

/// Campaigns as the rest of Beckon uses them: the store behind the campaign endpoints, the
/// pipeline (a service to run) with its queue and trigger consumer, and the delivery settings.
public struct CampaignComponents: Sendable {
    public let store: CampaignStore
    public let pipeline: SendPipeline
    public let deliverySettings: DeliverySettingsStore
    /// Push credentials and tokens (the push channel's directory).
    public let push: PushStore
    /// The SMS vendor (the SMS channel's directory).
    public let sms: SMSStore
    /// Email sending settings (SMTP, sender, DKIM).
    public let email: EmailSettingsStore
    public var queue: SendQueue { pipeline.queue }
    public var triggers: CampaignTriggers { pipeline.triggers }
    public var channels: ChannelCatalog { pipeline.channels }

    public init(
        database: any SQLDatabase, users: UserStore, segments: SegmentService, connectedContent: ConnectedContentComponents,
        channels: ChannelCatalog, push: PushStore, sms: SMSStore, clock: any BeckonClock, configuration: SendPipelineConfiguration = SendPipelineConfiguration(),
        logger: Logger
    ) {
        self.push = push
        self.sms = sms
        email = EmailSettingsStore(database: database, box: connectedContent.secrets, clock: clock)
        store = CampaignStore(database: database, clock: clock, channels: channels)
        let deliverySettings = DeliverySettingsStore(database: database, clock: clock)
        self.deliverySettings = deliverySettings
        pipeline = SendPipeline(
            database: database, users: users, segments: segments, connectedContent: connectedContent.service,
            activityLog: connectedContent.activityLog, deliverySettings: deliverySettings, channels: channels, clock: clock,
            configuration: configuration, logger: logger)
    }
}
