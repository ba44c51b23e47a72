import Foundation

/// A value a template reads or computes: Liquid's nil, booleans, numbers, strings, arrays,
/// hashes (keys in insertion order) and ranges.
public enum LiquidValue: Sendable, Hashable {
    case `nil`
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([LiquidValue])
    case object(LiquidObject)
    case range(Int, Int)

    /// Only `nil` and `false` are falsy.
    public var isTruthy: Bool {
        switch self {
        case .nil: return false
        case .bool(let flag): return flag
        default: return true
        }
    }

    /// Liquid's `empty`: empty strings, arrays and hashes.
    var isEmpty: Bool {
        switch self {
        case .string(let text): return text.isEmpty
        case .array(let items): return items.isEmpty
        case .object(let object): return object.isEmpty
        default: return false
        }
    }

    /// Liquid's `blank`: nil, false, empty or white-space strings, empty collections.
    var isBlank: Bool {
        switch self {
        case .nil: return true
        case .bool(let flag): return !flag
        case .string(let text): return text.allSatisfy(\.isWhitespace)
        case .array(let items): return items.isEmpty
        case .object(let object): return object.isEmpty
        default: return false
        }
    }

    /// The elements iterated by `for` and array filters.
    var elements: [LiquidValue] {
        switch self {
        case .array(let items): return items
        case .range(let low, let high): return low > high ? [] : (low...high).map { .int($0) }
        case .object(let object): return object.keys.map { .array([.string($0), object[$0]]) }
        case .nil: return []
        default: return [self]
        }
    }

    /// Text as Liquid prints it.
    public var text: String {
        switch self {
        case .nil: return ""
        case .bool(let flag): return flag ? "true" : "false"
        case .int(let number): return String(number)
        case .double(let number): return Self.format(number)
        case .string(let text): return text
        case .array(let items): return items.map(\.text).joined()
        case .object(let object):
            return "{" + object.keys.map { "\"\($0)\"=>\(object[$0].inspect)" }.joined(separator: ", ") + "}"
        case .range(let low, let high): return "\(low)..\(high)"
        }
    }

    /// Ruby's `inspect`, used when hashes are printed.
    var inspect: String {
        switch self {
        case .nil: return "nil"
        case .string(let text): return "\"\(text)\""
        case .array(let items): return "[" + items.map(\.inspect).joined(separator: ", ") + "]"
        default: return text
        }
    }

    /// Floats print as Ruby prints them: `5.0`, `0.1`, `2.857142857142857`, `1.0e+20`.
    static func format(_ number: Double) -> String {
        if number.isNaN { return "NaN" }
        if number.isInfinite { return number < 0 ? "-Infinity" : "Infinity" }
        if number == number.rounded(), abs(number) < 1e16 { return String(format: "%.1f", number) }
        let text = "\(number)"
        if text.contains("e") {
            let parts = text.split(separator: "e")
            var mantissa = String(parts[0])
            if !mantissa.contains(".") { mantissa += ".0" }
            let exponent = Int(parts[1]) ?? 0
            return "\(mantissa)e\(exponent < 0 ? "-" : "+")\(String(format: "%02d", abs(exponent)))"
        }
        return text
    }

    var number: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }
}

/// A hash with its keys in insertion order (templates iterate hashes in that order).
public struct LiquidObject: Sendable, Hashable {
    public private(set) var keys: [String] = []
    private var storage: [String: LiquidValue] = [:]

    public init() {}

    public init(_ pairs: [(String, LiquidValue)]) {
        for (key, value) in pairs { self[key] = value }
    }

    public var isEmpty: Bool { keys.isEmpty }
    public var count: Int { keys.count }

    public subscript(key: String) -> LiquidValue {
        get { storage[key] ?? .nil }
        set {
            if storage[key] == nil { keys.append(key) }
            storage[key] = newValue
        }
    }

    public func contains(_ key: String) -> Bool { storage[key] != nil }
}

extension LiquidValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByFloatLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(nilLiteral: ()) { self = .nil }
    public init(arrayLiteral elements: LiquidValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, LiquidValue)...) { self = .object(LiquidObject(elements)) }
}
