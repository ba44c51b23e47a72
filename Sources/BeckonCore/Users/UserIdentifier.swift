import Foundation

/// How an API object names its user: Braze's identifier keys, in Braze's order of precedence.
public enum UserIdentifier: Sendable, Hashable, CustomStringConvertible {
    case externalID(String)
    case alias(UserAlias)
    case brazeID(String)
    case email(String)
    case phone(String)

    public var description: String {
        switch self {
        case .externalID(let id): return "external_id '\(id)'"
        case .alias(let alias): return "user_alias '\(alias.label):\(alias.name)'"
        case .brazeID(let id): return "braze_id '\(id)'"
        case .email(let email): return "email '\(email)'"
        case .phone(let phone): return "phone '\(phone)'"
        }
    }
}

/// A `user_alias` object: a name unique within its label.
public struct UserAlias: Sendable, Hashable, Codable {
    public let name: String
    public let label: String

    public init(name: String, label: String) {
        self.name = name
        self.label = label
    }

    enum CodingKeys: String, CodingKey {
        case name = "alias_name"
        case label = "alias_label"
    }
}

extension UserIdentifier {
    /// Reads the identifier of a `/users/track` object.
    ///
    /// `external_id`, `user_alias` or `braze_id` identify the user when present (only one may be);
    /// only when none is present do `email`, then `phone`, identify the user.
    public static func resolve(in object: [String: JSONValue]) -> Result<UserIdentifier, FieldError> {
        var found: [UserIdentifier] = []
        if let value = object["external_id"], !value.isNull {
            guard let id = value.stringValue, !id.isEmpty, id.count <= 512 else {
                return .failure(FieldError("external_id", "must be a non-empty string of at most 512 characters"))
            }
            found.append(.externalID(id))
        }
        if let value = object["user_alias"], !value.isNull {
            switch UserAlias.parse(value, field: "user_alias") {
            case .success(let alias): found.append(.alias(alias))
            case .failure(let error): return .failure(error)
            }
        }
        if let value = object["braze_id"], !value.isNull {
            guard let id = value.stringValue, !id.isEmpty else {
                return .failure(FieldError("braze_id", "must be a non-empty string"))
            }
            found.append(.brazeID(id))
        }
        if found.count > 1 {
            return .failure(
                FieldError("external_id", "only one of 'external_id', 'user_alias' or 'braze_id' may identify the user"))
        }
        if let identifier = found.first { return .success(identifier) }
        if let value = object["email"], !value.isNull {
            guard let email = value.stringValue, Email.isValid(email) else {
                return .failure(FieldError("email", "is not a valid email address"))
            }
            return .success(.email(Email.normalize(email)))
        }
        if let value = object["phone"], !value.isNull {
            guard let phone = value.stringValue, !phone.isEmpty else {
                return .failure(FieldError("phone", "must be a non-empty string"))
            }
            return .success(.phone(Phone.normalize(phone)))
        }
        return .failure(FieldError("external_id", "or 'braze_id' or 'user_alias' or 'email' or 'phone' is required"))
    }
}

extension UserAlias {
    /// Validates a `{"alias_name", "alias_label"}` object.
    public static func parse(_ value: JSONValue, field: String) -> Result<UserAlias, FieldError> {
        guard let object = value.objectValue else {
            return .failure(FieldError(field, "must be an object with 'alias_name' and 'alias_label'"))
        }
        guard let name = object["alias_name"]?.stringValue, !name.isEmpty, name.count <= 255 else {
            return .failure(FieldError("\(field).alias_name", "must be a non-empty string of at most 255 characters"))
        }
        guard let label = object["alias_label"]?.stringValue, !label.isEmpty, label.count <= 255 else {
            return .failure(FieldError("\(field).alias_label", "must be a non-empty string of at most 255 characters"))
        }
        return .success(UserAlias(name: name, label: label))
    }
}

/// A problem with one field of an input, named so the caller can fix it.
public struct FieldError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The field's path, e.g. `events[3].properties.color` or `time`.
    public let field: String
    /// What is wrong with it.
    public let problem: String

    public init(_ field: String, _ problem: String) {
        self.field = field
        self.problem = problem
    }

    public var description: String { "'\(field)' \(problem)" }
}

/// Email address checks and normalisation (lower-cased, trimmed).
public enum Email {
    public static func isValid(_ text: String) -> Bool {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard trimmed.count <= 255, let at = trimmed.firstIndex(of: "@") else { return false }
        let local = trimmed[..<at]
        let domain = trimmed[trimmed.index(after: at)...]
        return !local.isEmpty && domain.contains(".") && !domain.hasPrefix(".") && !domain.hasSuffix(".")
            && !trimmed.contains(" ") && !domain.contains("@")
    }

    public static func normalize(_ text: String) -> String {
        text.trimmingCharacters(in: .whitespaces).lowercased()
    }
}

/// Phone number normalisation towards E.164; the raw value is kept when it cannot be coerced.
public enum Phone {
    public static func normalize(_ text: String) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let digits = trimmed.filter(\.isASCIIDigitCharacter)
        guard digits.count >= 7, digits.count <= 15 else { return trimmed }
        if trimmed.hasPrefix("+") { return "+" + digits }
        if digits.hasPrefix("010"), digits.count == 11 { return "+82" + digits.dropFirst() }
        return trimmed
    }
}

extension Character {
    fileprivate var isASCIIDigitCharacter: Bool { isASCII && isNumber }
}
