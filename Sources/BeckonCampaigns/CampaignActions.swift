import BeckonCore
import BeckonSegments
import BeckonStorage
import Foundation
import Logging
import Synchronization

/// Reacts to ingested events and purchases: starts action-based campaigns for the user (after
/// their delay, once or per re-eligibility period), cancels messages a later action makes moot
/// (a purchase after an abandoned cart), and records conversions.
public final class CampaignActions: Sendable {
    let queue: SendQueue
    let users: UserStore
    let segments: SegmentService
    let clock: any BeckonClock
    let logger: Logger
    /// Active campaigns that react to actions, per workspace, with when they were read.
    private let cache = Mutex<[Int64: (campaigns: [(id: String, definition: CampaignDefinition, json: JSONValue)], readAt: ContinuousClock.Instant)]>([:])

    public init(queue: SendQueue, users: UserStore, segments: SegmentService, clock: any BeckonClock, logger: Logger) {
        self.queue = queue
        self.users = users
        self.segments = segments
        self.clock = clock
        self.logger = logger
    }

    /// Forgets the workspace's campaigns after one changed.
    public func invalidate(workspaceID: Int64) {
        cache.withLock { _ = $0.removeValue(forKey: workspaceID) }
    }

    /// Handles what was just ingested. Failures are logged, never passed to the ingesting caller.
    public func observe(workspaceID: Int64, actions: [ObservedAction]) async {
        guard !actions.isEmpty else { return }
        do {
            let campaigns = try await reactingCampaigns(workspaceID: workspaceID)
            guard !campaigns.isEmpty else { return }
            // One request often carries many actions of one user: resolve each identifier once, and
            // check a segment entry once per user and campaign.
            var userIDs: [UserIdentifier: Int64?] = [:]
            var segmentChecked: Set<String> = []
            for action in actions {
                if userIDs[action.identifier] == nil {
                    userIDs[action.identifier] = .some(try await users.userID(workspaceID: workspaceID, identifier: action.identifier))
                }
                guard let userID = userIDs[action.identifier] ?? nil else { continue }
                for campaign in campaigns {
                    let firstCheck = segmentChecked.insert("\(campaign.id)|\(userID)").inserted
                    try await handle(action, userID: userID, workspaceID: workspaceID, campaign: campaign, checkSegment: firstCheck)
                }
            }
        } catch {
            logger.error("campaign triggers failed", metadata: ["error": "\(error)", "workspace": "\(workspaceID)"])
        }
    }

    private func handle(
        _ action: ObservedAction, userID: Int64, workspaceID: Int64, campaign: (id: String, definition: CampaignDefinition, json: JSONValue),
        checkSegment: Bool
    ) async throws {
        let now = BrazeTime.epochMilliseconds(clock.now())
        for (index, conversion) in campaign.definition.conversionEvents.enumerated() where conversion.action.matches(action) {
            try await queue.recordConversion(
                workspaceID: workspaceID, campaignID: campaign.id, userID: userID, label: ["A", "B", "C", "D"][index], time: now,
                windowMilliseconds: Int64(conversion.windowSeconds) * 1_000)
        }
        guard case .actionBased(let delivery) = campaign.definition.delivery else { return }
        if delivery.cancelIf.contains(where: { $0.matches(action) }) {
            try await queue.cancelPending(campaignID: campaign.id, userID: userID)
        }
        if case .enteredSegment(let segmentID) = delivery.trigger {
            guard checkSegment, let segment = try? await segments.segment(workspaceID: workspaceID, id: segmentID) else { return }
            let inside = !(try await segments.memberIDs(workspaceID: workspaceID, filter: segment.filter, among: [userID], after: 0, limit: 1)).isEmpty
            guard try await queue.noteSegmentMembership(campaignID: campaign.id, userID: userID, inside: inside) else { return }
        } else if !delivery.trigger.matches(action) {
            return
        }
        let since = delivery.reeligibleAfterDays.map { now - Int64($0) * 86_400_000 }
        if try await queue.hasCampaign(campaignID: campaign.id, userID: userID, since: since) { return }
        let sendAt: Int64
        switch delivery.delay {
        case .seconds(let seconds):
            sendAt = now + Int64(seconds) * 1_000
        case .atLocalTime(let hour, let minute, let afterDays):
            let zoneName = try await users.timeZones(ids: [userID])[userID]
            var zone = zoneName.flatMap(TimeZone.init(identifier:))
            if zone == nil { zone = try await queue.workspaceTimeZone(workspaceID) }
            sendAt = Self.localTime(
                hour: hour, minute: minute, afterDays: afterDays, from: clock.now(), in: zone ?? TimeZone(identifier: "UTC")!)
        }
        try await queue.enqueue(
            id: "dsp:\(campaign.id):\(userID):\(action.timeMillis)", workspaceID: workspaceID, campaignID: campaign.id, kind: "action_based",
            definition: campaign.json, triggerProperties: .object(action.properties),
            recipients: .array([.object(["beckon_user_id": .int(userID)])]), scheduledAt: sendAt)
    }

    /// Epoch ms of `hour:minute` on the day `afterDays` after `date`, in `zone`.
    static func localTime(hour: Int, minute: Int, afterDays: Int, from date: Date, in zone: TimeZone) -> Int64 {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let day = calendar.date(byAdding: .day, value: afterDays, to: date) ?? date
        let target = calendar.date(bySettingHour: hour, minute: minute, second: 0, of: day) ?? day
        return BrazeTime.epochMilliseconds(target)
    }

    private func reactingCampaigns(workspaceID: Int64) async throws -> [(id: String, definition: CampaignDefinition, json: JSONValue)] {
        let now = ContinuousClock.now
        if let cached = cache.withLock({ $0[workspaceID] }), now - cached.readAt < .seconds(2) { return cached.campaigns }
        let rows = try await queue.database.read { connection in
            try connection.query("SELECT id, definition FROM campaigns WHERE workspace_id = ? AND state = 'active'", [.integer(workspaceID)])
        }
        var campaigns: [(id: String, definition: CampaignDefinition, json: JSONValue)] = []
        for row in rows {
            guard let json = SendQueue.json(row[1]), let definition = try? CampaignDefinition.parse(json) else { continue }
            let reacts: Bool
            if case .actionBased = definition.delivery { reacts = true } else { reacts = !definition.conversionEvents.isEmpty }
            if reacts { campaigns.append((row[0].string ?? "", definition, json)) }
        }
        cache.withLock { $0[workspaceID] = (campaigns, now) }
        return campaigns
    }
}
