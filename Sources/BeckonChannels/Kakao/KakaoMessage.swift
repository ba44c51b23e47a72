import BeckonCore
import Foundation
import Liquid

/// A campaign's KakaoTalk message (`messages.kakao`): AlimTalk (a template Kakao approved, only
/// its `#{variables}` filled) or FriendTalk (free text to the channel's friends), with the SMS/LMS
/// fallback the vendor sends when Kakao cannot deliver.
struct KakaoMessageSpec: Sendable {
    static let fields = ["type", "template_code", "variables", "buttons", "body", "image_url", "sender", "subscription_group_id", "fallback"]
    static let buttonTypes = ["WL", "AL", "DS", "BK", "MD", "BC", "BT", "AC"]
    static let buttonFields = ["type", "name", "url_mobile", "url_pc", "scheme_ios", "scheme_android"]
    /// Kakao's limit on a message's text, in characters.
    static let maxCharacters = 1_000

    enum Kind: String, Sendable { case alimtalk, friendtalk }

    let kind: Kind
    let templateCode: String?
    let variables: [(String, Template)]
    /// The approved template's text with `#{name}` placeholders (AlimTalk), or the FriendTalk text.
    let body: Template?
    let buttons: JSONValue
    let imageURL: Template?
    let sender: Template?
    let fallback: Fallback?

    struct Fallback: Sendable {
        /// `sms`, `lms` or `auto` (by CP949 length).
        let kind: String
        let body: Template?
        let subject: Template?
    }

    static func parse(_ value: JSONValue, path: String, rules: MessageRules, problems: inout [String]) -> KakaoMessageSpec? {
        guard let object = value.objectValue else {
            problems.append("\(path): must be an object {\"type\": \"alimtalk\" | \"friendtalk\", …}")
            return nil
        }
        let before = problems.count
        for key in object.keys.sorted() where !fields.contains(key) { problems.append("\(path).\(key): unknown field (\(fields.joined(separator: ", ")))") }
        func template(_ text: String, field: String) -> Template? {
            do {
                return try Template.parse(text)
            } catch let error as LiquidSyntaxError {
                problems.append("\(path).\(field): Liquid syntax error at line \(error.line), column \(error.column): \(error.message)")
            } catch {
                problems.append("\(path).\(field): \(error)")
            }
            return nil
        }
        func string(_ name: String, in members: [String: JSONValue], field: String) -> String? {
            guard let member = members[name], !member.isNull else { return nil }
            guard let text = member.stringValue else {
                problems.append("\(path).\(field): must be a string, got \(member.typeName)")
                return nil
            }
            return text
        }
        guard let kind = object["type"]?.stringValue.flatMap(Kind.init(rawValue:)) else {
            problems.append("\(path).type: must be alimtalk or friendtalk")
            return nil
        }
        if kind == .alimtalk, rules.isAdvertising {
            problems.append("\(path).type: advertising is never sent as AlimTalk (Kakao and KISA allow it only for informational messages); use friendtalk")
        }
        let code = string("template_code", in: object, field: "template_code")
        if kind == .alimtalk {
            if code?.isEmpty ?? true { problems.append("\(path).template_code: is required for AlimTalk (the code of the template Kakao approved)") }
        } else if code != nil {
            problems.append("\(path).template_code: FriendTalk has no template; give body")
        }
        if let code, code.count > 64 { problems.append("\(path).template_code: must be at most 64 characters") }
        var variables: [(String, Template)] = []
        if let value = object["variables"], !value.isNull {
            if let members = value.objectValue {
                for (name, member) in members.sorted(by: { $0.key < $1.key }) {
                    guard let text = member.stringValue else {
                        problems.append("\(path).variables.\(name): must be a string (a Liquid template)")
                        continue
                    }
                    if let parsed = template(text, field: "variables.\(name)") { variables.append((name, parsed)) }
                }
            } else {
                problems.append("\(path).variables: must be an object of #{name} values, such as {\"name\": \"{{${first_name}}}\"}")
            }
        }
        let bodyText = string("body", in: object, field: "body")
        if kind == .friendtalk, bodyText?.isEmpty ?? true { problems.append("\(path).body: is required for FriendTalk") }
        if let bodyText {
            if bodyText.count > maxCharacters { problems.append("\(path).body: is \(bodyText.count) characters; KakaoTalk takes at most \(maxCharacters)") }
            let names = Set(variables.map(\.0))
            for placeholder in placeholders(bodyText) where !names.contains(placeholder) {
                problems.append("\(path).variables.\(placeholder): is required: the template's #{\(placeholder)} has no value")
            }
        }
        let body = bodyText.flatMap { template($0, field: "body") }
        var buttons: [JSONValue] = []
        if let value = object["buttons"], !value.isNull {
            if let list = value.arrayValue, list.count <= 5 {
                for (index, button) in list.enumerated() {
                    let field = "buttons[\(index)]"
                    guard let members = button.objectValue else {
                        problems.append("\(path).\(field): must be an object {\"type\", \"name\", …}")
                        continue
                    }
                    for key in members.keys.sorted() where !buttonFields.contains(key) {
                        problems.append("\(path).\(field).\(key): unknown field (\(buttonFields.joined(separator: ", ")))")
                    }
                    if !buttonTypes.contains(members["type"]?.stringValue ?? "") {
                        problems.append("\(path).\(field).type: must be one of \(buttonTypes.joined(separator: ", "))")
                    }
                    if members["name"]?.stringValue?.isEmpty ?? true { problems.append("\(path).\(field).name: is required") }
                    if members["type"]?.stringValue == "WL", members["url_mobile"]?.stringValue == nil {
                        problems.append("\(path).\(field).url_mobile: is required for a web link (WL) button")
                    }
                    buttons.append(button)
                }
            } else {
                problems.append("\(path).buttons: must be an array of at most 5 buttons")
            }
        }
        let imageURL = string("image_url", in: object, field: "image_url").flatMap { template($0, field: "image_url") }
        if kind == .alimtalk, object["image_url"] != nil { problems.append("\(path).image_url: AlimTalk images are part of the approved template") }
        let sender = string("sender", in: object, field: "sender").flatMap { template($0, field: "sender") }
        var fallback: Fallback?
        if let value = object["fallback"], !value.isNull {
            if let members = value.objectValue {
                for key in members.keys.sorted() where !["type", "body", "subject"].contains(key) {
                    problems.append("\(path).fallback.\(key): unknown field (type, body, subject)")
                }
                let type = members["type"]?.stringValue ?? "auto"
                if !["sms", "lms", "auto"].contains(type) { problems.append("\(path).fallback.type: must be sms, lms or auto") }
                var fallbackBody: Template?
                var fallbackSubject: Template?
                for (name, field) in [("body", "fallback.body"), ("subject", "fallback.subject")] {
                    guard let text = string(name, in: members, field: field) else { continue }
                    if let bad = CP949.firstUnencodable(text) {
                        problems.append("\(path).\(field): \(bad.description) cannot be sent by SMS (CP949 has no emoji)")
                        continue
                    }
                    if name == "body" { fallbackBody = template(text, field: field) } else { fallbackSubject = template(text, field: field) }
                }
                fallback = Fallback(kind: type, body: fallbackBody, subject: fallbackSubject)
            } else {
                problems.append("\(path).fallback: must be an object {\"type\": \"sms\" | \"lms\" | \"auto\", \"body\", \"subject\"}")
            }
        }
        guard problems.count == before else { return nil }
        return KakaoMessageSpec(
            kind: kind, templateCode: code, variables: variables, body: body, buttons: buttons.isEmpty ? .null : .array(buttons), imageURL: imageURL,
            sender: sender, fallback: fallback)
    }

    /// The `#{name}` placeholders of an AlimTalk template, in order.
    static func placeholders(_ text: String) -> [String] {
        var names: [String] = []
        var rest = Substring(text)
        while let open = rest.range(of: "#{") {
            rest = rest[open.upperBound...]
            guard let close = rest.firstIndex(of: "}") else { break }
            let name = String(rest[..<close])
            if !name.isEmpty, !names.contains(name) { names.append(name) }
            rest = rest[rest.index(after: close)...]
        }
        return names
    }
}

/// A KakaoTalk message with its templates parsed, rendered into what the vendor gets.
struct PreparedKakao: PreparedMessage {
    let spec: KakaoMessageSpec
    let advertising: AdvertisingNotice?
    let isAdvertising: Bool

    func render(_ context: LiquidObject, environment: RenderEnvironment) async throws -> RenderedMessage {
        var variables: [String: JSONValue] = [:]
        for (name, template) in spec.variables { variables[name] = .string(try await template.render(context, environment: environment)) }
        var body = try await spec.body?.render(context, environment: environment) ?? ""
        if spec.kind == .alimtalk {
            // What the user sees: the approved text with its variables filled (the vendor checks it against the template).
            for (name, value) in variables { body = body.replacingOccurrences(of: "#{\(name)}", with: value.stringValue ?? "") }
        }
        guard body.count <= KakaoMessageSpec.maxCharacters else {
            throw MessageRenderError("kakao body rendered \(body.count) characters; KakaoTalk takes at most \(KakaoMessageSpec.maxCharacters)")
        }
        var payload: [String: JSONValue] = [
            "kind": .string(spec.kind.rawValue), "body": .string(body), "variables": .object(variables), "buttons": spec.buttons,
            "is_ad": .bool(isAdvertising),
        ]
        if let code = spec.templateCode { payload["template_code"] = .string(code) }
        if let image = try await spec.imageURL?.render(context, environment: environment).trimmingCharacters(in: .whitespacesAndNewlines), !image.isEmpty {
            payload["image_url"] = .string(image)
        }
        if let fallback = spec.fallback {
            var text = try await fallback.body?.render(context, environment: environment) ?? body
            if isAdvertising {
                guard let advertising else { throw MessageRenderError("advertising campaigns need delivery_settings.advertising.opt_out_text") }
                text = AdvertisingNotice.prefix + text + "\n" + advertising.optOutText
            }
            let subject = try await fallback.subject?.render(context, environment: environment).trimmingCharacters(in: .whitespacesAndNewlines)
            let bytes = try PreparedSMS.bytes(text, field: "fallback body")
            guard bytes <= SMSMessageSpec.lmsBytes else {
                throw MessageRenderError("kakao fallback body is \(bytes) bytes in CP949; an LMS holds at most \(SMSMessageSpec.lmsBytes)")
            }
            let kind = fallback.kind == "auto" ? (bytes <= SMSMessageSpec.smsBytes && (subject ?? "").isEmpty ? "sms" : "lms") : fallback.kind
            if kind == "sms", bytes > SMSMessageSpec.smsBytes {
                throw MessageRenderError("kakao fallback body is \(bytes) bytes in CP949; an SMS holds \(SMSMessageSpec.smsBytes) (use \"lms\" or \"auto\")")
            }
            var rendered: [String: JSONValue] = ["kind": .string(kind), "body": .string(text), "bytes": .int(Int64(bytes))]
            if let subject, !subject.isEmpty, kind == "lms" {
                let subjectBytes = try PreparedSMS.bytes(subject, field: "fallback subject")
                guard subjectBytes <= SMSMessageSpec.subjectBytes else {
                    throw MessageRenderError("kakao fallback subject is \(subjectBytes) bytes in CP949; carriers take at most \(SMSMessageSpec.subjectBytes)")
                }
                rendered["subject"] = .string(subject)
            }
            payload["fallback"] = .object(rendered)
        }
        try await PreparedSMS.addNumbers(to: &payload, sender: spec.sender, context: context, environment: environment)
        return RenderedMessage(channel: "kakao", payload: .object(payload))
    }
}
