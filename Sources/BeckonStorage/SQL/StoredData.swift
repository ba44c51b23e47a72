import BeckonCore

/// Stored data that does not decode. It names the row, so an operator can find and mend it;
/// Beckon never replaces it with a default (that would be written back over the user's data).
public struct StoredDataError: Error, Sendable, CustomStringConvertible {
    public let table: String
    /// The row's key, as text.
    public let row: String
    public let column: String
    public let problem: String

    public init(table: String, row: String, column: String, problem: String) {
        self.table = table
        self.row = row
        self.column = column
        self.problem = problem
    }

    public var description: String { "\(table) row \(row): \(column) cannot be read: \(problem)" }
}

extension SQLValue {
    /// The JSON document stored in this column, or `nil` for SQL NULL; text that is not JSON
    /// is a `StoredDataError` naming the row.
    public func storedJSON(table: String, row: @autoclosure () -> String, column: String) throws -> JSONValue? {
        switch self {
        case .null:
            return nil
        case .text(let text):
            do {
                return try JSONValue.parse(Array(text.utf8))
            } catch {
                throw StoredDataError(table: table, row: row(), column: column, problem: "not JSON (\(error))")
            }
        default:
            throw StoredDataError(table: table, row: row(), column: column, problem: "not text")
        }
    }

    /// The JSON object stored in this column (`{}` only for SQL NULL); anything else is a
    /// `StoredDataError` naming the row.
    public func storedObject(table: String, row: @autoclosure () -> String, column: String) throws -> [String: JSONValue] {
        guard let value = try storedJSON(table: table, row: row(), column: column) else { return [:] }
        guard let object = value.objectValue else {
            throw StoredDataError(table: table, row: row(), column: column, problem: "not a JSON object")
        }
        return object
    }
}
