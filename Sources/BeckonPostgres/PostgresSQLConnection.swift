import BeckonStorage
import Logging
import NIOCore
import PostgresNIO

/// An `SQLConnection` over one leased PostgresNIO connection.
///
/// Its methods block the calling thread — always one of `PostgresStorage`'s own blocking
/// threads, never an event loop or Swift's cooperative pool — until the server answers.
struct PostgresSQLConnection: SQLConnection {
    let connection: PostgresConnection
    let logger: Logger

    var dialect: SQLDialect { .postgres }

    func execute(_ sql: String, _ arguments: [SQLValue]) throws {
        _ = try run(sql, arguments)
    }

    func query(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
        let result = try run(sql, arguments)
        var rows: [SQLRow] = []
        rows.reserveCapacity(result.rows.count)
        for row in result.rows {
            var values: [SQLValue] = []
            values.reserveCapacity(row.count)
            for cell in row {
                values.append(try PostgresCodec.decode(cell, sql: sql))
            }
            rows.append(SQLRow(values))
        }
        return rows
    }

    /// Runs a statement and returns its command tag (`COMMIT`, `ROLLBACK`, `INSERT`, …).
    func command(_ sql: String) throws -> String {
        try run(sql, []).metadata.command
    }

    private func run(_ sql: String, _ arguments: [SQLValue]) throws -> PostgresQueryResult {
        let query = PostgresQuery(
            unsafeSQL: PostgresCodec.rewritePlaceholders(sql),
            binds: PostgresCodec.bindings(arguments)
        )
        do {
            return try connection.query(query, logger: logger).wait()
        } catch {
            throw PostgresErrors.sqlError(error, sql: sql)
        }
    }
}

/// Placeholder rewriting, argument binding and result decoding, shared by every connection.
enum PostgresCodec {
    /// Rewrites `?` placeholders to `$1, $2…`, leaving `?` inside string literals, quoted
    /// identifiers, dollar-quoted strings and comments alone.
    static func rewritePlaceholders(_ sql: String) -> String {
        let bytes = sql.utf8
        guard bytes.contains(UInt8(ascii: "?")) else { return sql }

        var output: [UInt8] = []
        output.reserveCapacity(bytes.count + 16)
        var number = 0
        var index = bytes.startIndex
        let end = bytes.endIndex

        @inline(__always) func copy(until stop: String.UTF8View.Index) {
            output.append(contentsOf: bytes[index..<stop])
            index = stop
        }

        while index < end {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "?"):
                number += 1
                output.append(UInt8(ascii: "$"))
                output.append(contentsOf: String(number).utf8)
                index = bytes.index(after: index)

            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                // A quoted literal or identifier; a doubled quote inside is an escape, which
                // scanning to the next quote and starting again handles naturally.
                var cursor = bytes.index(after: index)
                while cursor < end, bytes[cursor] != byte { cursor = bytes.index(after: cursor) }
                copy(until: cursor < end ? bytes.index(after: cursor) : end)

            case UInt8(ascii: "-") where next(bytes, after: index) == UInt8(ascii: "-"):
                var cursor = index
                while cursor < end, bytes[cursor] != UInt8(ascii: "\n") { cursor = bytes.index(after: cursor) }
                copy(until: cursor)

            case UInt8(ascii: "/") where next(bytes, after: index) == UInt8(ascii: "*"):
                var cursor = bytes.index(index, offsetBy: 2)
                while cursor < end {
                    if bytes[cursor] == UInt8(ascii: "*"), next(bytes, after: cursor) == UInt8(ascii: "/") {
                        cursor = bytes.index(cursor, offsetBy: 2)
                        break
                    }
                    cursor = bytes.index(after: cursor)
                }
                copy(until: min(cursor, end))

            case UInt8(ascii: "$"):
                // A dollar-quoted string `$tag$ … $tag$` (a tag never starts with a digit: `$1` is a parameter).
                if let tagEnd = dollarTagEnd(bytes, from: index) {
                    let tag = Array(bytes[index...tagEnd])
                    var cursor = bytes.index(after: tagEnd)
                    var closed = end
                    while cursor < end {
                        if bytes[cursor] == UInt8(ascii: "$"), bytes[cursor...].starts(with: tag) {
                            closed = bytes.index(cursor, offsetBy: tag.count)
                            break
                        }
                        cursor = bytes.index(after: cursor)
                    }
                    copy(until: closed)
                } else {
                    output.append(byte)
                    index = bytes.index(after: index)
                }

            default:
                output.append(byte)
                index = bytes.index(after: index)
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    private static func next(_ bytes: String.UTF8View, after index: String.UTF8View.Index) -> UInt8? {
        let following = bytes.index(after: index)
        return following < bytes.endIndex ? bytes[following] : nil
    }

    /// The index of the closing `$` of a dollar-quote tag starting at `start`, if it is one.
    private static func dollarTagEnd(_ bytes: String.UTF8View, from start: String.UTF8View.Index) -> String.UTF8View.Index? {
        var cursor = bytes.index(after: start)
        var first = true
        while cursor < bytes.endIndex {
            let byte = bytes[cursor]
            if byte == UInt8(ascii: "$") { return cursor }
            let isLetter = (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == UInt8(ascii: "_") || byte >= 0x80
            let isDigit = byte >= 0x30 && byte <= 0x39
            if !(isLetter || (isDigit && !first)) { return nil }
            first = false
            cursor = bytes.index(after: cursor)
        }
        return nil
    }

    /// Binds values with their natural Postgres types; `NULL` is left untyped so the server
    /// infers its type from where it is used (an insert into any column, a comparison, …).
    static func bindings(_ arguments: [SQLValue]) -> PostgresBindings {
        var bindings = PostgresBindings(capacity: arguments.count)
        for argument in arguments {
            switch argument {
            case .null: bindings.appendNull()
            case .integer(let value): bindings.append(value)
            case .real(let value): bindings.append(value)
            case .text(let value): bindings.append(value)
            case .blob(let value): bindings.append(ByteBuffer(bytes: value))
            }
        }
        return bindings
    }

    /// Decodes one result cell by its Postgres type.
    static func decode(_ cell: PostgresCell, sql: String) throws -> SQLValue {
        guard var buffer = cell.bytes else { return .null }
        if cell.format == .text {
            return decodeText(buffer.readString(length: buffer.readableBytes) ?? "", type: cell.dataType)
        }
        switch cell.dataType {
        case .int8:
            if let value = buffer.readInteger(as: Int64.self) { return .integer(value) }
        case .int4:
            if let value = buffer.readInteger(as: Int32.self) { return .integer(Int64(value)) }
        case .int2:
            if let value = buffer.readInteger(as: Int16.self) { return .integer(Int64(value)) }
        case .oid:
            if let value = buffer.readInteger(as: UInt32.self) { return .integer(Int64(value)) }
        case .char:
            if let value = buffer.readInteger(as: UInt8.self) { return .text(String(UnicodeScalar(value))) }
        case .float8:
            if let bits = buffer.readInteger(as: UInt64.self) { return .real(Double(bitPattern: bits)) }
        case .float4:
            if let bits = buffer.readInteger(as: UInt32.self) { return .real(Double(Float(bitPattern: bits))) }
        case .bool:
            if let value = buffer.readInteger(as: UInt8.self) { return .integer(value == 0 ? 0 : 1) }
        case .numeric:
            if let value = decodeNumeric(&buffer) { return value }
        case .bytea:
            return .blob(Array(buffer.readableBytesView))
        case .text, .varchar, .name, .bpchar, .json:
            return .text(buffer.readString(length: buffer.readableBytes) ?? "")
        case .jsonb:
            // The binary format starts with a version byte.
            if buffer.readInteger(as: UInt8.self) == 1 {
                return .text(buffer.readString(length: buffer.readableBytes) ?? "")
            }
        default:
            if let text = try? cell.decode(String.self) { return .text(text) }
        }
        throw SQLError(
            message: "cannot decode column \(cell.columnIndex) '\(cell.columnName)' of PostgreSQL type \(cell.dataType)",
            sql: sql
        )
    }

    private static func decodeText(_ text: String, type: PostgresDataType) -> SQLValue {
        switch type {
        case .int2, .int4, .int8, .oid:
            return Int64(text).map(SQLValue.integer) ?? .text(text)
        case .float4, .float8:
            return Double(text).map(SQLValue.real) ?? .text(text)
        case .numeric:
            if let integer = Int64(text) { return .integer(integer) }
            return Double(text).map(SQLValue.real) ?? .text(text)
        case .bool:
            return .integer(text == "t" ? 1 : 0)
        default:
            return .text(text)
        }
    }

    /// `numeric` in binary form: an integer when the value is integral and fits in 64 bits
    /// (`SUM(bigint)` is numeric), a double otherwise.
    static func decodeNumeric(_ buffer: inout ByteBuffer) -> SQLValue? {
        guard let count = buffer.readInteger(as: Int16.self),
              let weight = buffer.readInteger(as: Int16.self),
              let sign = buffer.readInteger(as: UInt16.self),
              let _ = buffer.readInteger(as: Int16.self)
        else { return nil }
        switch sign {
        case 0xC000: return .real(.nan)
        case 0xD000: return .real(.infinity)
        case 0xF000: return .real(-.infinity)
        default: break
        }
        var digits: [Int16] = []
        digits.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let digit = buffer.readInteger(as: Int16.self) else { return nil }
            digits.append(digit)
        }
        let negative = sign == 0x4000

        // Digit i is worth 10000^(weight - i).
        var integral = true
        for (position, digit) in digits.enumerated() where Int(weight) - position < 0 && digit != 0 {
            integral = false
        }
        if integral {
            var magnitude: Int64 = 0
            var overflow = false
            for position in 0..<max(Int(weight) + 1, 0) {
                let digit = position < digits.count ? Int64(digits[position]) : 0
                let (shifted, o1) = magnitude.multipliedReportingOverflow(by: 10_000)
                let (sum, o2) = shifted.addingReportingOverflow(negative ? -digit : digit)
                if o1 || o2 { overflow = true; break }
                magnitude = sum
            }
            if !overflow { return .integer(magnitude) }
        }
        // Fall back to a double, built from the decimal text for correct rounding.
        var text = negative ? "-" : ""
        text += "0."
        for digit in digits {
            let part = String(digit)
            text += String(repeating: "0", count: 4 - part.count) + part
        }
        text += "e\(4 * (Int(weight) + 1))"
        return Double(text).map(SQLValue.real)
    }
}
