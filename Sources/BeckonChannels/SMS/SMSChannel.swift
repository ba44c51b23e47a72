import BeckonCore
import BeckonOutboundHTTP
import Foundation
import Liquid

/// Where the SMS channel reads the workspace's vendor and records a configuration error.
public protocol SMSVendorDirectory: Sendable {
    /// The vendor and, when paused by a configuration error, the reason.
    func vendor(workspaceID: Int64) async throws -> (vendor: SMSVendor, pausedReason: String?)?
    /// Pauses SMS for the workspace until the vendor is stored again.
    func pause(workspaceID: Int64, reason: String) async throws
}

/// SMS, LMS and MMS through the workspace's vendor: the text counted in CP949 bytes (SMS up to 90,
/// LMS up to 2,000), the advertising notice applied, the number normalised; one request per
/// message with the message id as the vendor's idempotency key.
public struct SMSChannel: MessageChannel {
    public let name = "sms"
    public let concurrencyPerCampaign: Int
    private let directory: any SMSVendorDirectory
    private let outbound: OutboundHTTPClient
    private let allowlist: @Sendable (Int64) async throws -> HostAllowlist
    private let clock: any BeckonClock
    private let timeoutMilliseconds: Int

    public init(
        outbound: OutboundHTTPClient, allowlist: @escaping @Sendable (Int64) async throws -> HostAllowlist, directory: any SMSVendorDirectory,
        clock: any BeckonClock, timeoutMilliseconds: Int = 10_000, concurrencyPerCampaign: Int = 32
    ) {
        self.outbound = outbound
        self.allowlist = allowlist
        self.directory = directory
        self.clock = clock
        self.timeoutMilliseconds = timeoutMilliseconds
        self.concurrencyPerCampaign = concurrencyPerCampaign
    }

    public func validate(_ message: JSONValue, path: String, rules: MessageRules, problems: inout [String]) {
        _ = SMSMessageSpec.parse(message, path: path, problems: &problems)
    }

    public func prepare(_ message: JSONValue, rules: MessageRules) throws -> any PreparedMessage {
        var problems: [String] = []
        guard let spec = SMSMessageSpec.parse(message, path: "sms", problems: &problems) else {
            throw MessageRenderError("the stored sms message is not valid: \(problems.joined(separator: "; "))")
        }
        return PreparedSMS(spec: spec, advertising: rules.isAdvertising ? rules.advertising : nil, isAdvertising: rules.isAdvertising)
    }

    /// Users with a phone number (and, when the message names one, subscribed to its SMS subscription group).
    public func reachability(_ message: JSONValue) -> SegmentFilter? {
        guard let hasPhone = try? SegmentFilter.parse(.object(["attribute": .string("phone"), "op": .string("not_blank")])) else { return nil }
        if let group = message["subscription_group_id"]?.stringValue, !group.isEmpty {
            return .all([hasPhone, .subscriptionGroup(id: group, subscribed: true)])
        }
        return hasPhone
    }

    public func send(_ message: RenderedMessage, to recipient: Recipient) async -> ChannelOutcome {
        let payload = message.payload
        if let problem = payload["to_problem"]?.stringValue { return .invalidAddress(reason: problem) }
        guard let to = payload["to"]?.stringValue, let body = payload["body"]?.stringValue, let kind = payload["kind"]?.stringValue else {
            return .rejected(reason: "the rendered sms message is incomplete", status: nil)
        }
        let configured: (vendor: SMSVendor, pausedReason: String?)?
        do {
            configured = try await directory.vendor(workspaceID: recipient.workspaceID)
        } catch {
            return .retryable(reason: "cannot read the SMS vendor: \(error)", after: nil, status: nil)
        }
        guard let (vendor, pausedReason) = configured else {
            return .configError(reason: "no SMS vendor is configured (PUT /beckon/v1/sms/vendor)")
        }
        if let pausedReason { return .configError(reason: "SMS is paused for this workspace: \(pausedReason)") }
        guard let from = payload["from"]?.stringValue ?? vendor.defaultSender else {
            return .configError(reason: "no sender number: set sender on the SMS vendor or on the message")
        }
        let sms = OutgoingSMS(
            to: to, from: from, kind: kind, subject: payload["subject"]?.stringValue, body: body, imageURL: payload["image_url"]?.stringValue,
            messageID: recipient.messageID)
        let outcome: ChannelOutcome
        switch vendor {
        case .webhook(let webhook): outcome = await send(sms, via: webhook, workspaceID: recipient.workspaceID)
        case .solapi(let solapi): outcome = await send(sms, via: solapi, workspaceID: recipient.workspaceID)
        }
        if case .configError(let reason) = outcome {
            do {
                try await directory.pause(workspaceID: recipient.workspaceID, reason: reason)
            } catch {
                return .retryable(reason: "cannot pause SMS after a configuration error (\(reason)): \(error)", after: nil, status: nil)
            }
        }
        return outcome
    }

    /// One text as a vendor gets it.
    struct OutgoingSMS {
        let to: String
        let from: String
        let kind: String
        let subject: String?
        let body: String
        let imageURL: String?
        let messageID: String

        var liquid: LiquidObject {
            var object = LiquidObject([
                ("to", .string(to)), ("from", .string(from)), ("kind", .string(kind)), ("body", .string(body)), ("message_id", .string(messageID)),
            ])
            object["subject"] = subject.map(LiquidValue.string) ?? .nil
            object["image_url"] = imageURL.map(LiquidValue.string) ?? .nil
            return object
        }
    }

    private func send(_ sms: OutgoingSMS, via vendor: WebhookSMSVendor, workspaceID: Int64) async -> ChannelOutcome {
        let body: String
        do {
            body = try await vendor.body.render(LiquidObject([("sms", .object(sms.liquid))]), environment: RenderEnvironment())
        } catch {
            return .rejected(reason: "the SMS vendor's body template failed: \(error)", status: nil)
        }
        let contentType = vendor.headers.contains { $0.0.caseInsensitiveCompare("Content-Type") == .orderedSame }
            ? [] : [("Content-Type", body.first == "{" || body.first == "[" ? "application/json" : "application/x-www-form-urlencoded")]
        let request: OutboundRequest
        do {
            request = OutboundRequest(
                url: try OutboundURL(vendor.url), method: vendor.method, headers: vendor.headers + contentType + [("Idempotency-Key", sms.messageID)],
                body: body)
        } catch {
            return .configError(reason: "the SMS vendor URL is not usable: \(error.reason)")
        }
        return await call(request, workspaceID: workspaceID, vendor: "SMS vendor") { response in
            switch response.statusCode {
            case 200..<300: return .accepted(detail: "\(sms.kind) HTTP \(response.statusCode)")
            case 401, 403: return .configError(reason: "the SMS vendor refused the credentials: HTTP \(response.statusCode) \(Self.excerpt(response))")
            default: return .rejected(reason: "the SMS vendor answered HTTP \(response.statusCode): \(Self.excerpt(response))", status: response.statusCode)
            }
        }
    }

    private func send(_ sms: OutgoingSMS, via vendor: SolapiVendor, workspaceID: Int64) async -> ChannelOutcome {
        guard sms.kind != "mms" else {
            return .rejected(reason: "Solapi MMS needs the image uploaded to Solapi's storage first, which Beckon does not do yet; use the webhook vendor or drop image_url", status: nil)
        }
        var message: [String: JSONValue] = [
            "to": .string(sms.to), "from": .string(sms.from), "text": .string(sms.body), "type": .string(sms.kind.uppercased()),
            "autoTypeDetect": .bool(false),
        ]
        if let subject = sms.subject { message["subject"] = .string(subject) }
        let date = BrazeTime.format(epochMilliseconds: BrazeTime.epochMilliseconds(clock.now()))
        let salt = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let request: OutboundRequest
        do {
            request = OutboundRequest(
                url: try OutboundURL(vendor.endpoint + "/messages/v4/send"), method: "POST",
                headers: [("Authorization", vendor.authorization(date: date, salt: salt)), ("Content-Type", "application/json")],
                body: JSONValue.object(["message": .object(message)]).serialized())
        } catch {
            return .configError(reason: "the Solapi endpoint is not usable: \(error.reason)")
        }
        return await call(request, workspaceID: workspaceID, vendor: "Solapi") { response in
            let answer = (try? JSONValue.parse(response.body)) ?? .null
            let code = answer["statusCode"]?.stringValue ?? answer["errorCode"]?.stringValue ?? ""
            let text = answer["statusMessage"]?.stringValue ?? answer["errorMessage"]?.stringValue ?? Self.excerpt(response)
            return Self.solapiOutcome(status: response.statusCode, code: code, message: text, kind: sms.kind, messageID: answer["messageId"]?.stringValue)
        }
    }

    /// Solapi's answer: `statusCode` 2000 is accepted; any other code is a failure with Solapi's
    /// reason (its per-recipient codes are not confirmed, so no number is retired on a guess);
    /// 401/403 and 402 (balance) pause SMS.
    static func solapiOutcome(status: Int, code: String, message: String, kind: String, messageID: String?) -> ChannelOutcome {
        let detail = "Solapi \(status) \(code) \(message)".trimmingCharacters(in: .whitespaces)
        switch status {
        case 200..<300 where code == "2000" || code.isEmpty:
            return .accepted(detail: "\(kind) Solapi \(messageID ?? code)")
        case 401, 403:
            return .configError(reason: detail)
        case 402:
            return .configError(reason: "\(detail) (the Solapi account's balance)")
        case 429, 500...:
            return .retryable(reason: detail, after: nil, status: status)
        default:
            return .rejected(reason: detail, status: status)
        }
    }

    private func call(
        _ request: OutboundRequest, workspaceID: Int64, vendor: String, _ interpret: (OutboundResponse) -> ChannelOutcome
    ) async -> ChannelOutcome {
        let workspaceAllowlist: HostAllowlist
        do {
            workspaceAllowlist = try await allowlist(workspaceID)
        } catch {
            return .retryable(reason: "cannot read the workspace's allowlist: \(error)", after: nil, status: nil)
        }
        let response: OutboundResponse
        do {
            response = try await outbound.send(request, workspaceAllowlist: workspaceAllowlist, timeoutMilliseconds: timeoutMilliseconds)
        } catch {
            switch error.kind {
            case .timeout, .network: return .retryable(reason: "\(vendor): \(error.reason)", after: nil, status: nil)
            case .blocked: return .configError(reason: "\(vendor): \(error.reason) (allowlist the vendor host with --allow-host)")
            default: return .rejected(reason: "\(vendor): \(error.reason)", status: error.status)
            }
        }
        if response.statusCode == 429 || response.statusCode >= 500 {
            return .retryable(
                reason: "\(vendor) answered HTTP \(response.statusCode)", after: response.retryAfter.flatMap { Int($0) }, status: response.statusCode)
        }
        return interpret(response)
    }

    static func excerpt(_ response: OutboundResponse) -> String {
        String(decoding: response.body.prefix(300), as: UTF8.self)
    }
}
