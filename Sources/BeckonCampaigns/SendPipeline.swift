import BeckonConnectedContent
import BeckonCore
import BeckonSegments
import BeckonStorage
import Foundation
import Liquid
import Logging
import ServiceLifecycle

/// Tuning of the send pipeline.
public struct SendPipelineConfiguration: Sendable {
    /// Messages taken from the queue per batch (two batches are in flight at once).
    public var batchSize = 500
    /// Users added to the queue per dispatch per round.
    public var expansionPageSize = 2_000
    /// Messages rendered and sent at once.
    public var concurrency = 64
    /// Webhook requests of one campaign in flight at once.
    public var concurrencyPerCampaign = 32
    /// Sent messages recorded per transaction; a crash can repeat at most this many per batch in flight, plus those in flight.
    public var settleGroupSize = 64
    /// Attempts for a webhook that times out or answers 5xx.
    public var maxAttempts = 5
    /// The wait before the second attempt; it doubles for each further attempt.
    public var retryBaseMilliseconds: Int64 = 2_000
    public var webhookTimeoutMilliseconds = 10_000
    /// How long an idle pipeline sleeps between rounds.
    public var pollInterval: Duration = .milliseconds(200)

    public init() {}
}

/// Turns dispatches into delivered messages: audience in pages → variant or control (stable per
/// user per campaign) → durable queue (paced by the campaign rate limit) → render (Liquid with the
/// profile, `api_trigger_properties`, Connected Content) → webhook with the message id as
/// `Idempotency-Key` → settled with engagement events; every abort and failure goes to the
/// activity log.
public final class SendPipeline: Service, Sendable {
    public let queue: SendQueue
    let users: UserStore
    let segments: SegmentService
    let connectedContent: ConnectedContentComponents
    let deliverySettings: DeliverySettingsStore
    let clock: any BeckonClock
    let configuration: SendPipelineConfiguration
    let logger: Logger
    let campaignConcurrency: CampaignConcurrency

    public init(
        database: any SQLDatabase, users: UserStore, segments: SegmentService, connectedContent: ConnectedContentComponents,
        deliverySettings: DeliverySettingsStore, clock: any BeckonClock, configuration: SendPipelineConfiguration = SendPipelineConfiguration(),
        logger: Logger
    ) {
        queue = SendQueue(database: database, clock: clock)
        self.users = users
        self.segments = segments
        self.connectedContent = connectedContent
        self.deliverySettings = deliverySettings
        campaignConcurrency = CampaignConcurrency(limit: configuration.concurrencyPerCampaign)
        self.clock = clock
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        let recovered = try await queue.recoverInFlight()
        if recovered > 0 { logger.info("requeued messages a stop left in flight", metadata: ["messages": "\(recovered)"]) }
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    var worked = false
                    do {
                        worked = try await self.tick()
                    } catch {
                        self.logger.error("send pipeline round failed", metadata: ["error": "\(error)"])
                    }
                    if !worked { try await Task.sleep(for: self.configuration.pollInterval) }
                }
            }
        } catch is CancellationError {
            return
        }
    }

    /// One round: start due campaigns, add a page of each pending dispatch to the queue, send one
    /// batch of due messages. Returns whether there was anything to do.
    @discardableResult
    public func tick() async throws -> Bool {
        let started = try await queue.startDueCampaigns()
        let expanded = try await expandDispatches()
        // Two batches in flight: while one waits on the network, the other uses the database.
        async let first = deliverBatch()
        async let second = deliverBatch()
        let sent = try await first + second
        return started + expanded + sent > 0
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
        do {
            definition = try CampaignDefinition.parse(dispatch.definition)
        } catch {
            try await recordActivity(dispatch.workspaceID, type: "dispatch_failure", campaignID: dispatch.campaignID, reason: error.description)
            try await queue.addMessages([], dispatch: dispatch, channel: "webhook", cursor: dispatch.cursor, finished: true, intervalMilliseconds: nil)
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
        var filter = definition.audience.combinedFilter
        let reachesControlGroup = dispatch.kind == "api_triggered" || dispatch.kind == "messages_send"
        if !reachesControlGroup, let percent = try await deliverySettings.settings(workspaceID: dispatch.workspaceID).globalControlPercent {
            let outside = SegmentFilter.randomBucket(NumberCondition(op: .gte, value: Double(percent * 100), upper: nil))
            filter = filter.map { .all([$0, outside]) } ?? outside
        }
        let page = try await segments.memberIDs(
            workspaceID: dispatch.workspaceID, filter: filter, among: among, after: dispatch.cursor, limit: configuration.expansionPageSize)
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
        let messages = page.map { userID -> SendQueue.NewMessage in
            let variant = VariantPicker.pick(campaignKey: campaignKey, userID: userID, variants: definition.variants, controlPercent: definition.controlPercent)
            var notBefore = dispatch.scheduledAt
            if let wall = wallClock {
                let zone = userZones[userID].flatMap(TimeZone.init(identifier:)) ?? workspaceZone
                notBefore = LocalTime.parse(wall, in: zone).map(BrazeTime.epochMilliseconds) ?? dispatch.scheduledAt
            }
            var properties = dispatch.triggerProperties.objectValue ?? [:]
            for (key, value) in recipientProperties[userID]?.objectValue ?? [:] { properties[key] = value }
            return SendQueue.NewMessage(
                userID: userID, variant: variant ?? "control", notBefore: notBefore,
                triggerProperties: properties.isEmpty ? nil : .object(properties), isControl: variant == nil,
                capped: definition.frequencyCapped)
        }
        try await queue.addMessages(
            messages, dispatch: dispatch, channel: "webhook", cursor: page.last ?? dispatch.cursor,
            finished: page.count < configuration.expansionPageSize,
            intervalMilliseconds: definition.rateLimitPerMinute.map { max(1, 60_000 / Int64($0)) })
    }

    // MARK: Delivery

    private func deliverBatch() async throws -> Int {
        let batch = try await queue.claim(limit: configuration.batchSize)
        guard !batch.isEmpty else { return 0 }
        let profiles = try await users.profiles(ids: Array(Set(batch.map(\.userID))))
        let definitions = try await prepareDispatches(Set(batch.map(\.dispatchID)))
        let results = try await withThrowingTaskGroup(of: (QueuedMessage, String?, MessageOutcome).self) { group in
            var results: [(message: QueuedMessage, externalID: String?, outcome: MessageOutcome)] = []
            var settled = 0
            var iterator = batch.makeIterator()
            func addNext() {
                guard let message = iterator.next() else { return }
                let profile = profiles[message.userID]
                let definition = definitions[message.dispatchID]
                group.addTask {
                    (message, profile?["external_id"]?.stringValue, await self.deliver(message, profile: profile, definition: definition))
                }
            }
            for _ in 0..<configuration.concurrency { addNext() }
            // Settled in small groups as they finish, so a crash repeats as few sent messages as possible.
            for try await result in group {
                results.append(result)
                addNext()
                if results.count - settled >= configuration.settleGroupSize {
                    try await queue.settle(Array(results[settled...]))
                    settled = results.count
                }
            }
            try await queue.settle(Array(results[settled...]))
            return results
        }
        var entries: [ActivityLogEntry] = []
        let now = BrazeTime.epochMilliseconds(clock.now())
        for (message, externalID, outcome) in results {
            let (type, reason, status): (String, String, Int?)
            switch outcome {
            case .delivered, .retry: continue
            case .aborted(let text): (type, reason, status) = ("abort", text, nil)
            case .skipped(let text): (type, reason, status) = ("skipped", text, nil)
            case .failed(let text, let code): (type, reason, status) = (text.hasPrefix("render error") ? "render_error" : "webhook_failure", text, code)
            }
            entries.append(ActivityLogEntry(
                workspaceID: message.workspaceID, time: now, type: type, campaignID: message.campaignID, variant: message.variant,
                externalID: externalID, channel: message.channel, status: status, reason: reason))
        }
        try await connectedContent.activityLog.record(entries)
        return batch.count
    }

    /// A dispatch ready to render: its definition and every variant's templates parsed once.
    struct PreparedDispatch: Sendable {
        struct Webhook: Sendable {
            let method: String
            let url: Template
            let headers: [(String, Template)]
            let body: Template
            let adTextField: String?
        }

        let definition: CampaignDefinition
        let kind: String
        let sendID: String?
        let webhooks: [String: Webhook]
        let workspaceZone: TimeZone
        let settings: DeliverySettings
    }

    private func prepareDispatches(_ ids: Set<String>) async throws -> [String: PreparedDispatch] {
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
        var prepared: [String: PreparedDispatch] = [:]
        for row in rows {
            guard let json = SendQueue.json(row[1]), let definition = try? CampaignDefinition.parse(json) else { continue }
            var webhooks: [String: PreparedDispatch.Webhook] = [:]
            for variant in definition.variants {
                guard let url = try? Template.parse(variant.webhook.url), let body = try? Template.parse(variant.webhook.body) else { continue }
                let headers = variant.webhook.headers.sorted { $0.key < $1.key }.compactMap { name, value in
                    (try? Template.parse(value)).map { (name, $0) }
                }
                webhooks[variant.name] = PreparedDispatch.Webhook(
                    method: variant.webhook.method, url: url, headers: headers, body: body, adTextField: variant.webhook.adTextField)
            }
            prepared[row[0].string ?? ""] = PreparedDispatch(
                definition: definition, kind: row[3].string ?? "", sendID: row[2].string, webhooks: webhooks,
                workspaceZone: TimeZone(identifier: row[5].string ?? "UTC") ?? TimeZone(identifier: "UTC")!,
                settings: try await deliverySettings.settings(workspaceID: row[4].int ?? 0))
        }
        return prepared
    }

    private func deliver(_ message: QueuedMessage, profile: JSONValue?, definition prepared: PreparedDispatch?) async -> MessageOutcome {
        guard let profile else { return .failed(reason: "the user no longer exists", status: nil) }
        guard let prepared, let webhook = prepared.webhooks[message.variant] ?? prepared.webhooks.values.first else {
            return .failed(reason: "the dispatch's definition cannot be read", status: nil)
        }
        let (definition, sendID) = (prepared.definition, prepared.sendID)
        let zone = profile["time_zone"]?.stringValue.flatMap(TimeZone.init(identifier:)) ?? prepared.workspaceZone
        if let held = await deliveryControl(message, profile: profile, prepared: prepared, zone: zone) { return held }
        var data: [String: JSONValue] = [
            "user": profile,
            "campaign": .object([
                "api_id": message.campaignID.map(JSONValue.string) ?? .null, "name": .string(definition.name),
                "dispatch_id": .string(message.dispatchID), "send_id": sendID.map(JSONValue.string) ?? .null,
                "message_api_id": .string(message.id), "variant_name": .string(message.variant),
            ]),
        ]
        if let properties = message.triggerProperties {
            data[prepared.kind == "action_based" ? "event_properties" : "api_trigger_properties"] = properties
        }
        var environment = RenderEnvironment()
        environment.now = clock.now()
        environment.fetcher = connectedContent.service.fetcher(for: ConnectedContentContext(
            workspaceID: message.workspaceID, campaignID: message.campaignID, variant: message.variant,
            externalID: profile["external_id"]?.stringValue, channel: message.channel))
        let url: String
        var headers: [(String, String)] = []
        let body: String
        do {
            let context = BrazeContext.make(from: LiquidValue(JSONValue.object(data)))
            url = try await webhook.url.render(context, environment: environment).trimmingCharacters(in: .whitespacesAndNewlines)
            for (name, value) in webhook.headers { headers.append((name, try await value.render(context, environment: environment))) }
            body = try Self.advertise(
                try await webhook.body.render(context, environment: environment), definition: definition, field: webhook.adTextField,
                settings: prepared.settings)
        } catch let aborted as MessageAborted {
            return .aborted(reason: aborted.reason ?? "{% abort_message %} called")
        } catch {
            return .failed(reason: "render error: \(error)", status: nil)
        }
        let contentType = headers.first { $0.0.caseInsensitiveCompare("Content-Type") == .orderedSame }?.1
        let looksJSON = body.first.map { $0 == "{" || $0 == "[" } ?? false
        if contentType?.lowercased().contains("json") == true || (contentType == nil && looksJSON) {
            do {
                _ = try JSONValue.parse(Array(body.utf8))
            } catch {
                return .failed(reason: "render error: the body is not valid JSON after rendering: \(error)", status: nil)
            }
            if contentType == nil { headers.append(("Content-Type", "application/json")) }
        } else if contentType == nil, !body.isEmpty {
            headers.append(("Content-Type", "text/plain; charset=utf-8"))
        }
        headers.append(("Idempotency-Key", message.id))
        let slot = message.campaignID ?? message.dispatchID
        await campaignConcurrency.acquire(slot)
        defer { campaignConcurrency.release(slot) }
        do {
            let response = try await connectedContent.service.deliver(
                method: webhook.method, url: url, headers: headers, body: webhook.method == "GET" ? nil : body,
                workspaceID: message.workspaceID, timeoutMilliseconds: configuration.webhookTimeoutMilliseconds)
            switch response.statusCode {
            case 200..<300:
                return .delivered(status: response.statusCode)
            case 500...:
                return retryOrFail(message, reason: "HTTP \(response.statusCode) from \(ConnectedContentService.redact(url))", status: response.statusCode)
            default:
                let excerpt = String(decoding: response.body.prefix(300), as: UTF8.self)
                return .failed(reason: "HTTP \(response.statusCode) from \(ConnectedContentService.redact(url)): \(excerpt)", status: response.statusCode)
            }
        } catch {
            switch error.kind {
            case .timeout, .network: return retryOrFail(message, reason: error.reason, status: nil)
            default: return .failed(reason: error.reason, status: error.status)
            }
        }
    }

    /// Quiet hours, the advertising night rule and frequency caps: `nil` when the message may go now,
    /// else a later time (`retry`) or a skip.
    private func deliveryControl(_ message: QueuedMessage, profile: JSONValue, prepared: PreparedDispatch, zone: TimeZone) async -> MessageOutcome? {
        let now = clock.now()
        let settings = prepared.settings
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let parts = calendar.dateComponents([.hour, .minute], from: now)
        let minuteOfDay = (parts.hour ?? 0) * 60 + (parts.minute ?? 0)
        func inside(_ start: Int, _ end: Int) -> Bool { start < end ? (minuteOfDay >= start && minuteOfDay < end) : (minuteOfDay >= start || minuteOfDay < end) }
        func next(_ minutes: Int) -> Int64 {
            let today = calendar.date(bySettingHour: minutes / 60, minute: minutes % 60, second: 0, of: now) ?? now
            let target = today > now ? today : (calendar.date(byAdding: .day, value: 1, to: today) ?? today)
            return BrazeTime.epochMilliseconds(target)
        }
        if let quiet = settings.quietHours, let start = DeliverySettings.minutes(quiet.start), let end = DeliverySettings.minutes(quiet.end),
            inside(start, end)
        {
            if quiet.action == "skip" { return .skipped(reason: "quiet hours \(quiet.start)–\(quiet.end) in \(zone.identifier)") }
            return .retry(at: next(end), reason: "held for quiet hours until \(quiet.end) \(zone.identifier)")
        }
        if prepared.definition.advertising, inside(21 * 60, 8 * 60) {
            let group = settings.advertising?.nightConsentGroup
            let consented = group != nil && (profile["subscription_groups"]?.arrayValue ?? []).contains {
                $0["subscription_group_id"]?.stringValue == group && $0["subscription_state"]?.stringValue == "subscribed"
            }
            if !consented {
                return .retry(at: next(8 * 60), reason: "advertising is not sent 21:00–08:00 without night-time consent; held until 08:00 \(zone.identifier)")
            }
        }
        if prepared.definition.frequencyCapped {
            for cap in settings.frequencyCaps where cap.channel == "any" || cap.channel == message.channel {
                let since = BrazeTime.epochMilliseconds(now) - Int64(cap.days) * 86_400_000
                let count = (try? await queue.deliveredCount(userID: message.userID, since: since, channel: cap.channel == "any" ? nil : cap.channel)) ?? 0
                if count >= cap.max {
                    return .skipped(reason: "frequency cap: at most \(cap.max) \(cap.channel == "any" ? "messages" : cap.channel + " messages") per \(cap.days) days")
                }
            }
        }
        return nil
    }

    /// Advertising messages: "(광고) " before the text field and the opt-out line after it.
    static func advertise(_ body: String, definition: CampaignDefinition, field: String?, settings: DeliverySettings) throws -> String {
        guard definition.advertising, let field else { return body }
        guard let optOut = settings.advertising?.optOutText else {
            throw AdvertisingError("advertising campaigns need delivery_settings.advertising.opt_out_text")
        }
        guard case .object(var object) = try JSONValue.parse(Array(body.utf8)) else {
            throw AdvertisingError("the body of an advertising message must be a JSON object with the field '\(field)'")
        }
        func decorate(_ members: inout [String: JSONValue], path: ArraySlice<Substring>) throws {
            let key = String(path.first ?? "")
            if path.count == 1 {
                guard let text = members[key]?.stringValue else { throw AdvertisingError("the body has no text field '\(field)'") }
                members[key] = .string("(광고) " + text + "\n" + optOut)
                return
            }
            guard case .object(var child)? = members[key] else { throw AdvertisingError("the body has no text field '\(field)'") }
            try decorate(&child, path: path.dropFirst())
            members[key] = .object(child)
        }
        try decorate(&object, path: field.split(separator: ".")[...])
        return JSONValue.object(object).serialized()
    }

    private func retryOrFail(_ message: QueuedMessage, reason: String, status: Int?) -> MessageOutcome {
        guard message.attempts < configuration.maxAttempts else {
            return .failed(reason: "\(reason) (gave up after \(message.attempts) attempts)", status: status)
        }
        let delay = configuration.retryBaseMilliseconds << Int64(message.attempts - 1)
        return .retry(at: BrazeTime.epochMilliseconds(clock.now()) + delay, reason: reason)
    }

    private func recordActivity(_ workspaceID: Int64, type: String, campaignID: String?, reason: String) async throws {
        try await connectedContent.activityLog.record([ActivityLogEntry(
            workspaceID: workspaceID, time: BrazeTime.epochMilliseconds(clock.now()), type: type, campaignID: campaignID, reason: reason)])
    }
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

extension LiquidValue {
    /// The same document as a Liquid value (no text round trip).
    init(_ json: JSONValue) {
        switch json {
        case .null: self = .nil
        case .bool(let flag): self = .bool(flag)
        case .int(let number): self = .int(Int(number))
        case .double(let number): self = .double(number)
        case .string(let text): self = .string(text)
        case .array(let items): self = .array(items.map(LiquidValue.init))
        case .object(let members):
            var object = LiquidObject()
            for key in members.keys.sorted() { object[key] = LiquidValue(members[key] ?? .null) }
            self = .object(object)
        }
    }
}

/// An advertising message that cannot carry the required prefix and footer.
struct AdvertisingError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
