import BeckonStorage
import Foundation
import PostgresNIO

/// Turns driver errors into `SQLError`s that say what the server said.
///
/// The message ends with ` [SQLSTATE xxxxx]` when the server sent a code; `SQLError.postgresSQLState`
/// reads it back. Arguments and the server's `DETAIL` (which may quote the values) are left out.
enum PostgresErrors {
    static func sqlError(_ error: any Error, sql: String) -> any Error {
        if let error = error as? SQLError { return error }
        if error is CancellationError { return error }
        guard let error = error as? PSQLError else {
            return SQLError(message: "PostgreSQL: \(error)", sql: sql)
        }
        if let info = error.serverInfo, let message = info[.message] {
            var text = message
            if let hint = info[.hint] { text += " (hint: \(hint))" }
            if let state = info[.sqlState] { text += " [SQLSTATE \(state)]" }
            return SQLError(message: text, sql: sql)
        }
        var text = "PostgreSQL \(error.code)"
        if let underlying = error.underlying { text += ": \(underlying)" }
        return SQLError(message: text, sql: sql)
    }
}

extension SQLError {
    /// The five-character SQLSTATE PostgreSQL reported for this error, if it came from PostgreSQL.
    public var postgresSQLState: String? {
        guard message.hasSuffix("]"), let range = message.range(of: " [SQLSTATE ", options: .backwards) else {
            return nil
        }
        let state = message[range.upperBound...].dropLast()
        return state.count == 5 ? String(state) : nil
    }

    /// Whether PostgreSQL refused the statement for breaking a unique or primary-key constraint.
    public var isPostgresUniqueViolation: Bool { postgresSQLState == "23505" }
}
