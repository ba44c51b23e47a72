import BeckonCore
import BeckonOutboundHTTP
import Foundation
import Liquid

/// One text message as a vendor gets it: SMS, LMS, MMS, or a KakaoTalk message with its SMS/LMS fallback.
struct VendorMessage: Sendable {
    let to: String
    let from: String?
    /// `sms`, `lms`, `mms`, `alimtalk` or `friendtalk`.
    let kind: String
    let subject: String?
    let body: String
    let imageURL: String?
    let messageID: String
    var kakao: KakaoParts?

    /// KakaoTalk's own fields: the template, its variables, buttons, the ad flag and the fallback.
    struct KakaoParts: Sendable {
        let templateCode: String?
        let variables: [String: String]
        let buttons: JSONValue
        let isAd: Bool
        /// `sms` or `lms` (`nil`: no fallback).
        let fallbackKind: String?
        let fallbackBody: String?
        let fallbackSubject: String?
    }

    var liquid: LiquidObject {
        var object = LiquidObject([
            ("to", .string(to)), ("from", .string(from ?? "")), ("kind", .string(kind)), ("body", .string(body)), ("message_id", .string(messageID)),
        ])
        object["subject"] = subject.map(LiquidValue.string) ?? .nil
        object["image_url"] = imageURL.map(LiquidValue.string) ?? .nil
        if let kakao {
            object["template_code"] = kakao.templateCode.map(LiquidValue.string) ?? .nil
            object["variables"] = .object(LiquidObject(kakao.variables.sorted { $0.key < $1.key }.map { ($0.key, LiquidValue.string($0.value)) }))
            // As JSON text, for a vendor body: `"buttons": {{sms.buttons}}`.
            object["buttons"] = .string(kakao.buttons == .null ? "[]" : kakao.buttons.serialized())
            object["is_ad"] = .bool(kakao.isAd)
            object["fallback_kind"] = kakao.fallbackKind.map(LiquidValue.string) ?? .nil
            object["fallback_body"] = kakao.fallbackBody.map(LiquidValue.string) ?? .nil
            object["fallback_subject"] = kakao.fallbackSubject.map(LiquidValue.string) ?? .nil
        }
        return object
    }
}

/// Delivers vendor messages for the SMS and KakaoTalk channels: reads the workspace's vendor,
/// waits while it is paused, speaks its protocol, maps its answer to the five outcomes and
/// pauses the vendor on a configuration error.
struct SMSVendorClient: Sendable {
    let outbound: OutboundHTTPClient
    let allowlist: @Sendable (Int64) async throws -> HostAllowlist
    let directory: any SMSVendorDirectory
    let clock: any BeckonClock
    let timeoutMilliseconds: Int

    func deliver(_ message: VendorMessage, workspaceID: Int64) async -> ChannelOutcome {
        let configured: (vendor: SMSVendor, pausedReason: String?)?
        do {
            configured = try await directory.vendor(workspaceID: workspaceID)
        } catch {
            return .retryable(reason: "cannot read the SMS vendor: \(error)", after: nil, status: nil)
        }
        guard let (vendor, pausedReason) = configured else {
            return .configError(reason: "no SMS vendor is configured (PUT /beckon/v1/sms/vendor)")
        }
        if let pausedReason { return .configError(reason: "SMS and KakaoTalk are paused for this workspace: \(pausedReason)") }
        guard let from = message.from ?? vendor.defaultSender else {
            return .configError(reason: "no sender number: set sender on the SMS vendor or on the message")
        }
        let outgoing = VendorMessage(
            to: message.to, from: from, kind: message.kind, subject: message.subject, body: message.body, imageURL: message.imageURL,
            messageID: message.messageID, kakao: message.kakao)
        let outcome: ChannelOutcome
        switch vendor {
        case .webhook(let webhook): outcome = await send(outgoing, via: webhook, workspaceID: workspaceID)
        case .solapi(let solapi): outcome = await send(outgoing, from: from, via: solapi, workspaceID: workspaceID)
        }
        if case .configError(let reason) = outcome {
            do {
                try await directory.pause(workspaceID: workspaceID, reason: reason)
            } catch {
                return .retryable(reason: "cannot pause the vendor after a configuration error (\(reason)): \(error)", after: nil, status: nil)
            }
        }
        return outcome
    }

    private func send(_ message: VendorMessage, via vendor: WebhookSMSVendor, workspaceID: Int64) async -> ChannelOutcome {
        let body: String
        do {
            body = try await vendor.body.render(LiquidObject([("sms", .object(message.liquid))]), environment: RenderEnvironment())
        } catch {
            return .rejected(reason: "the SMS vendor's body template failed: \(error)", status: nil)
        }
        let contentType = vendor.headers.contains { $0.0.caseInsensitiveCompare("Content-Type") == .orderedSame }
            ? [] : [("Content-Type", body.first == "{" || body.first == "[" ? "application/json" : "application/x-www-form-urlencoded")]
        let request: OutboundRequest
        do {
            request = OutboundRequest(
                url: try OutboundURL(vendor.url), method: vendor.method, headers: vendor.headers + contentType + [("Idempotency-Key", message.messageID)],
                body: body)
        } catch {
            return .configError(reason: "the SMS vendor URL is not usable: \(error.reason)")
        }
        return await call(request, workspaceID: workspaceID, vendor: "SMS vendor") { response in
            switch response.statusCode {
            case 200..<300: return .accepted(detail: "\(message.kind) HTTP \(response.statusCode)")
            case 401, 403: return .configError(reason: "the SMS vendor refused the credentials: HTTP \(response.statusCode) \(Self.excerpt(response))")
            default: return .rejected(reason: "the SMS vendor answered HTTP \(response.statusCode): \(Self.excerpt(response))", status: response.statusCode)
            }
        }
    }

    private func send(_ message: VendorMessage, from: String, via vendor: SolapiVendor, workspaceID: Int64) async -> ChannelOutcome {
        guard message.kind != "mms" else {
            return .rejected(
                reason: "Solapi MMS needs the image uploaded to Solapi's storage first, which Beckon does not do yet; use the webhook vendor or drop image_url",
                status: nil)
        }
        var fields: [String: JSONValue] = ["to": .string(message.to), "from": .string(from), "autoTypeDetect": .bool(false)]
        if let kakao = message.kakao {
            guard let channel = vendor.kakaoChannelID else {
                return .configError(reason: "KakaoTalk through Solapi needs kakao_pf_id (the Kakao channel's pfId) on the SMS vendor")
            }
            fields["type"] = .string(message.kind == "alimtalk" ? "ATA" : "CTA")
            var options: [String: JSONValue] = [
                "pfId": .string(channel), "disableSms": .bool(kakao.fallbackKind == nil), "adFlag": .bool(kakao.isAd),
            ]
            if let code = kakao.templateCode { options["templateId"] = .string(code) }
            if !kakao.variables.isEmpty { options["variables"] = .object(kakao.variables.mapValues(JSONValue.string)) }
            if kakao.buttons != .null { options["buttons"] = kakao.buttons }
            fields["kakaoOptions"] = .object(options)
            // Solapi's fallback text is the message's `text` (and `subject` for an LMS).
            fields["text"] = .string(kakao.fallbackBody ?? message.body)
            if let subject = kakao.fallbackSubject { fields["subject"] = .string(subject) }
        } else {
            fields["type"] = .string(message.kind.uppercased())
            fields["text"] = .string(message.body)
            if let subject = message.subject { fields["subject"] = .string(subject) }
        }
        let date = BrazeTime.format(epochMilliseconds: BrazeTime.epochMilliseconds(clock.now()))
        let salt = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let request: OutboundRequest
        do {
            request = OutboundRequest(
                url: try OutboundURL(vendor.endpoint + "/messages/v4/send"), method: "POST",
                headers: [("Authorization", vendor.authorization(date: date, salt: salt)), ("Content-Type", "application/json")],
                body: JSONValue.object(["message": .object(fields)]).serialized())
        } catch {
            return .configError(reason: "the Solapi endpoint is not usable: \(error.reason)")
        }
        return await call(request, workspaceID: workspaceID, vendor: "Solapi") { response in
            let answer = (try? JSONValue.parse(response.body)) ?? .null
            let code = answer["statusCode"]?.stringValue ?? answer["errorCode"]?.stringValue ?? ""
            let text = answer["statusMessage"]?.stringValue ?? answer["errorMessage"]?.stringValue ?? Self.excerpt(response)
            return Self.solapiOutcome(status: response.statusCode, code: code, message: text, kind: message.kind, messageID: answer["messageId"]?.stringValue)
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
