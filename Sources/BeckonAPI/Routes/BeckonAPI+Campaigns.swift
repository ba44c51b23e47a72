import BeckonChannels
import BeckonCore
import BeckonMessaging
import BeckonStorage
import Foundation
import HTTPTypes
import Hummingbird

extension BeckonAPI {
    /// Beckon's campaign endpoints (`/beckon/v1/campaigns…`) and Braze's `/campaigns/list`,
    /// `/campaigns/details` and `/campaigns/trigger/send`.
    func addCampaignRoutes(to router: Router<BeckonRequestContext>) {
        let read = APIPermission.beckonCampaignsRead
        let write = APIPermission.beckonCampaignsWrite
        router.post("/beckon/v1/campaigns") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: write)
            let campaign = try await withCampaignErrors { try await campaigns.store.create(workspaceID: key.workspaceID, body: body) }
            campaigns.triggers.invalidate(workspaceID: key.workspaceID)
            return JSONResponse.make(Self.campaignJSON(campaign), status: .created)
        }
        router.get("/beckon/v1/campaigns") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: read)
            let page = try Self.intParameter(request, "page", default: 0, range: 0...1_000_000)
            let list = try await campaigns.store.list(workspaceID: key.workspaceID, page: page, includeArchived: true, newestFirst: false)
            return JSONResponse.make(.object(["message": .string("success"), "campaigns": .array(list.map(Self.campaignJSON))]))
        }
        router.get("/beckon/v1/campaigns/{id}") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: read)
            let campaign = try await withCampaignErrors {
                try await campaigns.store.campaign(workspaceID: key.workspaceID, id: try context.parameters.require("id"))
            }
            let counts = try await campaigns.queue.messageCounts(campaignID: campaign.id)
            var json = Self.campaignJSON(campaign).objectValue ?? [:]
            json["messages_by_state"] = .object(counts.mapValues { .int(Int64($0)) })
            let engagement = try await campaigns.queue.engagementCounts(campaignID: campaign.id)
            json["engagement"] = .object(engagement.mapValues { .int(Int64($0)) })
            return JSONResponse.make(.object(json))
        }
        router.put("/beckon/v1/campaigns/{id}") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: write)
            let campaign = try await withCampaignErrors {
                try await campaigns.store.update(workspaceID: key.workspaceID, id: try context.parameters.require("id"), body: body)
            }
            campaigns.triggers.invalidate(workspaceID: key.workspaceID)
            return JSONResponse.make(Self.campaignJSON(campaign))
        }
        router.delete("/beckon/v1/campaigns/{id}") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: write)
            try await withCampaignErrors { try await campaigns.store.delete(workspaceID: key.workspaceID, id: try context.parameters.require("id")) }
            return JSONResponse.make(.object(["message": .string("success")]))
        }
        for action in ["launch", "pause", "archive"] {
            router.post("/beckon/v1/campaigns/{id}/\(action)") { request, context -> Response in
                let key = try await authenticator.authorize(request, context: context, permission: write)
                let id = try context.parameters.require("id")
                let campaign = try await withCampaignErrors {
                    switch action {
                    case "launch": return try await campaigns.store.launch(workspaceID: key.workspaceID, id: id)
                    case "pause": return try await campaigns.store.pause(workspaceID: key.workspaceID, id: id)
                    default: return try await campaigns.store.archive(workspaceID: key.workspaceID, id: id)
                    }
                }
                campaigns.triggers.invalidate(workspaceID: key.workspaceID)
                return JSONResponse.make(Self.campaignJSON(campaign))
            }
        }

        router.get("/beckon/v1/delivery_settings") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: write)
            return JSONResponse.make(Self.deliverySettingsJSON(try await campaigns.deliverySettings.settings(workspaceID: key.workspaceID)))
        }
        router.put("/beckon/v1/delivery_settings") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: write)
            let settings: DeliverySettings
            do {
                settings = try DeliverySettings.parse(body, channels: campaigns.channels.names)
            } catch let error as CampaignDefinitionError {
                throw APIError.badRequest(error.problems)
            }
            try await campaigns.deliverySettings.save(workspaceID: key.workspaceID, settings: settings)
            return JSONResponse.make(Self.deliverySettingsJSON(settings))
        }
        router.get("/campaigns/list") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: APIPermission.campaignsList)
            let page = try Self.intParameter(request, "page", default: 0, range: 0...1_000_000)
            let parameters = request.uri.queryParameters
            let direction = parameters["sort_direction"].map(String.init) ?? "asc"
            guard direction == "asc" || direction == "desc" else { throw APIError.badRequest(["'sort_direction' must be 'asc' or 'desc'"]) }
            let includeArchived = parameters["include_archived"].map { $0 == "true" } ?? false
            let editedAfter = try Self.timeParameter(request, "last_edit.time[gt]").map(BrazeTime.epochMilliseconds)
            let list = try await campaigns.store.list(
                workspaceID: key.workspaceID, page: page, includeArchived: includeArchived, newestFirst: direction == "desc",
                editedAfter: editedAfter)
            return JSONResponse.make(.object([
                "message": .string("success"),
                "campaigns": .array(list.map { campaign in
                    .object([
                        "id": .string(campaign.id), "last_edited": .string(BrazeTime.format(epochMilliseconds: campaign.updatedAt)),
                        "name": .string(campaign.name), "is_api_campaign": .bool(campaign.deliveryType == "api_triggered"),
                        "tags": .array(campaign.tags.map(JSONValue.string)),
                    ])
                }),
            ]))
        }
        router.get("/campaigns/data_series") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: APIPermission.campaignsDataSeries)
            guard let id = request.uri.queryParameters["campaign_id"].map(String.init), !id.isEmpty else {
                throw APIError.badRequest(["'campaign_id' is required"])
            }
            guard request.uri.queryParameters["length"] != nil else {
                throw APIError.badRequest(["'length' is required: a whole number of days from 1 to 100"])
            }
            let length = try Self.intParameter(request, "length", default: 1, range: 1...100)
            let ending = try Self.timeParameter(request, "ending_at") ?? clock.now()
            let campaign = try await withCampaignErrors { try await campaigns.store.campaign(workspaceID: key.workspaceID, id: id) }
            let zone = TimeZone(identifier: try await workspaces.workspace(id: key.workspaceID)?.timeZone ?? "UTC") ?? TimeZone(identifier: "UTC")!
            let offset = Int64(zone.secondsFromGMT(for: ending)) * 1_000
            let endMillis = BrazeTime.epochMilliseconds(ending)
            let lastDay = (endMillis + offset) / 86_400_000
            let firstDay = lastDay - Int64(length) + 1
            let stats = try await campaigns.queue.dailyStats(
                campaignID: campaign.id, start: firstDay * 86_400_000 - offset, end: endMillis, offsetMilliseconds: offset)
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "UTC")
            formatter.dateFormat = "yyyy-MM-dd"
            let data: [JSONValue] = (firstDay...lastDay).map { day in
                let day = stats[day] ?? SendQueue.DailyStats(day: day)
                var point: [String: JSONValue] = [
                    "time": .string(formatter.string(from: Date(timeIntervalSince1970: Double(day.day) * 86_400))),
                    "unique_recipients": .int(Int64(day.uniqueRecipients)), "revenue": .double(0),
                ]
                for (index, label) in ["A", "B", "C", "D"].enumerated() {
                    let suffix = index == 0 ? "" : String(index)
                    point["conversions\(suffix)"] = .int(Int64(day.conversions[label] ?? 0))
                    point["conversions\(suffix)_by_send_time"] = .int(Int64(day.conversionsBySendTime[label] ?? 0))
                }
                point["messages"] = Self.dataSeriesMessages(day.messages, campaignID: campaign.id)
                return .object(point)
            }
            return JSONResponse.make(.object(["message": .string("success"), "data": .array(data)]))
        }
        router.get("/campaigns/details") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: APIPermission.campaignsDetails)
            guard let id = request.uri.queryParameters["campaign_id"].map(String.init), !id.isEmpty else {
                throw APIError.badRequest(["'campaign_id' is required"])
            }
            let campaign = try await withCampaignErrors { try await campaigns.store.campaign(workspaceID: key.workspaceID, id: id) }
            return JSONResponse.make(try Self.brazeDetails(campaign, channels: campaigns.channels))
        }
        router.post("/campaigns/trigger/send") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: APIPermission.campaignsTriggerSend)
            let idempotency = try Self.idempotencyRequest(request, workspaceID: key.workspaceID, endpoint: "/campaigns/trigger/send", body: body)
            if let replay = try await replay(idempotency) { return replay }
            return try await enqueueTrigger(body, workspaceID: key.workspaceID, at: clock.now(), idempotency: idempotency) { dispatchID in
                .object(["dispatch_id": .string(dispatchID), "message": .string("success")])
            }
        }
        router.post("/campaigns/trigger/schedule/create") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: APIPermission.campaignsTriggerScheduleCreate)
            let idempotency = try Self.idempotencyRequest(request, workspaceID: key.workspaceID, endpoint: "/campaigns/trigger/schedule/create", body: body)
            if let replay = try await replay(idempotency) { return replay }
            let at = try Self.scheduleTime(body, now: clock.now())
            return try await enqueueTrigger(body, workspaceID: key.workspaceID, at: at, idempotency: idempotency) { dispatchID in
                .object(["dispatch_id": .string(dispatchID), "schedule_id": .string(dispatchID), "message": .string("success")])
            }
        }
        router.post("/campaigns/trigger/schedule/update") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: APIPermission.campaignsTriggerScheduleUpdate)
            guard let scheduleID = body["schedule_id"]?.stringValue, !scheduleID.isEmpty else {
                throw APIError.badRequest(["schedule_id: is required"])
            }
            let at = try Self.scheduleTime(body, now: clock.now())
            if let properties = body["trigger_properties"], properties.objectValue == nil {
                throw APIError.badRequest(["trigger_properties: must be an object"])
            }
            guard try await campaigns.queue.reschedule(
                dispatchID: scheduleID, workspaceID: key.workspaceID, scheduledAt: BrazeTime.epochMilliseconds(at), triggerProperties: body["trigger_properties"])
            else {
                throw APIError(.notFound, "Not Found", errors: ["schedule_id: no schedule '\(scheduleID)' that has not started sending"])
            }
            return JSONResponse.make(.object(["message": .string("success")]))
        }
        router.post("/campaigns/trigger/schedule/delete") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: APIPermission.campaignsTriggerScheduleDelete)
            guard let scheduleID = body["schedule_id"]?.stringValue, !scheduleID.isEmpty else {
                throw APIError.badRequest(["schedule_id: is required"])
            }
            guard try await campaigns.queue.cancel(dispatchID: scheduleID, workspaceID: key.workspaceID) else {
                throw APIError(.notFound, "Not Found", errors: ["schedule_id: no schedule '\(scheduleID)' that can still be cancelled"])
            }
            return JSONResponse.make(.object(["message": .string("success")]))
        }
        router.post("/messages/send") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: APIPermission.messagesSend)
            let idempotency = try Self.idempotencyRequest(request, workspaceID: key.workspaceID, endpoint: "/messages/send", body: body)
            if let replay = try await replay(idempotency) { return replay }
            let (definition, recipients, campaignID, sendID) = try await Self.messagesSend(
                body, workspaceID: key.workspaceID, now: clock.now(), campaigns: campaigns.store, channels: campaigns.channels)
            let dispatch = NewDispatch(
                id: DispatchID.random(), workspaceID: key.workspaceID, campaignID: campaignID, kind: .messagesSend, definition: definition,
                triggerProperties: .object([:]), recipients: recipients, scheduledAt: BrazeTime.epochMilliseconds(clock.now()), sendID: sendID)
            return try await enqueue(dispatch, idempotency: idempotency, answer: .object(["dispatch_id": .string(dispatch.id), "message": .string("success")]))
        }
        router.post("/beckon/v1/campaigns/{id}/preview") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: read)
            let campaign = try await withCampaignErrors {
                try await campaigns.store.campaign(workspaceID: key.workspaceID, id: try context.parameters.require("id"))
            }
            return try await previewCampaign(campaign, body: body)
        }
    }

    /// The `Idempotency-Key` of a request that starts a send, validated.
    static func idempotencyRequest(_ request: Request, workspaceID: Int64, endpoint: String, body: JSONValue) throws -> IdempotencyKeys.Request? {
        guard let key = request.headers[.idempotencyKey] else { return nil }
        if let problem = IdempotencyKeys.validate(key) { throw APIError.badRequest([problem]) }
        return IdempotencyKeys.Request(workspaceID: workspaceID, endpoint: endpoint, key: key, body: body)
    }

    /// The first answer for a retried key, or a 422 when the key came with another body.
    func replay(_ idempotency: IdempotencyKeys.Request?) async throws -> Response? {
        guard let idempotency else { return nil }
        let now = BrazeTime.epochMilliseconds(clock.now())
        let found = try await database.read { connection in try IdempotencyKeys.lookup(idempotency, connection: connection, now: now) }
        guard let found else { return nil }
        return try Self.idempotentResponse(found, key: idempotency.key)
    }

    static func idempotentResponse(_ claim: IdempotencyKeys.Claim, key: String) throws -> Response? {
        switch claim {
        case .claimed:
            return nil
        case .replay(let status, let response):
            var reply = JSONResponse.make((try? JSONValue.parse(Array(response.utf8))) ?? .object([:]), status: HTTPResponse.Status(code: status))
            reply.headers[.idempotentReplayed] = "true"
            return reply
        case .conflict:
            throw APIError(
                .unprocessableContent, "Unprocessable Entity",
                errors: ["Idempotency-Key: '\(key)' was already used within 24 hours with a different request body"])
        }
    }

    /// A request whose key was claimed by an earlier one: its transaction rolls back.
    struct IdempotentAnswer: Error {
        let claim: IdempotencyKeys.Claim
    }

    /// Records `dispatch` and, with a key, the key and its answer in the same transaction: of
    /// concurrent requests with one key, one makes the dispatch and the others answer as it did.
    func enqueue(_ dispatch: NewDispatch, idempotency: IdempotencyKeys.Request?, answer: JSONValue) async throws -> Response {
        let now = BrazeTime.epochMilliseconds(clock.now())
        let stored = answer.serialized()
        let claim = try await database.write { connection -> IdempotencyKeys.Claim in
            if let idempotency {
                let claim = try IdempotencyKeys.claim(idempotency, status: 201, response: stored, connection: connection, now: now)
                guard claim == .claimed else { return claim }
            }
            try SendQueue.insertDispatch(dispatch, connection: connection, now: now)
            return .claimed
        }
        if let idempotency, let replayed = try Self.idempotentResponse(claim, key: idempotency.key) { return replayed }
        return JSONResponse.make(answer, status: .created)
    }

    /// `POST /beckon/v1/campaigns/{id}/preview` `{"external_id", "variant"?, "trigger_properties"?}`.
    func previewCampaign(_ campaign: Campaign, body: JSONValue) async throws -> Response {
        guard let object = body.objectValue else { throw APIError.badRequest(["the body must be a JSON object"]) }
        var problems: [String] = []
        for field in object.keys.sorted() where !["external_id", "variant", "trigger_properties"].contains(field) {
            problems.append("\(field): unknown field (external_id, variant, trigger_properties)")
        }
        let externalID = object["external_id"]?.stringValue ?? ""
        if externalID.isEmpty { problems.append("external_id: is required") }
        if let variant = object["variant"], !variant.isNull, variant.stringValue == nil { problems.append("variant: must be a variant name") }
        if let properties = object["trigger_properties"], !properties.isNull, properties.objectValue == nil {
            problems.append("trigger_properties: must be an object")
        }
        guard problems.isEmpty else { throw APIError.badRequest(problems) }
        guard let userID = try await users.userID(workspaceID: campaign.workspaceID, identifier: .externalID(externalID)) else {
            throw APIError(.notFound, "Not Found", errors: ["external_id: no user with external_id '\(externalID)'"])
        }
        let triggerProperties = object["trigger_properties"].flatMap { $0.isNull ? nil : $0 }
        let preview: CampaignPreview
        do {
            preview = try await campaigns.pipeline.preview(
                campaign: campaign, userID: userID, variantName: object["variant"]?.stringValue, triggerProperties: triggerProperties)
        } catch let error as CampaignPreviewError {
            var detail: [String: JSONValue] = ["type": .string(error.line == nil ? "render" : "liquid"), "message": .string(error.message)]
            if let channel = error.channel { detail["channel"] = .string(channel) }
            if let line = error.line { detail["line"] = .int(Int64(line)) }
            if let column = error.column { detail["column"] = .int(Int64(column)) }
            throw APIError(.unprocessableContent, "Unprocessable Entity", structuredErrors: [.object(detail)])
        }
        if let reason = preview.abortReason {
            return JSONResponse.make(.object(["variant": .string(preview.variant), "aborted": .bool(true), "reason": .string(reason)]))
        }
        return JSONResponse.make(.object([
            "variant": .string(preview.variant), "aborted": .bool(false), "messages": .object(preview.messages),
        ]))
    }

    /// Validates a trigger body against its campaign, applies the recipients' attributes (with
    /// their trigger facts in the outbox), then records the dispatch to send at `at` (with the
    /// idempotency key, when given, in the same transaction).
    func enqueueTrigger(
        _ body: JSONValue, workspaceID: Int64, at: Date, idempotency: IdempotencyKeys.Request?, answer: (String) -> JSONValue
    ) async throws -> Response {
        let trigger = try Self.triggerRequest(body)
        let campaign = try await withCampaignErrors { try await campaigns.store.campaign(workspaceID: workspaceID, id: trigger.campaignID) }
        guard campaign.deliveryType == DispatchKind.apiTriggered.rawValue else {
            throw APIError.badRequest(["campaign_id: campaign \(campaign.id) is not an API-triggered campaign"])
        }
        guard campaign.state == .active else {
            throw APIError.badRequest(["campaign_id: campaign \(campaign.id) is \(campaign.state.rawValue); launch it first"])
        }
        var definition = campaign.definition
        if let audience = trigger.audience, var object = definition.objectValue {
            var campaignAudience = object["audience"]?.objectValue ?? [:]
            campaignAudience["filter"] = campaignAudience["filter"].map { .object(["all": .array([$0, audience])]) } ?? audience
            object["audience"] = .object(campaignAudience)
            definition = .object(object)
        }
        let dispatch = NewDispatch(
            id: DispatchID.random(), workspaceID: workspaceID, campaignID: campaign.id, kind: .apiTriggered, definition: definition,
            triggerProperties: trigger.properties, recipients: trigger.recipients, scheduledAt: BrazeTime.epochMilliseconds(at),
            sendID: trigger.sendID)
        if !trigger.userUpdates.isEmpty {
            let request: TrackRequest
            do {
                request = try TrackRequest.parse(.object(["attributes": .array(trigger.userUpdates)]), now: clock.now())
            } catch let error as RequestError {
                throw APIError.from(error)
            }
            guard request.errors.isEmpty else {
                throw APIError.badRequest(request.errors.map { "recipients[\($0.index)].attributes: \($0.type)" })
            }
            // The recipients' attributes, the key and the dispatch commit together: a concurrent
            // request with the same key applies nothing and answers as the first did.
            let now = BrazeTime.epochMilliseconds(clock.now())
            let answer = answer(dispatch.id)
            let stored = answer.serialized()
            do {
                _ = try await users.track(
                    workspaceID: workspaceID, request: request, triggers: try await campaigns.triggers.interest(workspaceID: workspaceID)
                ) { connection in
                    if let idempotency {
                        let claim = try IdempotencyKeys.claim(idempotency, status: 201, response: stored, connection: connection, now: now)
                        guard claim == .claimed else { throw IdempotentAnswer(claim: claim) }
                    }
                    try SendQueue.insertDispatch(dispatch, connection: connection, now: now)
                }
            } catch let earlier as IdempotentAnswer {
                if let idempotency, let replayed = try Self.idempotentResponse(earlier.claim, key: idempotency.key) { return replayed }
            }
            return JSONResponse.make(answer, status: .created)
        }
        return try await enqueue(dispatch, idempotency: idempotency, answer: answer(dispatch.id))
    }

    /// `schedule.time` (UTC, in the future); local-time trigger schedules are refused.
    static func scheduleTime(_ body: JSONValue, now: Date) throws -> Date {
        guard let schedule = body["schedule"]?.objectValue else {
            throw APIError.badRequest(["schedule: is required: {\"time\": ISO 8601}"])
        }
        if schedule["in_local_time"] == .bool(true) || schedule["at_optimal_time"] == .bool(true) {
            throw APIError.badRequest(["schedule: in_local_time and at_optimal_time are not supported yet for trigger schedules"])
        }
        guard let text = schedule["time"]?.stringValue, let time = BrazeTime.parse(text) else {
            throw APIError.badRequest(["schedule.time: is required: an ISO 8601 time"])
        }
        guard time > now.addingTimeInterval(-60) else { throw APIError.badRequest(["schedule.time: \(text) is in the past"]) }
        return time
    }

    /// `/messages/send`: ad-hoc webhook and push messages (Braze's `webhook`, `apple_push`,
    /// `android_push`, `web_push` objects) as a one-off definition, its recipients, and the
    /// optional campaign and send id it reports under.
    static func messagesSend(_ body: JSONValue, workspaceID: Int64, now: Date, campaigns: CampaignStore, channels: ChannelCatalog) async throws
        -> (definition: JSONValue, recipients: JSONValue?, campaignID: String?, sendID: String?)
    {
        guard let object = body.objectValue else { throw APIError.badRequest(["the body must be a JSON object"]) }
        var problems: [String] = []
        var recipients: [JSONValue] = []
        if let ids = object["external_user_ids"] {
            if let list = ids.arrayValue, list.count <= 50, list.allSatisfy({ !($0.stringValue ?? "").isEmpty }) {
                recipients += list.map { .object(["identifier": .object(["external_id": $0])]) }
            } else {
                problems.append("external_user_ids: must be an array of at most 50 non-empty strings")
            }
        }
        if let aliases = object["user_aliases"] {
            if let list = aliases.arrayValue, list.count <= 50, list.allSatisfy({ alias in
                if case .success = UserAlias.parse(alias, field: "user_aliases") { return true }
                return false
            }) {
                recipients += list.map { .object(["identifier": .object(["user_alias": $0])]) }
            } else {
                problems.append("user_aliases: must be an array of at most 50 {\"alias_name\", \"alias_label\"} objects")
            }
        }
        var audience: [String: JSONValue] = [:]
        if let segmentID = object["segment_id"], !segmentID.isNull {
            if let text = segmentID.stringValue, !text.isEmpty { audience["segment_ids"] = .array([.string(text)]) } else { problems.append("segment_id: must be a segment id") }
        }
        if let filter = object["audience"], !filter.isNull { audience["filter"] = filter }
        let broadcast = object["broadcast"] == .bool(true)
        if recipients.isEmpty, audience.isEmpty { problems.append("give at least one of external_user_ids, user_aliases, segment_id or audience") }
        if recipients.isEmpty, !audience.isEmpty, !broadcast { problems.append("broadcast: must be true to send to a segment or audience without user ids") }
        if !recipients.isEmpty, broadcast { problems.append("broadcast: cannot be true when external_user_ids or user_aliases are given") }
        if let state = object["recipient_subscription_state"], !["opted_in", "subscribed", "all"].contains(state.stringValue ?? "") {
            problems.append("recipient_subscription_state: must be 'opted_in', 'subscribed' or 'all'")
        }
        var messages: [String: JSONValue] = [:]
        if let given = object["messages"]?.objectValue, !given.isEmpty {
            for channel in given.keys.sorted() where !["webhook", "sms"].contains(channel) && !BrazePushObjects.isPushKey(channel) {
                problems.append("messages.\(channel): not available through /messages/send yet (available: webhook, sms, apple_push, android_push, web_push)")
            }
            if let sms = given["sms"] { messages["sms"] = Self.brazeSMS(sms, problems: &problems) }
            if let webhook = given["webhook"] {
                if let fields = webhook.objectValue {
                    messages["webhook"] = .object([
                        "url": fields["url"] ?? .null, "method": fields["request_method"] ?? .string("POST"),
                        "headers": fields["request_headers"] ?? .object([:]), "body": fields["body"] ?? .string(""),
                    ])
                } else {
                    problems.append("messages.webhook: must be an object {\"url\", \"request_method\", \"request_headers\", \"body\"}")
                }
            }
            if let push = BrazePushObjects.pushMessage(given, now: now, problems: &problems) { messages["push"] = push }
            if messages.isEmpty, given["webhook"] == nil, given["sms"] == nil, !given.keys.contains(where: BrazePushObjects.isPushKey) {
                problems.append("messages: give at least one of webhook, sms, apple_push, android_push, web_push")
            }
        } else {
            problems.append("messages: is required: {\"webhook\": {…}, \"apple_push\": {…}, \"android_push\": {…}, \"web_push\": {…}}")
        }
        var campaignID: String?
        if let value = object["campaign_id"], !value.isNull {
            guard let id = value.stringValue else { throw APIError.badRequest(problems + ["campaign_id: must be a string"]) }
            do {
                let campaign = try await campaigns.campaign(workspaceID: workspaceID, id: id)
                if campaign.state != .active { problems.append("campaign_id: campaign \(id) is \(campaign.state.rawValue), not active") }
                campaignID = id
            } catch {
                problems.append("campaign_id: no campaign with id '\(id)'")
            }
        }
        let definition = JSONValue.object([
            "name": .string("messages/send"), "delivery": .object(["type": .string("api_triggered")]), "audience": .object(audience),
            "messages": .object(messages),
            "frequency_capped": .bool(object["override_frequency_capping"] != .bool(true)),
        ])
        if problems.isEmpty, !messages.isEmpty {
            do {
                _ = try CampaignDefinition.parse(definition, channels: channels)
            } catch {
                problems += error.problems
            }
        }
        guard problems.isEmpty else { throw APIError.badRequest(problems) }
        return (definition, recipients.isEmpty ? nil : .array(recipients), campaignID, object["send_id"]?.stringValue)
    }

    /// The `messages` object of one `/campaigns/data_series` day: Braze's message-type keys
    /// (`webhook`, `ios_push`, `android_push`, `web_push`), one row per variant, each with its stat set.
    static func dataSeriesMessages(_ messages: [SendQueue.MessageKey: SendQueue.MessageCounts], campaignID: String) -> JSONValue {
        var types: [String: [JSONValue]] = [:]
        for (key, counts) in messages.sorted(by: { $0.key < $1.key }) {
            var row: [String: JSONValue] = [
                "variation_api_id": .string("\(campaignID)_\(key.variant)"), "variation_name": .string(key.variant), "sent": .int(Int64(counts.sent)),
            ]
            let type: String
            if key.channel == "push", let platform = key.platform {
                type = platform == "ios" ? "ios_push" : "\(platform)_push"
                row["direct_opens"] = .int(Int64(counts.opens))
                row["total_opens"] = .int(Int64(counts.opens))
                row["bounces"] = .int(Int64(counts.bounces))
                row["body_clicks"] = .int(0)
            } else {
                type = key.channel
                row["errors"] = .int(Int64(counts.errors))
            }
            types[type, default: []].append(.object(row))
        }
        return .object(types.mapValues(JSONValue.array))
    }

    /// Braze's `sms` messaging object (`subscription_group_id`, `body`, `app_id` required) as Beckon's
    /// `messages.sms`; MMS `media_items`, link shortening and click tracking are refused, not dropped.
    static func brazeSMS(_ value: JSONValue, problems: inout [String]) -> JSONValue {
        guard let fields = value.objectValue else {
            problems.append("messages.sms: must be an object {\"subscription_group_id\", \"body\", \"app_id\"}")
            return .null
        }
        let known = ["subscription_group_id", "body", "app_id", "message_variation_id", "media_items", "link_shortening_enabled", "user_click_tracking_enabled"]
        for key in fields.keys.sorted() where !known.contains(key) { problems.append("messages.sms.\(key): unknown field") }
        for key in ["subscription_group_id", "body", "app_id"] where fields[key]?.stringValue?.isEmpty ?? true {
            problems.append("messages.sms.\(key): is required and must be a string")
        }
        if fields["media_items"] != nil { problems.append("messages.sms.media_items: not supported yet (MMS through /messages/send)") }
        for key in ["link_shortening_enabled", "user_click_tracking_enabled"] where fields[key] == .bool(true) {
            problems.append("messages.sms.\(key): not supported yet; Beckon sends links as written")
        }
        return .object(["body": fields["body"] ?? .null, "subscription_group_id": fields["subscription_group_id"] ?? .null])
    }

    /// A validated `/campaigns/trigger/send` body.
    struct TriggerRequest {
        let campaignID: String
        let sendID: String?
        let properties: JSONValue
        let audience: JSONValue?
        /// `nil` for a broadcast.
        let recipients: JSONValue?
        /// `/users/track` attribute objects to apply before the send (recipients' `attributes`).
        let userUpdates: [JSONValue]
    }

    static func triggerRequest(_ body: JSONValue) throws -> TriggerRequest {
        guard let object = body.objectValue else { throw APIError.badRequest(["the body must be a JSON object"]) }
        var problems: [String] = []
        let campaignID = object["campaign_id"]?.stringValue ?? ""
        if campaignID.isEmpty { problems.append("campaign_id: is required") }
        var sendID: String?
        if let value = object["send_id"], !value.isNull {
            if let text = value.stringValue, (1...64).contains(text.count) { sendID = text } else { problems.append("send_id: must be a string of 1 to 64 characters") }
        }
        let properties = object["trigger_properties"] ?? .object([:])
        if properties.objectValue == nil { problems.append("trigger_properties: must be an object") }
        if properties.serialized().utf8.count > 50 * 1024 { problems.append("trigger_properties: must be at most 50 KB") }
        let broadcast = object["broadcast"] ?? .bool(false)
        if broadcast != .bool(true), broadcast != .bool(false) { problems.append("broadcast: must be a boolean") }
        var audience: JSONValue?
        if let value = object["audience"], !value.isNull {
            do {
                _ = try SegmentFilter.parse(value, path: "audience")
                audience = value
            } catch {
                problems.append("\(error)")
            }
        }
        var recipients: JSONValue?
        var userUpdates: [JSONValue] = []
        if let value = object["recipients"] {
            if broadcast == .bool(true) { problems.append("recipients: cannot be given when broadcast is true") }
            if let list = value.arrayValue, (1...50).contains(list.count) {
                var normalized: [JSONValue] = []
                for (index, recipient) in list.enumerated() {
                    let path = "recipients[\(index)]"
                    guard let fields = recipient.objectValue else {
                        problems.append("\(path): must be an object")
                        continue
                    }
                    var identifier: [String: JSONValue] = [:]
                    if let id = fields["external_user_id"] { identifier["external_id"] = id }
                    for name in ["user_alias", "braze_id", "email"] { if let value = fields[name] { identifier[name] = value } }
                    if identifier.count != 1 {
                        problems.append("\(path): give exactly one of external_user_id, user_alias, braze_id or email")
                    } else if case .failure(let error) = UserIdentifier.resolve(in: identifier) {
                        problems.append("\(path).\(error.field): \(error.problem)")
                    }
                    if let value = fields["trigger_properties"], value.objectValue == nil { problems.append("\(path).trigger_properties: must be an object") }
                    let existingOnly = fields["send_to_existing_only"] ?? .bool(true)
                    if existingOnly != .bool(true), existingOnly != .bool(false) { problems.append("\(path).send_to_existing_only: must be a boolean") }
                    if let attributes = fields["attributes"], !attributes.isNull {
                        if var members = attributes.objectValue {
                            for (key, value) in identifier { members[key] = value }
                            members["_update_existing_only"] = existingOnly
                            userUpdates.append(.object(members))
                        } else {
                            problems.append("\(path).attributes: must be a user attributes object")
                        }
                    } else if existingOnly == .bool(false) {
                        problems.append("\(path).attributes: is required when send_to_existing_only is false")
                    }
                    if existingOnly == .bool(false), identifier["user_alias"] != nil {
                        problems.append("\(path): send_to_existing_only false cannot create alias-only users")
                    }
                    var entry: [String: JSONValue] = ["identifier": .object(identifier)]
                    if let value = fields["trigger_properties"] { entry["trigger_properties"] = value }
                    normalized.append(.object(entry))
                }
                recipients = .array(normalized)
            } else {
                problems.append("recipients: must be an array of 1 to 50 recipients")
            }
        } else if broadcast != .bool(true) {
            problems.append("recipients: are required unless broadcast is true")
        }
        guard problems.isEmpty else { throw APIError.badRequest(problems) }
        return TriggerRequest(
            campaignID: campaignID, sendID: sendID, properties: properties, audience: audience, recipients: recipients, userUpdates: userUpdates)
    }

    static func deliverySettingsJSON(_ settings: DeliverySettings) -> JSONValue {
        let data = (try? JSONEncoder().encode(settings)) ?? Data("{}".utf8)
        return .object(["message": .string("success"), "settings": (try? JSONValue.parse(Array(data))) ?? .object([:])])
    }

    func withCampaignErrors<T>(_ work: () async throws -> T) async throws -> T {
        do {
            return try await work()
        } catch let error as CampaignError {
            switch error.kind {
            case .notFound: throw APIError(.notFound, "Not Found", errors: error.problems)
            case .invalid: throw APIError.badRequest(error.problems)
            case .conflict: throw APIError(.conflict, "Conflict", errors: error.problems)
            }
        }
    }

    static func campaignJSON(_ campaign: Campaign) -> JSONValue {
        func time(_ millis: Int64?) -> JSONValue { millis.map { .string(BrazeTime.format(epochMilliseconds: $0)) } ?? .null }
        return .object([
            "message": .string("success"), "campaign_id": .string(campaign.id), "name": .string(campaign.name),
            "tags": .array(campaign.tags.map(JSONValue.string)), "state": .string(campaign.state.rawValue),
            "delivery_type": .string(campaign.deliveryType), "definition": campaign.definition, "created_at": time(campaign.createdAt),
            "updated_at": time(campaign.updatedAt), "next_run_at": time(campaign.nextRunAt), "first_sent_at": time(campaign.firstSentAt),
            "last_sent_at": time(campaign.lastSentAt),
        ])
    }

    /// Braze's `/campaigns/details` shape; message keys are `<campaign id>_<variant name>`.
    static func brazeDetails(_ campaign: Campaign, channels: ChannelCatalog) throws -> JSONValue {
        func time(_ millis: Int64?) -> JSONValue { millis.map { .string(BrazeTime.format(epochMilliseconds: $0)) } ?? .null }
        var messages: [String: JSONValue] = [:]
        var channelNames: Set<String> = []
        let definition: CampaignDefinition
        do {
            definition = try CampaignDefinition.parse(campaign.definition, channels: channels)
        } catch {
            throw StoredDataError(table: "campaigns", row: campaign.id, column: "definition", problem: error.description)
        }
        do {
            for variant in definition.variants {
                for (channel, message) in variant.messages {
                    channelNames.insert(channel)
                    var entry: [String: JSONValue] = ["channel": .string(channel), "name": .string(variant.name), "type": .string(channel)]
                    for (field, value) in message.objectValue ?? [:] where field != "ad_text_field" { entry[field] = value }
                    if channel == "webhook" { entry["method"] = .string((message["method"]?.stringValue ?? "POST").uppercased()) }
                    let suffix = variant.messages.count == 1 ? variant.name : "\(variant.name)_\(channel)"
                    messages["\(campaign.id)_\(suffix)"] = .object(entry)
                }
            }
            if definition.controlPercent > 0 {
                messages["\(campaign.id)_control"] = .object(["channel": .string(definition.variants.first?.channels.first ?? ""), "type": .string("control")])
            }
        }
        return .object([
            "message": .string("success"), "created_at": time(campaign.createdAt), "updated_at": time(campaign.updatedAt),
            "archived": .bool(campaign.state == .archived), "draft": .bool(campaign.state == .draft), "enabled": .bool(campaign.state == .active),
            "has_post_launch_draft": .bool(false), "name": .string(campaign.name), "description": .string(""),
            "schedule_type": .string(campaign.deliveryType == "scheduled" ? "time_based" : campaign.deliveryType),
            "channels": .array(channelNames.sorted().map(JSONValue.string)), "first_sent": time(campaign.firstSentAt), "last_sent": time(campaign.lastSentAt),
            "tags": .array(campaign.tags.map(JSONValue.string)), "teams": .array([]), "messages": .object(messages),
            "conversion_behaviors": .array([]),
        ])
    }
}
