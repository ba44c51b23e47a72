import BeckonCore
import BeckonOutboundHTTP
import Crypto
import Foundation
import Liquid

/// The workspace's SMS vendor (`PUT /beckon/v1/sms/vendor`): Solapi's messages API, or any other
/// vendor through a webhook whose body is a Liquid template with `sms.*` in scope.
public enum SMSVendor: Sendable {
    case webhook(WebhookSMSVendor)
    case solapi(SolapiVendor)

    public static let types = ["webhook", "solapi"]

    public var type: String {
        switch self {
        case .webhook: "webhook"
        case .solapi: "solapi"
        }
    }

    /// The caller number used when a message names none (pre-registered with the vendor).
    public var defaultSender: String? {
        switch self {
        case .webhook(let vendor): vendor.sender
        case .solapi(let vendor): vendor.sender
        }
    }

    /// What may be shown: everything but secrets (webhook headers, API secrets).
    public var settings: JSONValue {
        switch self {
        case .webhook(let vendor):
            var settings: [String: JSONValue] = [
                "url": .string(vendor.url), "method": .string(vendor.method), "body": .string(vendor.bodySource),
                "header_names": .array(vendor.headers.map { .string($0.0) }),
            ]
            if let sender = vendor.sender { settings["sender"] = .string(sender) }
            return .object(settings)
        case .solapi(let vendor):
            var settings: [String: JSONValue] = ["api_key": .string(vendor.apiKey), "endpoint": .string(vendor.endpoint)]
            if let sender = vendor.sender { settings["sender"] = .string(sender) }
            if let channel = vendor.kakaoChannelID { settings["kakao_pf_id"] = .string(channel) }
            return .object(settings)
        }
    }

    /// The secret part, sealed at rest.
    public var secret: JSONValue {
        switch self {
        case .webhook(let vendor): .object(Dictionary(vendor.headers.map { ($0.0, JSONValue.string($0.1)) }) { first, _ in first })
        case .solapi(let vendor): .object(["api_secret": .string(vendor.apiSecret)])
        }
    }

    /// Validates `PUT /beckon/v1/sms/vendor`; every problem names its field.
    public static func parse(_ body: JSONValue) throws(SMSVendorError) -> SMSVendor {
        guard let object = body.objectValue else { throw SMSVendorError(["the body must be a JSON object {\"type\": \"webhook\" | \"solapi\", …}"]) }
        var problems: [String] = []
        let type = object["type"]?.stringValue ?? ""
        var sender: String?
        if let value = object["sender"], !value.isNull {
            switch value.stringValue.map(PhoneNumber.parse) {
            case .success(let number)?: sender = number.vendorForm
            case .failure(let error)?: problems.append("sender: \(error)")
            case nil: problems.append("sender: must be the caller number registered with the vendor")
            }
        }
        switch type {
        case "webhook":
            let known = ["type", "url", "method", "headers", "body", "sender"]
            for key in object.keys.sorted() where !known.contains(key) { problems.append("\(key): unknown field (\(known.joined(separator: ", ")))") }
            let url = object["url"]?.stringValue ?? ""
            if url.isEmpty {
                problems.append("url: is required: the vendor's send URL")
            } else if URLComponents(string: url).map({ ["http", "https"].contains($0.scheme ?? "") && $0.host?.isEmpty == false }) != true {
                problems.append("url: must be an http(s) URL")
            }
            let method = (object["method"]?.stringValue ?? "POST").uppercased()
            if !["POST", "PUT"].contains(method) { problems.append("method: must be POST or PUT") }
            var headers: [(String, String)] = []
            if let value = object["headers"], !value.isNull {
                if let members = value.objectValue {
                    for (name, member) in members.sorted(by: { $0.key < $1.key }) {
                        if let text = member.stringValue { headers.append((name, text)) } else { problems.append("headers.\(name): must be a string") }
                    }
                } else {
                    problems.append("headers: must be an object of strings (sealed at rest: they usually hold the vendor's key)")
                }
            }
            let source = object["body"]?.stringValue ?? ""
            var template: Template?
            if source.isEmpty {
                problems.append("body: is required: a Liquid template of the vendor's request, with sms.to, sms.from, sms.kind, sms.subject, sms.body, sms.message_id")
            } else {
                do {
                    template = try Template.parse(source)
                } catch let error as LiquidSyntaxError {
                    problems.append("body: Liquid syntax error at line \(error.line), column \(error.column): \(error.message)")
                } catch {
                    problems.append("body: \(error)")
                }
            }
            guard problems.isEmpty, let template else { throw SMSVendorError(problems) }
            return .webhook(WebhookSMSVendor(url: url, method: method, headers: headers, bodySource: source, body: template, sender: sender))
        case "solapi":
            let known = ["type", "api_key", "api_secret", "sender", "endpoint", "kakao_pf_id"]
            for key in object.keys.sorted() where !known.contains(key) { problems.append("\(key): unknown field (\(known.joined(separator: ", ")))") }
            let key = object["api_key"]?.stringValue ?? ""
            let secret = object["api_secret"]?.stringValue ?? ""
            if key.isEmpty { problems.append("api_key: is required (Solapi console → API Key)") }
            if secret.isEmpty { problems.append("api_secret: is required (Solapi console → API Secret)") }
            let endpoint = object["endpoint"]?.stringValue ?? "https://api.solapi.com"
            let base = URLComponents(string: endpoint)
            if base.map({ ["http", "https"].contains($0.scheme ?? "") && $0.host?.isEmpty == false && ($0.path.isEmpty || $0.path == "/") }) != true {
                problems.append("endpoint: must be a base URL with scheme, host and optional port only, such as https://api.solapi.com")
            }
            var channel: String?
            if let value = object["kakao_pf_id"], !value.isNull {
                if let text = value.stringValue, !text.isEmpty { channel = text } else { problems.append("kakao_pf_id: must be the Kakao channel's pfId") }
            }
            guard problems.isEmpty else { throw SMSVendorError(problems) }
            return .solapi(SolapiVendor(
                apiKey: key, apiSecret: secret, sender: sender, endpoint: endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint,
                kakaoChannelID: channel))
        default:
            throw SMSVendorError(["type: must be one of \(types.joined(separator: ", "))"])
        }
    }

    /// The vendor as stored: its settings and its unsealed secret.
    public static func stored(type: String, settings: JSONValue, secret: JSONValue) throws(SMSVendorError) -> SMSVendor {
        var body = settings.objectValue ?? [:]
        body["type"] = .string(type)
        body.removeValue(forKey: "header_names")
        switch type {
        case "webhook": body["headers"] = secret
        case "solapi": body["api_secret"] = secret["api_secret"] ?? .null
        default: break
        }
        return try parse(.object(body))
    }
}

/// Why vendor settings were refused: each problem as `field: what is wrong`.
public struct SMSVendorError: Error, Sendable, CustomStringConvertible {
    public let problems: [String]
    public init(_ problems: [String]) { self.problems = problems }
    public var description: String { problems.joined(separator: "; ") }
}

/// Any vendor reached with a templated HTTP request; 2xx is accepted.
public struct WebhookSMSVendor: Sendable {
    public let url: String
    public let method: String
    let headers: [(String, String)]
    let bodySource: String
    let body: Template
    public let sender: String?
}

/// Solapi's messages API v4 (channels.md §5.2): `POST /messages/v4/send` with an HMAC-SHA256
/// `Authorization` header over date and salt.
public struct SolapiVendor: Sendable {
    public let apiKey: String
    let apiSecret: String
    public let sender: String?
    public let endpoint: String
    /// The Kakao channel (`pfId`) AlimTalk and FriendTalk go out from.
    public let kakaoChannelID: String?

    /// `HMAC-SHA256 apiKey=…, date=…, salt=…, signature=hex(HMAC-SHA256(secret, date + salt))`.
    func authorization(date: String, salt: String) -> String {
        let signature = HMAC<SHA256>.authenticationCode(for: Data((date + salt).utf8), using: SymmetricKey(data: Data(apiSecret.utf8)))
        let hex = signature.map { String(format: "%02x", $0) }.joined()
        return "HMAC-SHA256 apiKey=\(apiKey), date=\(date), salt=\(salt), signature=\(hex)"
    }
}
