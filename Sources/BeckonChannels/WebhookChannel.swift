import BeckonCore
import BeckonOutboundHTTP
import Foundation
import Liquid

/// Webhooks, and the Korean SMS/Kakao vendors reached through them: every field a Liquid
/// template, JSON bodies checked after rendering, the message id sent as `Idempotency-Key`,
/// under the outbound network policy and the workspace's allowlist.
public struct WebhookChannel: MessageChannel {
    public let name = "webhook"
    static let methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    /// `HTTP 200` … `HTTP 299`, made once.
    static let acceptedDetails = (200..<300).map { "HTTP \($0)" }

    private let outbound: OutboundHTTPClient
    private let allowlist: @Sendable (Int64) async throws -> HostAllowlist
    private let timeoutMilliseconds: Int
    public let concurrencyPerCampaign: Int

    /// - Parameters:
    ///   - allowlist: the hosts a workspace allowlisted (beyond the server's).
    ///   - timeoutMilliseconds: the longest a request may take before it is retried.
    ///   - concurrencyPerCampaign: requests of one campaign in flight at once (so a big send
    ///     cannot open more connections to a vendor than it allows).
    public init(
        outbound: OutboundHTTPClient, allowlist: @escaping @Sendable (Int64) async throws -> HostAllowlist, timeoutMilliseconds: Int = 10_000,
        concurrencyPerCampaign: Int = 32
    ) {
        self.outbound = outbound
        self.allowlist = allowlist
        self.timeoutMilliseconds = timeoutMilliseconds
        self.concurrencyPerCampaign = concurrencyPerCampaign
    }

    /// Webhooks reach every user of the audience.
    public func reachability(_ message: JSONValue) -> SegmentFilter? { nil }

    /// A webhook message: `{"url", "method", "headers", "body", "ad_text_field"}`.
    struct Message {
        var url: String
        var method: String
        var headers: [(String, String)]
        var body: String
        /// For advertising: the JSON body field (dotted path) that gets the prefix and footer.
        var adTextField: String?
    }

    public func validate(_ message: JSONValue, path: String, rules: MessageRules, problems: inout [String]) {
        _ = parse(message, path: path, rules: rules, problems: &problems)
    }

    func parse(_ value: JSONValue, path: String, rules: MessageRules, problems: inout [String]) -> Message? {
        guard let webhook = value.objectValue else {
            problems.append("\(path): must be an object {\"url\", \"method\", \"headers\", \"body\"}")
            return nil
        }
        let before = problems.count
        for key in webhook.keys.sorted() where !["url", "method", "headers", "body", "ad_text_field"].contains(key) {
            problems.append("\(path).\(key): unknown field (url, method, headers, body, ad_text_field)")
        }
        let url = webhook["url"]?.stringValue ?? ""
        if url.isEmpty { problems.append("\(path).url: is required") } else { checkTemplate(url, field: "\(path).url", problems: &problems) }
        let method = (webhook["method"]?.stringValue ?? "POST").uppercased()
        if !Self.methods.contains(method) { problems.append("\(path).method: must be one of \(Self.methods.joined(separator: ", "))") }
        var headers: [(String, String)] = []
        if let value = webhook["headers"], !value.isNull {
            if let members = value.objectValue {
                for (name, headerValue) in members.sorted(by: { $0.key < $1.key }) {
                    guard let text = headerValue.stringValue else {
                        problems.append("\(path).headers.\(name): must be a string")
                        continue
                    }
                    checkTemplate(text, field: "\(path).headers.\(name)", problems: &problems)
                    headers.append((name, text))
                }
            } else {
                problems.append("\(path).headers: must be an object of strings")
            }
        }
        let body = webhook["body"]?.stringValue ?? ""
        if webhook["body"] != nil, webhook["body"]?.stringValue == nil { problems.append("\(path).body: must be a string") }
        checkTemplate(body, field: "\(path).body", problems: &problems)
        var adTextField: String?
        if let value = webhook["ad_text_field"], !value.isNull {
            if let text = value.stringValue, !text.isEmpty { adTextField = text } else {
                problems.append("\(path).ad_text_field: must be a field name such as \"content\"")
            }
        }
        if rules.isAdvertising, adTextField == nil {
            problems.append(
                "\(path).ad_text_field: advertising messages need the body field that gets the (광고) prefix and the opt-out footer")
        }
        return problems.count == before ? Message(url: url, method: method, headers: headers, body: body, adTextField: adTextField) : nil
    }

    public func prepare(_ message: JSONValue, rules: MessageRules) throws -> any PreparedMessage {
        var problems: [String] = []
        guard let parsed = parse(message, path: "webhook", rules: rules, problems: &problems) else {
            throw MessageRenderError("the stored webhook message is not valid: \(problems.joined(separator: "; "))")
        }
        return PreparedWebhook(
            method: parsed.method, url: try Template.parse(parsed.url), headers: try parsed.headers.map { ($0.0, try Template.parse($0.1)) },
            body: try Template.parse(parsed.body), adTextField: parsed.adTextField, advertising: rules.advertising,
            isAdvertising: rules.isAdvertising)
    }

    public func send(_ message: RenderedMessage, to recipient: Recipient) async -> ChannelOutcome {
        guard let method = message.payload["method"]?.stringValue, let urlText = message.payload["url"]?.stringValue,
            let body = message.payload["body"]?.stringValue, let headerObject = message.payload["headers"]?.objectValue
        else { return .rejected(reason: "the rendered webhook message is incomplete", status: nil) }
        var headers = headerObject.sorted { $0.key < $1.key }.map { ($0.key, $0.value.stringValue ?? "") }
        headers.append(("Idempotency-Key", recipient.messageID))
        let url: OutboundURL
        do {
            url = try OutboundURL(urlText)
        } catch {
            return .rejected(reason: error.reason, status: nil)
        }
        let workspaceAllowlist: HostAllowlist
        do {
            workspaceAllowlist = try await allowlist(recipient.workspaceID)
        } catch {
            return .retryable(reason: "cannot read the workspace's allowlist: \(error)", after: nil, status: nil)
        }
        let response: OutboundResponse
        do {
            response = try await outbound.send(
                OutboundRequest(url: url, method: method, headers: headers, body: method == "GET" ? nil : body),
                workspaceAllowlist: workspaceAllowlist, timeoutMilliseconds: timeoutMilliseconds)
        } catch {
            switch error.kind {
            case .timeout, .network: return .retryable(reason: error.reason, after: nil, status: nil)
            // The URL is the campaign's (a template): a refused destination fails this message.
            case .blocked: return .rejected(reason: error.reason, status: nil)
            default: return .rejected(reason: error.reason, status: error.status)
            }
        }
        switch response.statusCode {
        case 200..<300:
            return .accepted(detail: Self.acceptedDetails[response.statusCode - 200])
        case 429, 500...:
            return .retryable(
                reason: "HTTP \(response.statusCode) from \(url.redacted)", after: response.retryAfter.flatMap { Int($0) },
                status: response.statusCode)
        default:
            let excerpt = String(decoding: response.body.prefix(300), as: UTF8.self)
            return .rejected(reason: "HTTP \(response.statusCode) from \(url.redacted): \(excerpt)", status: response.statusCode)
        }
    }
}

/// A webhook with its templates parsed.
struct PreparedWebhook: PreparedMessage {
    let method: String
    let url: Template
    let headers: [(String, Template)]
    let body: Template
    let adTextField: String?
    let advertising: AdvertisingNotice?
    let isAdvertising: Bool

    func render(_ context: LiquidObject, environment: RenderEnvironment) async throws -> RenderedMessage {
        let url = try await self.url.render(context, environment: environment).trimmingCharacters(in: .whitespacesAndNewlines)
        var headers: [String: JSONValue] = [:]
        for (name, value) in self.headers { headers[name] = .string(try await value.render(context, environment: environment)) }
        var body = try await self.body.render(context, environment: environment)
        if isAdvertising, let field = adTextField {
            guard let advertising else {
                throw MessageRenderError("advertising campaigns need delivery_settings.advertising.opt_out_text")
            }
            body = try Self.advertise(body, field: field, notice: advertising)
        }
        let contentType = headers.first { $0.key.caseInsensitiveCompare("Content-Type") == .orderedSame }?.value.stringValue
        let looksJSON = body.first.map { $0 == "{" || $0 == "[" } ?? false
        if contentType?.lowercased().contains("json") == true || (contentType == nil && looksJSON) {
            do {
                _ = try JSONValue.parse(Array(body.utf8))
            } catch {
                throw MessageRenderError("the body is not valid JSON after rendering: \(error)")
            }
            if contentType == nil { headers["Content-Type"] = .string("application/json") }
        } else if contentType == nil, !body.isEmpty {
            headers["Content-Type"] = .string("text/plain; charset=utf-8")
        }
        return RenderedMessage(
            channel: "webhook",
            payload: .object(["method": .string(method), "url": .string(url), "headers": .object(headers), "body": .string(body)]))
    }

    /// "(광고) " before the text field and the opt-out line after it.
    static func advertise(_ body: String, field: String, notice: AdvertisingNotice) throws -> String {
        let object: [String: JSONValue]
        do {
            guard case .object(let members) = try JSONValue.parse(Array(body.utf8)) else { throw MessageRenderError("") }
            object = members
        } catch {
            throw MessageRenderError("the body of an advertising message must be a JSON object with the field '\(field)'")
        }
        func decorate(_ members: [String: JSONValue], path: ArraySlice<Substring>) throws -> [String: JSONValue] {
            var members = members
            let key = String(path.first ?? "")
            if path.count == 1 {
                guard let text = members[key]?.stringValue else { throw MessageRenderError("the body has no text field '\(field)'") }
                members[key] = .string(AdvertisingNotice.prefix + text + "\n" + notice.optOutText)
                return members
            }
            guard case .object(let child)? = members[key] else { throw MessageRenderError("the body has no text field '\(field)'") }
            members[key] = .object(try decorate(child, path: path.dropFirst()))
            return members
        }
        return JSONValue.object(try decorate(object, path: field.split(separator: ".")[...])).serialized()
    }
}
