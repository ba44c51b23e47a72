/// A value bound to or read from SQL, the same on SQLite and PostgreSQL.
///
/// Times are stored as `integer` milliseconds since 1970 and booleans as `integer` 0/1, so
/// both backends compare and index them identically.
public enum SQLValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])

    public var int: Int64? {
        switch self {
        case .integer(let value): return value
        case .real(let value): return Int64(exactly: value.rounded()) ?? nil
        case .text(let text): return Int64(text)
        default: return nil
        }
    }

    public var double: Double? {
        switch self {
        case .integer(let value): return Double(value)
        case .real(let value): return value
        case .text(let text): return Double(text)
        default: return nil
        }
    }

    public var string: String? {
        switch self {
        case .text(let text): return text
        case .integer(let value): return String(value)
        case .real(let value): return String(value)
        default: return nil
        }
    }

    public var isNull: Bool { self == .null }
}

extension SQLValue {
    /// `.text` for a string and `.null` for `nil`.
    public static func text(_ value: String?) -> SQLValue { value.map { .text($0) } ?? .null }
    /// `.integer` for a number and `.null` for `nil`.
    public static func integer(_ value: Int64?) -> SQLValue { value.map { .integer($0) } ?? .null }
    /// `.real` for a number and `.null` for `nil`.
    public static func real(_ value: Double?) -> SQLValue { value.map { .real($0) } ?? .null }
    /// Booleans as 0/1.
    public static func bool(_ value: Bool) -> SQLValue { .integer(value ? 1 : 0) }
}

/// One result row, read by column position in the order the query selected them.
public struct SQLRow: Sendable {
    public let values: [SQLValue]

    public init(_ values: [SQLValue]) { self.values = values }

    public subscript(_ index: Int) -> SQLValue { index < values.count ? values[index] : .null }
}
