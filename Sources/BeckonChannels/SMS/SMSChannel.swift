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
    private let client: SMSVendorClient

    public init(
        outbound: OutboundHTTPClient, allowlist: @escaping @Sendable (Int64) async throws -> HostAllowlist, directory: any SMSVendorDirectory,
        clock: any BeckonClock, timeoutMilliseconds: Int = 10_000, concurrencyPerCampaign: Int = 32
    ) {
        client = SMSVendorClient(outbound: outbound, allowlist: allowlist, directory: directory, clock: clock, timeoutMilliseconds: timeoutMilliseconds)
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
        Self.phoneReachability(subscriptionGroup: message["subscription_group_id"]?.stringValue)
    }

    /// Has a phone number; and, with a group, is explicitly subscribed to it.
    static func phoneReachability(subscriptionGroup: String?) -> SegmentFilter? {
        guard let hasPhone = try? SegmentFilter.parse(.object(["attribute": .string("phone"), "op": .string("not_blank")])) else { return nil }
        if let group = subscriptionGroup, !group.isEmpty {
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
        return await client.deliver(
            VendorMessage(
                to: to, from: payload["from"]?.stringValue, kind: kind, subject: payload["subject"]?.stringValue, body: body,
                imageURL: payload["image_url"]?.stringValue, messageID: recipient.messageID),
            workspaceID: recipient.workspaceID)
    }
}
