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
    /// The node's one claim batch in flight: at most this many messages claimed and not yet
    /// settled (claimed in chunks of up to 500 as room frees up). A crashed node leaves at most
    /// this many messages to re-send, under the same message ids.
    public var batchSize = 2_000
    /// Users added to the queue per dispatch per round.
    public var expansionPageSize = 2_000
    /// Queued messages a campaign may have before its audience is read further: expansion keeps
    /// about this far ahead of delivery, so the queue (and the pages a settle rewrites) stays
    /// small and the audience is read close to send time.
    public var expansionLookAhead = 20_000
    /// Messages rendered and sent at once.
    public var concurrency = 64
    /// Sent messages recorded per transaction: bigger groups write fewer pages per message. A crash
    /// re-sends (under the same message ids) at most the batch in flight either way.
    public var settleGroupSize = 250
    /// Attempts for a delivery that the channel calls retryable (timeouts, 5xx, 429).
    public var maxAttempts = 5
    /// The wait before the second attempt; it doubles for each further attempt (at most 5 minutes).
    public var retryBaseMilliseconds: Int64 = 2_000
    /// How long a message waits before it is tried again while its channel is paused by a
    /// configuration error (bad key, wrong topic); it does not use up an attempt.
    public var configErrorWaitMilliseconds: Int64 = 60_000
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
        campaignConcurrency = CampaignConcurrency()
        controls = DeliveryControls(queue: queue)
        self.clock = clock
        self.configuration = configuration
        self.logger = logger
    }

    /// Runs until graceful shutdown: then stops claiming, lets the messages in flight finish (within
    /// `drainTimeout`) and returns. Two loops: control (trigger outbox, lease sweep, scheduler,
    /// expansion) and delivery (a continuous stream of claims), so audience pages are added while
    /// messages are sent.
    public func run() async throws {
        let requeued = try await queue.requeueExpiredLeases(includingOwn: true)
        if requeued > 0 { logger.info("re-queued claims of a stopped run of this node", metadata: ["messages": "\(requeued)"]) }
        let stopping = StopFlag()
        let finished = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                await self.loop(until: stopping, name: "control") { try await self.controlRound() }
                return true
            }
            group.addTask {
                await self.loop(until: stopping, name: "delivery") { try await self.deliverAvailable(stopping: stopping) > 0 }
                return true
            }
            group.addTask {
                try? await gracefulShutdown()
                stopping.set()
                try? await Task.sleep(for: self.configuration.drainTimeout)
                return false
            }
            // Both loops ended (true, true), or the drain timeout came first (false).
            var loopsDone = 0
            while let result = try await group.next() {
                guard result else { break }
                loopsDone += 1
                if loopsDone == 2 { break }
            }
            group.cancelAll()
            return loopsDone == 2
        }
        if !finished {
            logger.warning("messages in flight did not finish within the drain timeout; their leases expire and another node sends them")
        }
    }

    /// Repeats `round` until `stopping`, sleeping `pollInterval` when it found nothing to do.
    private func loop(until stopping: StopFlag, name: String, _ round: () async throws -> Bool) async {
        while !stopping.isSet {
            var worked = false
            do {
                worked = try await round()
            } catch {
                logger.error("send pipeline round failed", metadata: ["loop": "\(name)", "error": "\(error)"])
            }
            if !worked, !stopping.isSet { try? await Task.sleep(for: configuration.pollInterval) }
        }
    }

    /// Consume trigger facts, re-queue expired leases (at most every third of a lease), start due
    /// campaigns, add a page of each pending dispatch to the queue. Returns whether there was
    /// anything to do.
    func controlRound() async throws -> Bool {
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
        return facts + started + expanded > 0
    }

    /// Runs the control and delivery loops side by side until a round of both finds nothing due
    /// (for tests and the benchmark, with the clock held still).
    public func drain() async throws {
        while true {
            let deliveryDone = StopFlag()
            // Control rounds go on while messages are being sent (expansion waits for the queue
            // to shrink below its look-ahead), then stop once one finds nothing to do.
            async let controlled: Bool = {
                var worked = false
                while true {
                    if try await self.controlRound() {
                        worked = true
                    } else {
                        // Idle for up to 50 ms, checking every 5 ms whether delivery is done.
                        for _ in 0..<10 where !deliveryDone.isSet { try await Task.sleep(for: .milliseconds(5)) }
                        if deliveryDone.isSet { return worked }
                    }
                }
            }()
            let sent: Int
            do {
                sent = try await deliverAvailable(stopping: StopFlag())
                deliveryDone.set()
            } catch {
                deliveryDone.set()
                _ = try? await controlled
                throw error
            }
            if try await !controlled, sent == 0 { return }
        }
    }

    // MARK: Expansion

    /// Adds a page of each pending dispatch whose campaign is not already `expansionLookAhead`
    /// messages ahead of delivery. Returns how many dispatches it expanded.
    private func expandDispatches() async throws -> Int {
        var expanded = 0
        for dispatch in try await queue.pendingDispatches(limit: 20) {
            if let campaignID = dispatch.campaignID,
                try await queue.queuedCount(campaignID: campaignID, limit: configuration.expansionLookAhead) >= configuration.expansionLookAhead
            {
                continue
            }
            try await expand(dispatch)
            expanded += 1
        }
        return expanded
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
        // Channels that cannot reach everyone (push needs a valid token): who of this page they reach.
        var reachable: [String: Set<Int64>] = [:]
        for variant in definition.variants where !page.isEmpty {
            for (name, message) in variant.messages {
                guard let channel = channels[name], let filter = channel.reachability(message) else { continue }
                let members = try await segments.memberIDs(
                    workspaceID: dispatch.workspaceID, filter: filter, among: page, after: 0, limit: page.count)
                reachable["\(variant.name)|\(name)"] = Set(members)
            }
        }
        let firstVariant = definition.variants.first?.name ?? ""
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
            let variantName = variant ?? firstVariant
            let priority = variant.flatMap { name in definition.variants.first { $0.name == name }?.channelPriority } ?? []
            // With a channel priority: only its first channel that can reach the user (the rest wait for a dead address).
            let preferred = priority.first { reachable["\(variantName)|\($0)"]?.contains(userID) ?? true }
            for channel in channelNames where reachable["\(variantName)|\(channel)"]?.contains(userID) ?? true {
                if !priority.isEmpty, priority.contains(channel), channel != preferred { continue }
                messages.append(SendQueue.NewMessage(
                    userID: userID, channel: channel, variant: variant ?? "control", notBefore: notBefore, triggerProperties: triggerProperties,
                    isControl: variant == nil, capped: definition.frequencyCapped))
            }
        }
        try await queue.addMessages(
            messages, dispatch: dispatch, cursor: page.last ?? dispatch.cursor, finished: page.count < configuration.expansionPageSize,
            intervalMilliseconds: definition.rateLimitPerMinute.map { max(1, 60_000 / Int64($0)) })
    }

    /// The channel after `message`'s in its variant's `channel_priority`, queued when the
    /// message found the user's address dead (push: no valid token took it).
    static func fallback(after message: QueuedMessage, definition: CampaignDefinition) -> (channel: String, capped: Bool)? {
        guard let priority = definition.variants.first(where: { $0.name == message.variant })?.channelPriority,
            let index = priority.firstIndex(of: message.channel), index + 1 < priority.count
        else { return nil }
        return (priority[index + 1], definition.frequencyCapped)
    }

    // MARK: Delivery

    /// A claimed message with what it renders from.
    private struct Claimed: Sendable {
        let message: QueuedMessage
        let profile: JSONValue?
        let unreadable: String?
        let dispatch: Result<PreparedDispatch, MessageRenderError>?
    }

    /// Sends every message due now as one stream: claims come in chunks while earlier messages
    /// are out, at most `batchSize` messages are claimed and not yet settled (the node's one claim
    /// batch in flight), results are settled in groups by a task of their own. Stops claiming when
    /// `stopping` is set and returns once what it claimed is settled. Returns how many it sent.
    func deliverAvailable(stopping: StopFlag) async throws -> Int {
        let settledCount = SettledCounter()
        let (settlements, settle) = AsyncStream<[SendQueue.Settlement]>.makeStream()
        let settler = Task { () -> Void in
            for await group in settlements {
                let settled = try await queue.settle(group)
                queue.release(group.map(\.message.id))
                settledCount.add(group.count)
                try await logOutcomes(settled)
            }
        }
        // Keep the leases of what is out alive (PostgreSQL).
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
        var claimedTotal = 0
        var dispatches: [String: Result<PreparedDispatch, MessageRenderError>] = [:]
        do {
            try await withThrowingTaskGroup(of: SendQueue.Settlement.self) { group in
                var waiting: [Claimed] = []
                var next = 0
                var running = 0
                var lastClaimEmpty = false
                var buffer: [SendQueue.Settlement] = []
                let chunk = max(1, min(configuration.batchSize / 2, 500))
                while true {
                    let unsettled = claimedTotal - settledCount.value
                    let room = configuration.batchSize - unsettled
                    if !stopping.isSet, waiting.count - next < configuration.concurrency, room >= chunk || (unsettled == 0 && room > 0),
                        !(lastClaimEmpty && running > 0)
                    {
                        let batch = try await queue.claim(limit: min(chunk, room))
                        lastClaimEmpty = batch.isEmpty
                        if !batch.isEmpty {
                            claimedTotal += batch.count
                            let profiles = try await users.profiles(ids: Array(Set(batch.map(\.userID))))
                            await prefetch(batch)
                            let missing = Set(batch.map(\.dispatchID)).filter { dispatches[$0] == nil }
                            if !missing.isEmpty { dispatches.merge(try await prepareDispatches(missing)) { first, _ in first } }
                            waiting.removeFirst(next)
                            next = 0
                            for message in batch {
                                waiting.append(Claimed(
                                    message: message, profile: profiles[message.userID], unreadable: profiles.unreadable[message.userID],
                                    dispatch: dispatches[message.dispatchID]))
                            }
                        }
                    }
                    while running < configuration.concurrency, next < waiting.count {
                        let claimed = waiting[next]
                        next += 1
                        running += 1
                        group.addTask {
                            let outcome = await self.deliver(
                                claimed.message, profile: claimed.profile, unreadable: claimed.unreadable, dispatch: claimed.dispatch)
                            var settlement = SendQueue.Settlement(
                                message: claimed.message, externalID: claimed.profile?["external_id"]?.stringValue, outcome: outcome)
                            if case .failed(_, _, _, true) = outcome, case .success(let prepared)? = claimed.dispatch {
                                settlement.fallback = Self.fallback(after: claimed.message, definition: prepared.definition)
                            }
                            return settlement
                        }
                    }
                    guard running > 0 else {
                        // Nothing out: done when the last claim found nothing or we are stopping; else
                        // wait for the settling task to make room for the next claim.
                        if lastClaimEmpty || stopping.isSet { break }
                        if claimedTotal - settledCount.value > 0 { try await Task.sleep(for: .milliseconds(1)) }
                        continue
                    }
                    guard let result = try await group.next() else { break }
                    running -= 1
                    lastClaimEmpty = false
                    buffer.append(result)
                    if buffer.count >= configuration.settleGroupSize || (running == 0 && next >= waiting.count) {
                        settle.yield(buffer)
                        buffer = []
                    }
                }
                if !buffer.isEmpty { settle.yield(buffer) }
            }
        } catch {
            settle.finish()
            _ = try? await settler.value
            queue.releaseAll()
            throw error
        }
        settle.finish()
        do {
            try await settler.value
        } catch {
            queue.releaseAll()
            throw error
        }
        return claimedTotal
    }

    /// Lets each channel load what it needs for a claimed chunk in one go (push: the users' tokens).
    private func prefetch(_ batch: [QueuedMessage]) async {
        var groups: [String: [Int64: [Int64]]] = [:]
        for message in batch { groups[message.channel, default: [:]][message.workspaceID, default: []].append(message.userID) }
        for (name, workspaces) in groups {
            guard let channel = channels[name] else { continue }
            for (workspaceID, userIDs) in workspaces { await channel.prefetch(workspaceID: workspaceID, userIDs: userIDs) }
        }
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
            case .failed(let text, let code, let logType, _): (type, reason, status) = (logType, text, code)
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
        let slot = (message.campaignID ?? message.dispatchID) + "|" + message.channel
        await campaignConcurrency.acquire(slot, limit: channel.concurrencyPerCampaign)
        defer { campaignConcurrency.release(slot) }
        let outcome = await channel.send(rendered, to: Recipient(
            workspaceID: message.workspaceID, messageID: message.id, userID: message.userID, attempt: message.attempts,
            campaignID: message.campaignID, dispatchID: message.dispatchID, variant: message.variant, externalID: profile["external_id"]?.stringValue))
        switch outcome {
        case .accepted(let detail):
            return .delivered(detail: detail)
        case .retryable(let reason, let after, let status):
            return retryOrFail(message, reason: reason, status: status, afterSeconds: after)
        case .rejected(let reason, let status):
            return .failed(reason: reason, status: status, logType: "\(message.channel)_failure")
        case .invalidAddress(let reason):
            return .failed(reason: reason, status: nil, logType: "\(message.channel)_invalid_address", addressInvalid: true)
        case .configError(let reason):
            // The channel is paused for the workspace: the message waits without using an attempt.
            return .retry(
                at: BrazeTime.epochMilliseconds(clock.now()) + configuration.configErrorWaitMilliseconds,
                reason: "waiting for the \(message.channel) configuration: \(reason)", countsAsAttempt: false)
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
        return .retry(at: BrazeTime.epochMilliseconds(clock.now()) + delay, reason: reason, countsAsAttempt: true)
    }

    private func recordActivity(_ workspaceID: Int64, type: String, campaignID: String?, reason: String) async throws {
        try await activityLog.record([ActivityLogEntry(
            workspaceID: workspaceID, time: BrazeTime.epochMilliseconds(clock.now()), type: type, campaignID: campaignID, reason: reason)])
    }
}

/// Set once graceful shutdown begins; shared by the pipeline's loops and its shutdown watcher.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() { flag.store(true, ordering: .relaxed) }
}

/// Messages the settling task has finished with, read by the delivery stream to bound what is out.
final class SettledCounter: Sendable {
    private let count = Atomic<Int>(0)
    var value: Int { count.load(ordering: .acquiring) }
    func add(_ amount: Int) { count.add(amount, ordering: .releasing) }
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
