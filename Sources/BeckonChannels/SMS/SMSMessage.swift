import BeckonCore
import Foundation
import Liquid

/// A campaign's SMS/LMS/MMS message (`messages.sms`): `{"body", "subject", "image_url",
/// "sender", "subscription_group_id"}`, every string but the group id a Liquid template.
struct SMSMessageSpec: Sendable {
    static let fields = ["body", "subject", "image_url", "sender", "subscription_group_id"]
    /// Carrier limits in CP949 bytes (channels.md §5.3).
    static let smsBytes = 90
    static let lmsBytes = 2_000
    static let subjectBytes = 40

    let body: Template
    let subject: Template?
    let imageURL: Template?
    let sender: Template?
    let subscriptionGroupID: String?

    static func parse(_ value: JSONValue, path: String, problems: inout [String]) -> SMSMessageSpec? {
        guard let object = value.objectValue else {
            problems.append("\(path): must be an object {\"body\", \"subject\", \"image_url\", \"sender\"}")
            return nil
        }
        let before = problems.count
        for key in object.keys.sorted() where !fields.contains(key) {
            problems.append("\(path).\(key): unknown field (\(fields.joined(separator: ", ")))")
        }
        func template(_ name: String, required: Bool = false, korean: Bool = true) -> Template? {
            guard let member = object[name], !member.isNull else {
                if required { problems.append("\(path).\(name): is required") }
                return nil
            }
            guard let text = member.stringValue else {
                problems.append("\(path).\(name): must be a string (a Liquid template), got \(member.typeName)")
                return nil
            }
            if required, text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                problems.append("\(path).\(name): must not be empty")
                return nil
            }
            if korean, let bad = CP949.firstUnencodable(text) {
                problems.append(
                    "\(path).\(name): \(bad.description) cannot be sent by SMS: carriers count and carry text in CP949 (Hangul, Latin, Hanja, common symbols; no emoji)")
                return nil
            }
            do {
                return try Template.parse(text)
            } catch let error as LiquidSyntaxError {
                problems.append("\(path).\(name): Liquid syntax error at line \(error.line), column \(error.column): \(error.message)")
            } catch {
                problems.append("\(path).\(name): \(error)")
            }
            return nil
        }
        let body = template("body", required: true)
        let subject = template("subject")
        let imageURL = template("image_url", korean: false)
        let sender = template("sender", korean: false)
        if let literal = object["sender"]?.stringValue, !literal.contains("{{"), !literal.contains("{%") {
            if case .failure(let error) = PhoneNumber.parse(literal) { problems.append("\(path).sender: \(error)") }
        }
        var group: String?
        if let value = object["subscription_group_id"], !value.isNull {
            if let id = value.stringValue, !id.isEmpty { group = id } else { problems.append("\(path).subscription_group_id: must be a subscription group id") }
        }
        guard problems.count == before, let body else { return nil }
        return SMSMessageSpec(body: body, subject: subject, imageURL: imageURL, sender: sender, subscriptionGroupID: group)
    }
}

/// An SMS message with its templates parsed: rendered into the text the carrier gets, its kind
/// (SMS up to 90 CP949 bytes without a subject, LMS up to 2,000, MMS with an image) and the
/// recipient's number.
struct PreparedSMS: PreparedMessage {
    static let recipientTemplate = try! Template.parse("{{${phone_number}}}")
    let spec: SMSMessageSpec
    let advertising: AdvertisingNotice?
    let isAdvertising: Bool

    func render(_ context: LiquidObject, environment: RenderEnvironment) async throws -> RenderedMessage {
        var body = try await spec.body.render(context, environment: environment)
        if isAdvertising {
            guard let advertising else { throw MessageRenderError("advertising campaigns need delivery_settings.advertising.opt_out_text") }
            // 정보통신망법 Art. 50(4): "(광고)" first, the free opt-out line last; both count toward the limit.
            body = AdvertisingNotice.prefix + body + "\n" + advertising.optOutText
        }
        let subject = try await spec.subject?.render(context, environment: environment).trimmingCharacters(in: .whitespacesAndNewlines)
        let imageURL = try await spec.imageURL?.render(context, environment: environment).trimmingCharacters(in: .whitespacesAndNewlines)
        let bodyBytes = try Self.bytes(body, field: "body")
        var payload: [String: JSONValue] = ["body": .string(body), "bytes": .int(Int64(bodyBytes))]
        if let subject, !subject.isEmpty {
            let subjectBytes = try Self.bytes(subject, field: "subject")
            guard subjectBytes <= SMSMessageSpec.subjectBytes else {
                throw MessageRenderError("sms subject is \(subjectBytes) bytes in CP949; carriers take at most \(SMSMessageSpec.subjectBytes)")
            }
            payload["subject"] = .string(subject)
        }
        guard bodyBytes <= SMSMessageSpec.lmsBytes else {
            throw MessageRenderError("sms body is \(bodyBytes) bytes in CP949; an LMS holds at most \(SMSMessageSpec.lmsBytes)")
        }
        let kind: String
        if let imageURL, !imageURL.isEmpty {
            guard let url = URLComponents(string: imageURL), url.scheme == "https" || url.scheme == "http", url.host?.isEmpty == false else {
                throw MessageRenderError("sms image_url rendered '\(imageURL.prefix(80))', not an http(s) URL")
            }
            payload["image_url"] = .string(imageURL)
            kind = "mms"
        } else {
            kind = payload["subject"] != nil || bodyBytes > SMSMessageSpec.smsBytes ? "lms" : "sms"
        }
        payload["kind"] = .string(kind)
        try await Self.addNumbers(to: &payload, sender: spec.sender, context: context, environment: environment)
        return RenderedMessage(channel: "sms", payload: .object(payload))
    }

    /// `from` (the message's sender, when it has one) and `to` (the user's phone in the vendor's
    /// form); a number that cannot receive texts is noted as `to_problem`, which `send` reports
    /// as an invalid address.
    static func addNumbers(to payload: inout [String: JSONValue], sender: Template?, context: LiquidObject, environment: RenderEnvironment) async throws {
        if let sender = try await sender?.render(context, environment: environment).trimmingCharacters(in: .whitespacesAndNewlines), !sender.isEmpty {
            switch PhoneNumber.parse(sender) {
            case .success(let number): payload["from"] = .string(number.vendorForm)
            case .failure(let error): throw MessageRenderError("sender \(error)")
            }
        }
        let to = try await recipientTemplate.render(context, environment: environment).trimmingCharacters(in: .whitespacesAndNewlines)
        switch PhoneNumber.parse(to) {
        case .success(let number):
            payload["to"] = .string(number.vendorForm)
            if number.domestic != nil, !number.isKoreanMobile { payload["to_problem"] = .string("\(number.vendorForm) is not a Korean mobile number") }
        case .failure(let error):
            payload["to"] = .string(to)
            payload["to_problem"] = .string("the user's phone \(error)")
        }
    }

    /// CP949 bytes of a rendered field; a character Liquid brought in that CP949 cannot carry is a render error.
    static func bytes(_ text: String, field: String) throws -> Int {
        switch CP949.byteCount(text) {
        case .success(let count): return count
        case .failure(let bad):
            throw MessageRenderError("sms \(field) rendered \(bad.description), which SMS cannot carry (CP949 has no emoji)")
        }
    }
}
