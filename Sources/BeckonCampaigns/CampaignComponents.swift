import BeckonConnectedContent
import BeckonCore
import BeckonSegments
import BeckonStorage
import Logging

/// Campaigns as the rest of Beckon uses them: the store behind the campaign endpoints and the
/// pipeline (a service to run) with its queue.
public struct CampaignComponents: Sendable {
    public let store: CampaignStore
    public let pipeline: SendPipeline
    public let actions: CampaignActions
    public let deliverySettings: DeliverySettingsStore
    public var queue: SendQueue { pipeline.queue }

    public init(
        database: any SQLDatabase, users: UserStore, segments: SegmentService, connectedContent: ConnectedContentComponents,
        clock: any BeckonClock, configuration: SendPipelineConfiguration = SendPipelineConfiguration(), logger: Logger
    ) {
        store = CampaignStore(database: database, clock: clock)
        let deliverySettings = DeliverySettingsStore(database: database, clock: clock)
        self.deliverySettings = deliverySettings
        pipeline = SendPipeline(
            database: database, users: users, segments: segments, connectedContent: connectedContent, deliverySettings: deliverySettings,
            clock: clock, configuration: configuration, logger: logger)
        actions = CampaignActions(queue: pipeline.queue, users: users, segments: segments, clock: clock, logger: logger)
    }
}
