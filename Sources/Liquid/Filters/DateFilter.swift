import Foundation

/// The `date` filter: parses what templates pass (`now`, `today`, Unix times, ISO 8601 and common
/// date strings) and formats with Ruby's `strftime` directives.
enum DateFilter {
    static func format(_ input: LiquidValue, _ formatValue: LiquidValue?, renderer: Renderer) throws -> LiquidValue {
        guard let formatValue, case .string(let pattern) = formatValue, !pattern.isEmpty else { return input }
        guard let date = parse(input, now: renderer.environment.now) else { return input }
        return .string(strftime(pattern, date, timeZone: renderer.environment.timeZone))
    }

    static func parse(_ value: LiquidValue, now: Date) -> Date? {
        switch value {
        case .int(let seconds): return Date(timeIntervalSince1970: Double(seconds))
        case .double(let seconds): return Date(timeIntervalSince1970: seconds)
        case .string(let raw):
            let text = raw.trimmingSpaces
            if text.lowercased() == "now" || text.lowercased() == "today" { return now }
            if let seconds = Double(text), text.allSatisfy({ $0.isNumber || $0 == "." || $0 == "-" }) {
                return Date(timeIntervalSince1970: seconds)
            }
            return parseText(text)
        default: return nil
        }
    }

    static let formats = [
        "yyyy-MM-dd'T'HH:mm:ss.SSSXXXXX", "yyyy-MM-dd'T'HH:mm:ssXXXXX", "yyyy-MM-dd'T'HH:mm:ss.SSS", "yyyy-MM-dd'T'HH:mm:ss",
        "yyyy-MM-dd HH:mm:ss XXXXX", "yyyy-MM-dd HH:mm:ss Z", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd HH:mm", "yyyy-MM-dd",
        "MMMM d, yyyy", "MMM d, yyyy", "d MMMM yyyy", "EEE, d MMM yyyy HH:mm:ss Z", "EEE MMM d HH:mm:ss yyyy", "MM/dd/yyyy",
        "yyyy/MM/dd",
    ]

    static func parseText(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        for format in formats {
            formatter.dateFormat = format
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }

    static let weekdays = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
    static let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]

    static func strftime(_ pattern: String, _ date: Date, timeZone: TimeZone) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday, .nanosecond], from: date)
        let year = parts.year ?? 1970, month = parts.month ?? 1, day = parts.day ?? 1
        let hour = parts.hour ?? 0, minute = parts.minute ?? 0, second = parts.second ?? 0
        let weekday = (parts.weekday ?? 1) - 1
        let dayOfYear = calendar.ordinality(of: .day, in: .year, for: date) ?? 1
        let offset = timeZone.secondsFromGMT(for: date)
        var output = ""
        var iterator = pattern.makeIterator()
        func pad(_ value: Int, _ width: Int, _ padding: Character) -> String {
            let text = String(value)
            return String(repeating: padding, count: max(0, width - text.count)) + text
        }
        while let character = iterator.next() {
            guard character == "%" else {
                output.append(character)
                continue
            }
            guard var directive = iterator.next() else {
                output.append("%")
                break
            }
            var flag: Character?
            if directive == "-" || directive == "_" || directive == "0" || directive == "^" {
                flag = directive
                guard let next = iterator.next() else { break }
                directive = next
            }
            func number(_ value: Int, _ width: Int, _ padding: Character = "0") -> String {
                switch flag {
                case "-": return String(value)
                case "_": return pad(value, width, " ")
                default: return pad(value, width, padding)
                }
            }
            var text: String
            switch directive {
            case "Y": text = String(year)
            case "C": text = number(year / 100, 2)
            case "y": text = number(year % 100, 2)
            case "m": text = number(month, 2)
            case "B": text = months[month - 1]
            case "b", "h": text = String(months[month - 1].prefix(3))
            case "d": text = number(day, 2)
            case "e": text = number(day, 2, " ")
            case "j": text = number(dayOfYear, 3)
            case "H": text = number(hour, 2)
            case "k": text = number(hour, 2, " ")
            case "I": text = number(hour % 12 == 0 ? 12 : hour % 12, 2)
            case "l": text = number(hour % 12 == 0 ? 12 : hour % 12, 2, " ")
            case "M": text = number(minute, 2)
            case "S": text = number(second, 2)
            case "L": text = pad((parts.nanosecond ?? 0) / 1_000_000, 3, "0")
            case "N": text = pad(parts.nanosecond ?? 0, 9, "0")
            case "p": text = hour < 12 ? "AM" : "PM"
            case "P": text = hour < 12 ? "am" : "pm"
            case "A": text = weekdays[weekday]
            case "a": text = String(weekdays[weekday].prefix(3))
            case "u": text = String(weekday == 0 ? 7 : weekday)
            case "w": text = String(weekday)
            case "s": text = String(Int(date.timeIntervalSince1970.rounded(.down)))
            case "z":
                let sign = offset < 0 ? "-" : "+"
                text = sign + pad(abs(offset) / 3600, 2, "0") + pad(abs(offset) % 3600 / 60, 2, "0")
            case "Z": text = timeZone.abbreviation(for: date) ?? "UTC"
            case "D", "x": text = strftime("%m/%d/%y", date, timeZone: timeZone)
            case "F": text = strftime("%Y-%m-%d", date, timeZone: timeZone)
            case "T", "X": text = strftime("%H:%M:%S", date, timeZone: timeZone)
            case "R": text = strftime("%H:%M", date, timeZone: timeZone)
            case "r": text = strftime("%I:%M:%S %p", date, timeZone: timeZone)
            case "c": text = strftime("%a %b %e %H:%M:%S %Y", date, timeZone: timeZone)
            case "U":
                text = number((dayOfYear + 6 - weekday) / 7, 2)
            case "W":
                text = number((dayOfYear + 6 - (weekday + 6) % 7) / 7, 2)
            case "%": text = "%"
            case "n": text = "\n"
            case "t": text = "\t"
            default: text = "%" + (flag.map(String.init) ?? "") + String(directive)
            }
            if flag == "^" { text = text.uppercased() }
            output += text
        }
        return output
    }
}
