import BeckonChannels
import BeckonConnectedContent
import BeckonCore
import BeckonSegments
import BeckonStorage
import Foundation
import Liquid
import Logging
import ServiceLifecycle
import Synchronization

/// Tuning of the send pipeline.
public struct SendPipelineConfiguration: Sendable {
    /// Messages one claim takes. A node holds at most one claim batch in flight: a crashed
    /// node leaves at most this many messages to re-send (under the same message ids).
    public var batchSize = 1_000
    /// Users added to the queue per dispatch per round.
    public var expansionPageSize = 2_000
    /// Messages rendered and sent at once.
    public var concurrency = 64
    /// Deliveries of one campaign in flight at once (so a big send cannot open more connections
    /// to a vendor than it allows).
    public var concurrencyPerCampaign = 32
    /// Sent messages recorded per transaction.
    public var settleGroupSize = 64
    /// Attempts for a delivery that the channel calls retryable (timeouts, 5xx, 429).
    public var maxAttempts = 5
    /// The wait before the second attempt; it doubles for each further attempt (at most 5 minutes).
    public var retryBaseMilliseconds: Int64 = 2_000
    /// How long an idle pipeline sleeps between rounds.
    public var pollInterval: Duration = .milliseconds(200)
    /// On graceful shutdown: how long the in-flight batch may take to finish before it is cancelled
    /// (its messages are then re-sent by whichever node takes over their leases).
    public var drainTimeout: Duration = .seconds(30)
    /// This node's id and lease length.
    public var node = NodeIdentity()

    public init() {}
}

/// Turns dispatches into delivered messages: trigger outbox → dispatches; scheduled campaigns →
/// dispatches; dispatch audience in keyset pages → variant or control (stable per user per
/// campaign) → durable queue rows (paced by the campaign rate limit) → claimed under a lease →
/// delivery controls → render (one `RenderContext`, Liquid, Connected Content) → the channel's
/// adapter, with the message id as idempotency key → settled with engagement events. Every
/// abort and failure goes to the activity log with its reason; nothing branches on the channel.
public final class SendPipeline: Service, Sendable {
    public let queue: SendQueue
    public let triggers: CampaignTriggers
    let users: UserStore
    let segments: SegmentService
    let connectedContent: ConnectedContentService
    let activityLog: ActivityLogStore
    let deliverySettings: DeliverySettingsStore
    public let channels: ChannelCatalog
    let clock: any BeckonClock
    let configuration: SendPipelineConfiguration
    let logger: Logger
    let campaignConcurrency: CampaignConcurrency
    let controls: DeliveryControls
    private let lastLeaseSweep = Mutex<ContinuousClock.Instant?>(nil)

    public init(
        database: any SQLDatabase, users: UserStore, segments: SegmentService, connectedContent: ConnectedContentService,
        activityLog: ActivityLogStore, deliverySettings: DeliverySettingsStore, channels: ChannelCatalog, clock: any BeckonClock,
        configuration: SendPipelineConfiguration = SendPipelineConfiguration(), logger: Logger
    ) {
        queue = SendQueue(database: database, clock: clock, node: configuration.node)
        triggers = CampaignTriggers(database: database, users: users, segments: segments, clock: clock, logger: logger)
        self.users = users
        self.segments = segments
        self.connectedContent = connectedContent
        self.activityLog = activityLog
        self.deliverySettings = deliverySettings
        self.channels = channels
        campaignConcurrency = CampaignConcurrency(limit: configuration.concurrencyPerCampaign)
        controls = DeliveryControls(queue: queue)
        self.clock = clock
        self.configuration = configuration
        self.logger = logger
    }

    /// Runs until graceful shutdown: then stops claiming, lets the batch in flight finish (within
    /// `drainTimeout`) and returns.
    public func run() async throws {
        let requeued = try await queue.requeueExpiredLeases(includingOwn: true)
        if requeued > 0 { logger.info("re-queued claims of a stopped run of this node", metadata: ["messages": "\(requeued)"]) }
        let stopping = StopFlag()
        let finished = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                while !stopping.isSet {
                    var worked = false
                    do {
                        worked = try await self.tick()
                    } catch {
                        self.logger.error("send pipeline round failed", metadata: ["error": "\(error)"])
                    }
                    if !worked, !stopping.isSet { try? await Task.sleep(for: self.configuration.pollInterval) }
                }
                return true
            }
            group.addTask {
                try? await gracefulShutdown()
                stopping.set()
                try? await Task.sleep(for: self.configuration.drainTimeout)
                return false
            }
            let first = try await group.next() ?? true
            group.cancelAll()
            return first
        }
        if !finished {
            logger.warning("the batch in flight did not finish within the drain timeout; its leases expire and another node sends it")
        }
    }

    /// One round: consume trigger facts, re-queue expired leases (at most every third of a lease),
    /// start due campaigns, add a page of each pending dispatch to the queue, send one batch of
    /// due messages. Returns whether there was anything to do.
    @discardableResult
    public func tick() async throws -> Bool {
        let facts = try await triggers.processOutbox()
        let sweepNow = ContinuousClock.now
        let sweepDue = lastLeaseSweep.withLock { last -> Bool in
            guard let previous = last, sweepNow - previous < .milliseconds(configuration.node.leaseMilliseconds / 3) else {
                last = sweepNow
                return true
            }
            return false
        }
        if sweepDue {
            let requeued = try await queue.requeueExpiredLeases()
            if requeued > 0 { logger.warning("re-queued messages whose lease expired", metadata: ["messages": "\(requeued)"]) }
        }
        let started = try await queue.startDueCampaigns()
        let expanded = try await expandDispatches()
        let sent = try await deliverBatch()
        return facts + started + expanded + sent > 0
    }

    /// Rounds until nothing is due (for tests and the benchmark, with the clock held still).
    public func drain() async throws {
        while try await tick() {}
    }

    // MARK: Expansion

    private func expandDispatches() async throws -> Int {
        let dispatches = try await queue.pendingDispatches(limit: 20)
        for dispatch in dispatches { try await expand(dispatch) }
        return dispatches.count
    }

    private func expand(_ dispatch: Dispatch) async throws {
        let definition: CampaignDefinition
        let filter: SegmentFilter?
        do {
            // Messages are prepared (and fail one by one) at send time.
            definition = try CampaignDefinition.parse(dispatch.definition, channels: nil)
            filter = try definition.audience.combinedFilter()
        } catch {
            try await recordActivity(
                dispatch.workspaceID, type: "dispatch_failure", campaignID: dispatch.campaignID,
                reason: "dispatch \(dispatch.id): the stored definition cannot be used: \(error); nothing was sent")
            try await queue.addMessages([], dispatch: dispatch, cursor: dispatch.cursor, finished: true, intervalMilliseconds: nil)
            return
        }
        var among: [Int64]?
        var recipientProperties: [Int64: JSONValue] = [:]
        if let recipients = dispatch.recipients?.arrayValue {
            var ids: [Int64] = []
            for recipient in recipients {
                if case .int(let id)? = recipient["beckon_user_id"] {
                    ids.append(id)
                    continue
                }
                guard let object = recipient["identifier"]?.objectValue, case .success(let identifier) = UserIdentifier.resolve(in: object),
                    let id = try await users.userID(workspaceID: dispatch.workspaceID, identifier: identifier)
                else {
                    if dispatch.cursor == 0 {
                        try await recordActivity(
                            dispatch.workspaceID, type: "skipped", campaignID: dispatch.campaignID,
                            reason: "recipient \(recipient["identifier"]?.serialized() ?? "?") is not a user of this workspace")
                    }
                    continue
                }
                ids.append(id)
                if let properties = recipient["trigger_properties"], recipientProperties[id] == nil { recipientProperties[id] = properties }
            }
            among = ids
        }
        var audience = filter
        if !dispatch.kind.reachesGlobalControlGroup,
            let percent = try await deliverySettings.settings(workspaceID: dispatch.workspaceID).globalControlPercent
        {
            let outside = SegmentFilter.randomBucket(NumberCondition(op: .gte, value: Double(percent * 100), upper: nil))
            audience = audience.map { .all([$0, outside]) } ?? outside
        }
        let page = try await segments.memberIDs(
            workspaceID: dispatch.workspaceID, filter: audience, among: among, after: dispatch.cursor, limit: configuration.expansionPageSize)
        var wallClock: String?
        var userZones: [Int64: String] = [:]
        var workspaceZone = TimeZone(identifier: "UTC")!
        if case .scheduled(_, .some) = definition.delivery {
            workspaceZone = try await queue.workspaceTimeZone(dispatch.workspaceID)
            // The run starts 14 hours before its wall-clock send time (the first zone to reach it).
            wallClock = LocalTime.format(dispatch.scheduledAt + 14 * 3_600_000)
            userZones = try await users.timeZones(ids: page)
        }
        let campaignKey = dispatch.campaignID ?? dispatch.id
        var messages: [SendQueue.NewMessage] = []
        messages.reserveCapacity(page.count)
        for userID in page {
            let variant = VariantPicker.pick(campaignKey: campaignKey, userID: userID, variants: definition.variants, controlPercent: definition.controlPercent)
            var notBefore = dispatch.scheduledAt
            if let wall = wallClock {
                let zone = userZones[userID].flatMap(TimeZone.init(identifier:)) ?? workspaceZone
                notBefore = LocalTime.parse(wall, in: zone).map(BrazeTime.epochMilliseconds) ?? dispatch.scheduledAt
            }
            var properties = dispatch.triggerProperties.objectValue ?? [:]
            for (key, value) in recipientProperties[userID]?.objectValue ?? [:] { properties[key] = value }
            let triggerProperties: JSONValue? = properties.isEmpty ? nil : .object(properties)
            // The control group gets one settled row (on the campaign's first channel); a variant one message per channel.
            let channelNames = variant.map { name in definition.variants.first { $0.name == name }?.channels ?? [] }
                ?? Array(definition.variants.first?.channels.prefix(1) ?? [])
            for channel in channelNames {
                messages.append(SendQueue.NewMessage(
                    userID: userID, channel: channel, variant: variant ?? "control", notBefore: notBefore, triggerProperties: triggerProperties,
                    isControl: variant == nil, capped: definition.frequencyCapped))
            }
        }
        try await queue.addMessages(
            messages, dispatch: dispatch, cursor: page.last ?? dispatch.cursor, finished: page.count < configuration.expansionPageSize,
            intervalMilliseconds: definition.rateLimitPerMinute.map { max(1, 60_000 / Int64($0)) })
    }

    // MARK: Delivery

    private func deliverBatch() async throws -> Int {
        let batch = try await queue.claim(limit: configuration.batchSize)
        guard !batch.isEmpty else { return 0 }
        // Keep the leases alive while the batch is out.
        let renewal = Task {
            let interval = Duration.milliseconds(max(configuration.node.leaseMilliseconds / 3, 100))
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                do {
                    try await queue.renewLeases()
                } catch {
                    logger.error("cannot renew message leases", metadata: ["error": "\(error)"])
                }
            }
        }
        defer { renewal.cancel() }
        let profiles = try await users.profiles(ids: Array(Set(batch.map(\.userID))))
        let prepared = try await prepareDispatches(Set(batch.map(\.dispatchID)))
        let (settlements, pending) = AsyncStream<[SendQueue.Settlement]>.makeStream()
        // Settled in small groups by a task of its own, so sending goes on while the database writes.
        let settler = Task { () -> [SendQueue.Settlement] in
            var all: [SendQueue.Settlement] = []
            for await group in settlements { all += try await queue.settle(group) }
            return all
        }
        do {
            try await withThrowingTaskGroup(of: SendQueue.Settlement.self) { group in
                var iterator = batch.makeIterator()
                func addNext() {
                    guard let message = iterator.next() else { return }
                    let profile = profiles[message.userID]
                    let unreadable = profiles.unreadable[message.userID]
                    let dispatch = prepared[message.dispatchID]
                    group.addTask {
                        let outcome = await self.deliver(message, profile: profile, unreadable: unreadable, dispatch: dispatch)
                        return SendQueue.Settlement(message: message, externalID: profile?["external_id"]?.stringValue, outcome: outcome)
                    }
                }
                for _ in 0..<configuration.concurrency { addNext() }
                var buffer: [SendQueue.Settlement] = []
                for try await result in group {
                    buffer.append(result)
                    addNext()
                    if buffer.count >= configuration.settleGroupSize {
                        pending.yield(buffer)
                        buffer = []
                    }
                }
                if !buffer.isEmpty { pending.yield(buffer) }
            }
        } catch {
            pending.finish()
            _ = try? await settler.value
            throw error
        }
        pending.finish()
        let settled = try await settler.value
        try await logOutcomes(settled)
        return batch.count
    }

    private func logOutcomes(_ settled: [SendQueue.Settlement]) async throws {
        var entries: [ActivityLogEntry] = []
        let now = BrazeTime.epochMilliseconds(clock.now())
        for settlement in settled {
            let message = settlement.message
            let (type, reason, status): (String, String, Int?)
            switch settlement.outcome {
            case .delivered, .retry: continue
            case .aborted(let text): (type, reason, status) = ("abort", text, nil)
            case .skipped(let text): (type, reason, status) = ("skipped", text, nil)
            case .failed(let text, let code, let logType): (type, reason, status) = (logType, text, code)
            }
            entries.append(ActivityLogEntry(
                workspaceID: message.workspaceID, time: now, type: type, campaignID: message.campaignID, variant: message.variant,
                externalID: settlement.externalID, channel: message.channel, status: status, reason: reason))
        }
        try await activityLog.record(entries)
    }

    /// A dispatch ready to render: its definition and every variant's messages prepared once.
    struct PreparedDispatch: Sendable {
        let definition: CampaignDefinition
        let kind: DispatchKind
        let sendID: String?
        /// Variant name → channel → the prepared message, or why it cannot be sent.
        let variants: [String: [String: Result<any PreparedMessage, MessageRenderError>]]
        let workspaceZone: TimeZone
        let settings: DeliverySettings
    }

    /// Dispatch id → its prepared form, or why it cannot be used (every message of it then fails).
    private func prepareDispatches(_ ids: Set<String>) async throws -> [String: Result<PreparedDispatch, MessageRenderError>] {
        let ids = Array(ids)
        let rows = try await queue.database.read { connection in
            try ids.compactMap { id in
                try connection.first(
                    """
                    SELECT d.id, d.definition, d.send_id, d.kind, d.workspace_id, w.time_zone FROM dispatches d
                    JOIN workspaces w ON w.id = d.workspace_id WHERE d.id = ?
                    """, [.text(id)])
            }
        }
        var prepared: [String: Result<PreparedDispatch, MessageRenderError>] = [:]
        for row in rows {
            let id = row[0].string ?? ""
            do {
                guard let kind = DispatchKind(rawValue: row[3].string ?? "") else {
                    throw StoredDataError(table: "dispatches", row: id, column: "kind", problem: "unknown kind '\(row[3].string ?? "")'")
                }
                let json = try row[1].storedJSON(table: "dispatches", row: id, column: "definition") ?? .null
                let definition: CampaignDefinition
                do {
                    definition = try CampaignDefinition.parse(json, channels: nil)
                } catch {
                    throw StoredDataError(table: "dispatches", row: id, column: "definition", problem: error.description)
                }
                let settings = try await deliverySettings.settings(workspaceID: row[4].int ?? 0)
                let rules = MessageRules(isAdvertising: definition.advertising, advertising: settings.advertising.map { AdvertisingNotice(optOutText: $0.optOutText) })
                prepared[id] = .success(PreparedDispatch(
                    definition: definition, kind: kind, sendID: row[2].string, variants: Self.prepare(definition, rules: rules, channels: channels),
                    workspaceZone: TimeZone(identifier: row[5].string ?? "UTC") ?? TimeZone(identifier: "UTC")!, settings: settings))
            } catch let error as StoredDataError {
                prepared[id] = .failure(MessageRenderError(error.description))
            }
        }
        return prepared
    }

    /// Every variant's messages prepared by their channels; a message that cannot be prepared
    /// keeps its reason (that message fails; no other variant or channel is sent instead).
    static func prepare(
        _ definition: CampaignDefinition, rules: MessageRules, channels: ChannelCatalog
    ) -> [String: [String: Result<any PreparedMessage, MessageRenderError>]] {
        var variants: [String: [String: Result<any PreparedMessage, MessageRenderError>]] = [:]
        for variant in definition.variants {
            var messages: [String: Result<any PreparedMessage, MessageRenderError>] = [:]
            for (name, message) in variant.messages {
                guard let channel = channels[name] else {
                    messages[name] = .failure(MessageRenderError("channel '\(name)' is not available on this server"))
                    continue
                }
                do {
                    messages[name] = .success(try channel.prepare(message, rules: rules))
                } catch let error as MessageRenderError {
                    messages[name] = .failure(error)
                } catch let error as LiquidSyntaxError {
                    messages[name] = .failure(MessageRenderError("Liquid syntax error at line \(error.line), column \(error.column): \(error.message)"))
                } catch {
                    messages[name] = .failure(MessageRenderError("\(error)"))
                }
            }
            variants[variant.name] = messages
        }
        return variants
    }

    private func deliver(
        _ message: QueuedMessage, profile: JSONValue?, unreadable: String?, dispatch: Result<PreparedDispatch, MessageRenderError>?
    ) async -> MessageOutcome {
        guard let profile else {
            if let unreadable { return .failed(reason: unreadable, status: nil, logType: "dispatch_failure") }
            return .skipped(reason: "the user no longer exists")
        }
        let prepared: PreparedDispatch
        switch dispatch {
        case .success(let value)?: prepared = value
        case .failure(let error)?: return .failed(reason: "the dispatch cannot be sent: \(error)", status: nil, logType: "dispatch_failure")
        case nil: return .failed(reason: "the dispatch \(message.dispatchID) no longer exists", status: nil, logType: "dispatch_failure")
        }
        guard let channel = channels[message.channel] else {
            return .failed(reason: "channel '\(message.channel)' is not available on this server", status: nil, logType: "dispatch_failure")
        }
        guard let result = prepared.variants[message.variant]?[message.channel] else {
            return .failed(
                reason: "variant '\(message.variant)' has no \(message.channel) message in the dispatch's definition; nothing else is sent instead",
                status: nil, logType: "render_error")
        }
        let preparedMessage: any PreparedMessage
        switch result {
        case .success(let value): preparedMessage = value
        case .failure(let error): return .failed(reason: "render error: \(error)", status: nil, logType: "render_error")
        }
        let zone = profile["time_zone"]?.stringValue.flatMap(TimeZone.init(identifier:)) ?? prepared.workspaceZone
        if let held = await controls.check(message, profile: profile, definition: prepared.definition, settings: prepared.settings, zone: zone, now: clock.now()) {
            return held
        }
        let context = RenderContext(
            user: profile,
            campaign: RenderContext.Campaign(
                apiID: message.campaignID, name: prepared.definition.name, dispatchID: message.dispatchID, sendID: prepared.sendID,
                messageID: message.id, variantName: message.variant),
            triggerProperties: message.triggerProperties.map { (prepared.kind.triggerPropertiesKey, $0) })
        let rendered: RenderedMessage
        do {
            rendered = try await preparedMessage.render(context.liquid, environment: environment(
                ConnectedContentContext(
                    workspaceID: message.workspaceID, campaignID: message.campaignID, variant: message.variant,
                    externalID: profile["external_id"]?.stringValue, channel: message.channel)))
        } catch let aborted as MessageAborted {
            return .aborted(reason: aborted.reason ?? "{% abort_message %} called")
        } catch {
            return .failed(reason: "render error: \(error)", status: nil, logType: "render_error")
        }
        let slot = message.campaignID ?? message.dispatchID
        await campaignConcurrency.acquire(slot)
        defer { campaignConcurrency.release(slot) }
        let outcome = await channel.send(rendered, to: Recipient(workspaceID: message.workspaceID, messageID: message.id, userID: message.userID))
        switch outcome {
        case .accepted(let detail):
            return .delivered(detail: detail)
        case .retryable(let reason, let after, let status):
            return retryOrFail(message, reason: reason, status: status, afterSeconds: after)
        case .rejected(let reason, let status):
            return .failed(reason: reason, status: status, logType: "\(message.channel)_failure")
        case .invalidAddress(let reason):
            return .failed(reason: reason, status: nil, logType: "\(message.channel)_invalid_address")
        case .configError(let reason):
            return .failed(reason: reason, status: nil, logType: "\(message.channel)_config_error")
        }
    }

    /// The render environment of a send or preview: the injected clock and Connected Content
    /// recording failures under `context`.
    func environment(_ context: ConnectedContentContext) -> RenderEnvironment {
        var environment = RenderEnvironment()
        environment.now = clock.now()
        environment.fetcher = connectedContent.fetcher(for: context)
        return environment
    }

    private func retryOrFail(_ message: QueuedMessage, reason: String, status: Int?, afterSeconds: Int?) -> MessageOutcome {
        guard message.attempts < configuration.maxAttempts else {
            return .failed(reason: "\(reason) (gave up after \(message.attempts) attempts)", status: status, logType: "\(message.channel)_failure")
        }
        let backoff = min(configuration.retryBaseMilliseconds << Int64(message.attempts - 1), 300_000)
        let delay = max(backoff, Int64(afterSeconds ?? 0) * 1_000)
        return .retry(at: BrazeTime.epochMilliseconds(clock.now()) + delay, reason: reason)
    }

    private func recordActivity(_ workspaceID: Int64, type: String, campaignID: String?, reason: String) async throws {
        try await activityLog.record([ActivityLogEntry(
            workspaceID: workspaceID, time: BrazeTime.epochMilliseconds(clock.now()), type: type, campaignID: campaignID, reason: reason)])
    }
}

/// Set once graceful shutdown begins; shared by the pipeline's loop and its shutdown watcher.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() { flag.store(true, ordering: .relaxed) }
}

/// Stable variant assignment: the same user always lands in the same arm of a campaign.
enum VariantPicker {
    /// The variant's name, or `nil` for the control group.
    static func pick(campaignKey: String, userID: Int64, variants: [CampaignDefinition.Variant], controlPercent: Int) -> String? {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "\(campaignKey):\(userID)".utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let bucket = Int(hash % 10_000)
        if bucket < controlPercent * 100 { return nil }
        var upper = controlPercent * 100
        for variant in variants {
            upper += variant.percent * 100
            if bucket < upper { return variant.name }
        }
        return variants.last?.name
    }
}
