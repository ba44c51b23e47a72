import Foundation

/// Parses the time formats Braze accepts in `/users/track` and prints Braze's export format.
///
/// Accepted: ISO 8601 (`2025-06-30T15:00:00Z`, fractional seconds, `±hh:mm`/`±hhmm` offsets),
/// Braze's `yyyy-MM-ddTHH:mm:ss:SSSZ`, `yyyy-MM-ddTHH:mm:ss`, `yyyy-MM-dd HH:mm:ss`,
/// `yyyy-MM-dd` and `MM/dd/yyyy`. A time without a zone is UTC. Hand-written because it sits
/// on the ingestion hot path (every event carries one).
public enum BrazeTime {
    /// The instant `text` denotes, or `nil` when it is in none of the accepted formats.
    public static func parse(_ text: String) -> Date? {
        var bytes = Array(text.utf8)
        while let last = bytes.last, last == UInt8(ascii: " ") { bytes.removeLast() }
        var reader = DigitReader(bytes: bytes)
        if bytes.count == 10, bytes[2] == UInt8(ascii: "/"), bytes[5] == UInt8(ascii: "/") {
            guard let month = reader.digits(2), reader.skip("/"), let day = reader.digits(2), reader.skip("/"),
                let year = reader.digits(4)
            else { return nil }
            return make(year, month, day, 0, 0, 0, 0, offsetSeconds: 0)
        }
        guard let year = reader.digits(4), reader.skip("-"), let month = reader.digits(2), reader.skip("-"),
            let day = reader.digits(2)
        else { return nil }
        if reader.atEnd { return make(year, month, day, 0, 0, 0, 0, offsetSeconds: 0) }
        guard reader.skip("T") || reader.skip(" "), let hour = reader.digits(2), reader.skip(":"),
            let minute = reader.digits(2)
        else { return nil }
        var second = 0
        if reader.skip(":") {
            guard let value = reader.digits(2) else { return nil }
            second = value
        }
        var nanos = 0
        if reader.skip(".") || reader.skip(":") {
            guard let (fraction, count) = reader.fraction() else { return nil }
            nanos = fraction * Int(pow(10.0, Double(9 - min(count, 9))))
        }
        var offset = 0
        if reader.skip("Z") || reader.skip("z") {
            offset = 0
        } else if let sign = reader.sign() {
            guard let hours = reader.digits(2) else { return nil }
            _ = reader.skip(":")
            let minutes = reader.digits(2) ?? 0
            offset = sign * (hours * 3600 + minutes * 60)
        } else if reader.skip(" UTC") {
            offset = 0
        }
        guard reader.atEnd else { return nil }
        return make(year, month, day, hour, minute, second, nanos, offsetSeconds: offset)
    }

    /// ISO 8601 in UTC with milliseconds, as Braze exports times: `2025-06-30T15:00:00.000Z`.
    public static func format(_ date: Date) -> String {
        let millis = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        return format(epochMilliseconds: millis)
    }

    /// `format(_:)` for a time stored as milliseconds since 1970.
    public static func format(epochMilliseconds millis: Int64) -> String {
        let days = Int64((Double(millis) / 86_400_000).rounded(.down))
        let msOfDay = millis - days * 86_400_000
        let (year, month, day) = civil(fromDays: days)
        let hour = msOfDay / 3_600_000
        let minute = (msOfDay / 60_000) % 60
        let second = (msOfDay / 1000) % 60
        let ms = msOfDay % 1000
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2)).\(pad(ms, 3))Z"
    }

    /// Milliseconds since 1970 for `date`, the unit every stored time uses.
    public static func epochMilliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }

    private static func make(
        _ year: Int, _ month: Int, _ day: Int, _ hour: Int, _ minute: Int, _ second: Int, _ nanos: Int,
        offsetSeconds: Int
    ) -> Date? {
        guard (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day), (0...23).contains(hour),
            (0...59).contains(minute), (0...60).contains(second)
        else { return nil }
        let days = daysFromCivil(year: Int64(year), month: Int64(month), day: Int64(day))
        let seconds = days * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetSeconds)
        return Date(timeIntervalSince1970: Double(seconds) + Double(nanos) / 1_000_000_000)
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (month <= 2 ? yoe + era * 400 + 1 : yoe + era * 400, month, day)
    }
}

/// A cursor over ASCII bytes for the time parser.
private struct DigitReader {
    let bytes: [UInt8]
    var position = 0

    var atEnd: Bool { position == bytes.count }

    mutating func digits(_ count: Int) -> Int? {
        guard position + count <= bytes.count else { return nil }
        var value = 0
        for index in position..<(position + count) {
            let byte = bytes[index]
            guard byte >= 48, byte <= 57 else { return nil }
            value = value * 10 + Int(byte - 48)
        }
        position += count
        return value
    }

    mutating func fraction() -> (Int, Int)? {
        var value = 0
        var count = 0
        while position < bytes.count, bytes[position] >= 48, bytes[position] <= 57 {
            if count < 9 { value = value * 10 + Int(bytes[position] - 48) }
            count += 1
            position += 1
        }
        return count == 0 ? nil : (value, min(count, 9))
    }

    mutating func skip(_ literal: String) -> Bool {
        let expected = Array(literal.utf8)
        guard position + expected.count <= bytes.count, Array(bytes[position..<(position + expected.count)]) == expected
        else { return false }
        position += expected.count
        return true
    }

    mutating func sign() -> Int? {
        guard position < bytes.count else { return nil }
        if bytes[position] == UInt8(ascii: "+") {
            position += 1
            return 1
        }
        if bytes[position] == UInt8(ascii: "-") {
            position += 1
            return -1
        }
        return nil
    }
}
