import BeckonCore
import Foundation
import Liquid

/// The push message of a campaign (`messages.push`): common fields, every string a Liquid
/// template, and `ios` / `android` / `web` objects that override any of them for one platform
/// (plus that platform's own fields).
struct PushMessageSpec: Sendable {
    /// What a field may hold.
    enum Kind: Sendable {
        /// A Liquid template.
        case text
        /// One of these literal strings.
        case choice([String])
        /// A whole number in a range, or a template that renders to one.
        case integer(ClosedRange<Int64>)
        case boolean
        /// An object of string templates (FCM's `data` takes strings only).
        case stringMap
        /// Web notification buttons: `[{"action", "title", "icon"?, "url"?}]`, at most 2.
        case actions
    }

    static let common: [String: Kind] = [
        "title": .text, "subtitle": .text, "body": .text, "image_url": .text, "deep_link": .text, "data": .stringMap,
        "sound": .text, "badge": .integer(0...99_999), "category": .text, "thread_id": .text, "collapse_key": .text,
        "ttl_seconds": .integer(0...2_419_200), "priority": .choice(["high", "normal"]), "content_available": .boolean,
        "interruption_level": .choice(["passive", "active", "time-sensitive", "critical"]),
    ]
    static let platformFields: [PushPlatformName: [String: Kind]] = [
        .ios: ["mutable_content": .boolean],
        .android: [
            "channel_id": .text, "notification_priority": .choice(FCMRequest.notificationPriorities), "tag": .text,
            "color": .text, "icon": .text, "click_action": .text,
        ],
        .web: ["icon": .text, "actions": .actions, "require_interaction": .boolean],
    ]

    /// The message's JSON with every template parsed.
    let tree: TemplateTree
    let platforms: [PushPlatformName]
    /// The platforms on which the message is silent (`content_available` and nothing to show,
    /// platform overrides included): denied tokens get those.
    let silentPlatforms: Set<PushPlatformName>

    /// Parses and validates `value`, appending every problem as `path.field: what is wrong`.
    static func parse(_ value: JSONValue, path: String, problems: inout [String]) -> PushMessageSpec? {
        guard let object = value.objectValue else {
            problems.append("\(path): must be an object {\"title\", \"body\", …}")
            return nil
        }
        let before = problems.count
        var platforms = PushPlatformName.allCases
        var members: [String: TemplateTree] = [:]
        for key in object.keys.sorted() {
            let member = object[key] ?? .null
            if key == "platforms" {
                guard let list = member.arrayValue, !list.isEmpty else {
                    problems.append("\(path).platforms: must be a non-empty array of ios, android, web")
                    continue
                }
                var chosen: [PushPlatformName] = []
                for (index, entry) in list.enumerated() {
                    guard let name = entry.stringValue.flatMap(PushPlatformName.init(rawValue:)) else {
                        problems.append("\(path).platforms[\(index)]: unknown platform \(entry.serialized()) (ios, android, web)")
                        continue
                    }
                    if !chosen.contains(name) { chosen.append(name) }
                }
                platforms = chosen
                continue
            }
            if let platform = PushPlatformName(rawValue: key) {
                guard let overrides = member.objectValue else {
                    problems.append("\(path).\(key): must be an object of fields for \(key)")
                    continue
                }
                var fields: [String: TemplateTree] = [:]
                let own = platformFields[platform] ?? [:]
                for (name, field) in overrides.sorted(by: { $0.key < $1.key }) {
                    guard let kind = common[name] ?? own[name] else {
                        problems.append(
                            "\(path).\(key).\(name): unknown field (any common push field, or \(own.keys.sorted().joined(separator: ", ")))")
                        continue
                    }
                    if let tree = check(field, kind: kind, path: "\(path).\(key).\(name)", problems: &problems) { fields[name] = tree }
                }
                members[key] = .object(fields)
                continue
            }
            guard let kind = common[key] else {
                problems.append("\(path).\(key): unknown field (\((common.keys.sorted() + ["platforms", "ios", "android", "web"]).joined(separator: ", ")))")
                continue
            }
            if let tree = check(member, kind: kind, path: "\(path).\(key)", problems: &problems) { members[key] = tree }
        }
        var silentPlatforms: Set<PushPlatformName> = []
        for platform in platforms {
            let fields = effectiveKeys(members, platform: platform)
            let silent = isSilent(members, platform: platform)
            if silent, !fields.contains("title"), !fields.contains("body") { silentPlatforms.insert(platform) }
            if !silent, !fields.contains("title"), !fields.contains("body") {
                problems.append("\(path): a \(platform.rawValue) push needs a title or a body (or content_available: true for a silent push)")
            }
        }
        guard problems.count == before else { return nil }
        return PushMessageSpec(tree: .object(members), platforms: platforms, silentPlatforms: silentPlatforms)
    }

    private static func effectiveKeys(_ members: [String: TemplateTree], platform: PushPlatformName) -> Set<String> {
        var keys = Set(members.keys)
        if case .object(let overrides)? = members[platform.rawValue] { keys.formUnion(overrides.keys) }
        return keys
    }

    /// Silent: `content_available` and nothing to show.
    private static func isSilent(_ members: [String: TemplateTree], platform: PushPlatformName) -> Bool {
        var flag = members["content_available"]
        if case .object(let overrides)? = members[platform.rawValue], let value = overrides["content_available"] { flag = value }
        guard case .literal(.bool(true))? = flag else { return false }
        return true
    }

    /// Validates one field and parses its templates.
    private static func check(_ value: JSONValue, kind: Kind, path: String, problems: inout [String]) -> TemplateTree? {
        switch kind {
        case .text:
            guard let text = value.stringValue else {
                problems.append("\(path): must be a string (a Liquid template), got \(value.typeName)")
                return nil
            }
            return template(text, path: path, problems: &problems)
        case .choice(let values):
            guard let text = value.stringValue, values.contains(text) else {
                problems.append("\(path): must be one of \(values.joined(separator: ", "))")
                return nil
            }
            return .literal(value)
        case .integer(let range):
            if case .int(let number) = value {
                guard range.contains(number) else {
                    problems.append("\(path): must be a whole number from \(range.lowerBound) to \(range.upperBound)")
                    return nil
                }
                return .literal(value)
            }
            guard let text = value.stringValue else {
                problems.append("\(path): must be a whole number (or a template that renders one), got \(value.typeName)")
                return nil
            }
            return template(text, path: path, problems: &problems)
        case .boolean:
            guard case .bool = value else {
                problems.append("\(path): must be true or false, got \(value.typeName)")
                return nil
            }
            return .literal(value)
        case .stringMap:
            guard let members = value.objectValue else {
                problems.append("\(path): must be an object of string values")
                return nil
            }
            var fields: [String: TemplateTree] = [:]
            for (name, member) in members.sorted(by: { $0.key < $1.key }) {
                guard let text = member.stringValue else {
                    problems.append("\(path).\(name): must be a string (FCM data values are strings), got \(member.typeName)")
                    continue
                }
                if FCMRequest.isReservedDataKey(name) || name.hasPrefix("beckon_") {
                    problems.append("\(path).\(name): is a reserved key (from, gcm, google…, collapse_key, message_type, notification, aps, campaign_id, deep_link, image_url, content_available, beckon_…)")
                    continue
                }
                if let tree = template(text, path: "\(path).\(name)", problems: &problems) { fields[name] = tree }
            }
            return .object(fields)
        case .actions:
            guard let list = value.arrayValue, list.count <= 2 else {
                problems.append("\(path): must be an array of at most 2 actions {\"action\", \"title\", \"icon\"?, \"url\"?}")
                return nil
            }
            var actions: [TemplateTree] = []
            for (index, entry) in list.enumerated() {
                guard let action = entry.objectValue else {
                    problems.append("\(path)[\(index)]: must be an object {\"action\", \"title\", \"icon\"?, \"url\"?}")
                    continue
                }
                var fields: [String: TemplateTree] = [:]
                for key in ["action", "title"] where action[key]?.stringValue?.isEmpty ?? true {
                    problems.append("\(path)[\(index)].\(key): is required and must be a string")
                }
                for (name, member) in action.sorted(by: { $0.key < $1.key }) {
                    guard ["action", "title", "icon", "url"].contains(name) else {
                        problems.append("\(path)[\(index)].\(name): unknown field (action, title, icon, url)")
                        continue
                    }
                    guard let text = member.stringValue else {
                        problems.append("\(path)[\(index)].\(name): must be a string")
                        continue
                    }
                    if let tree = template(text, path: "\(path)[\(index)].\(name)", problems: &problems) { fields[name] = tree }
                }
                actions.append(.object(fields))
            }
            return .array(actions)
        }
    }

    private static func template(_ text: String, path: String, problems: inout [String]) -> TemplateTree? {
        do {
            return .text(try Template.parse(text))
        } catch let error as LiquidSyntaxError {
            problems.append("\(path): Liquid syntax error at line \(error.line), column \(error.column): \(error.message)")
        } catch {
            problems.append("\(path): \(error)")
        }
        return nil
    }
}

/// The platforms a push reaches.
public enum PushPlatformName: String, Sendable, CaseIterable, Hashable {
    case ios, android, web
}

/// A JSON shape whose strings are parsed Liquid templates.
indirect enum TemplateTree: Sendable {
    case text(Template)
    case literal(JSONValue)
    case object([String: TemplateTree])
    case array([TemplateTree])

    /// The JSON with every template rendered.
    func render(_ context: LiquidObject, environment: RenderEnvironment) async throws -> JSONValue {
        switch self {
        case .text(let template): return .string(try await template.render(context, environment: environment))
        case .literal(let value): return value
        case .object(let members):
            var rendered: [String: JSONValue] = [:]
            for (key, member) in members { rendered[key] = try await member.render(context, environment: environment) }
            return .object(rendered)
        case .array(let elements):
            var rendered: [JSONValue] = []
            for element in elements { rendered.append(try await element.render(context, environment: environment)) }
            return .array(rendered)
        }
    }
}

/// One platform's fields after rendering and applying its overrides.
struct PushContent: Sendable {
    let fields: [String: JSONValue]

    init(rendered: [String: JSONValue], platform: PushPlatformName) {
        var fields = rendered.filter { PushMessageSpec.common[$0.key] != nil }
        for (key, value) in rendered[platform.rawValue]?.objectValue ?? [:] { fields[key] = value }
        self.fields = fields
    }

    /// A rendered text field; empty text counts as absent.
    func text(_ name: String) -> String? {
        guard let value = fields[name]?.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else { return nil }
        return value
    }

    func flag(_ name: String) -> Bool { fields[name] == .bool(true) }

    /// A whole-number field (literal, or a template that rendered one).
    func integer(_ name: String, range: ClosedRange<Int64>) throws -> Int64? {
        switch fields[name] {
        case .int(let number)?: return number
        case .string(let text)?:
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { return nil }
            guard let number = Int64(trimmed), range.contains(number) else {
                throw MessageRenderError("push \(name) rendered '\(trimmed.prefix(40))', not a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            return number
        default: return nil
        }
    }

    /// The rendered `data` object (string values).
    var data: [String: String] {
        (fields["data"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
    }

    /// Nothing to show: only `content_available`.
    var isSilent: Bool { flag("content_available") && text("title") == nil && text("body") == nil && text("subtitle") == nil }
}
