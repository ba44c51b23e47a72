import BeckonCore
import BeckonOutboundHTTP
import Foundation
import Liquid

/// KakaoTalk AlimTalk and FriendTalk through the workspace's vendor (the SMS vendor: Solapi, or
/// any vendor by template), with the SMS/LMS fallback the vendor sends when Kakao cannot deliver.
/// Advertising is FriendTalk only (flagged as an ad), never AlimTalk.
public struct KakaoChannel: MessageChannel {
    public let name = "kakao"
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
        _ = KakaoMessageSpec.parse(message, path: path, rules: rules, problems: &problems)
    }

    public func prepare(_ message: JSONValue, rules: MessageRules) throws -> any PreparedMessage {
        var problems: [String] = []
        guard let spec = KakaoMessageSpec.parse(message, path: "kakao", rules: rules, problems: &problems) else {
            throw MessageRenderError("the stored kakao message is not valid: \(problems.joined(separator: "; "))")
        }
        return PreparedKakao(spec: spec, advertising: rules.isAdvertising ? rules.advertising : nil, isAdvertising: rules.isAdvertising)
    }

    /// KakaoTalk reaches users by phone number, like SMS.
    public func reachability(_ message: JSONValue) -> SegmentFilter? {
        SMSChannel.phoneReachability(subscriptionGroup: message["subscription_group_id"]?.stringValue)
    }

    public func send(_ message: RenderedMessage, to recipient: Recipient) async -> ChannelOutcome {
        let payload = message.payload
        if let problem = payload["to_problem"]?.stringValue { return .invalidAddress(reason: problem) }
        guard let to = payload["to"]?.stringValue, let body = payload["body"]?.stringValue, let kind = payload["kind"]?.stringValue else {
            return .rejected(reason: "the rendered kakao message is incomplete", status: nil)
        }
        var variables: [String: String] = [:]
        for (name, value) in payload["variables"]?.objectValue ?? [:] { variables[name] = value.stringValue ?? "" }
        let fallback = payload["fallback"]
        let parts = VendorMessage.KakaoParts(
            templateCode: payload["template_code"]?.stringValue, variables: variables, buttons: payload["buttons"] ?? .null,
            isAd: payload["is_ad"] == .bool(true), fallbackKind: fallback?["kind"]?.stringValue, fallbackBody: fallback?["body"]?.stringValue,
            fallbackSubject: fallback?["subject"]?.stringValue)
        return await client.deliver(
            VendorMessage(
                to: to, from: payload["from"]?.stringValue, kind: kind, subject: nil, body: body, imageURL: payload["image_url"]?.stringValue,
                messageID: recipient.messageID, kakao: parts),
            workspaceID: recipient.workspaceID)
    }
}
