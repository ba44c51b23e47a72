import Foundation

/// Liquid's standard filters and Braze's additions.
enum Filters {
    struct Failure: Error { let message: String }

    static func apply(
        _ name: String, to input: LiquidValue, arguments: [LiquidValue], keywords: [String: LiquidValue], renderer: Renderer, line: Int
    ) throws -> LiquidValue {
        do {
            if BrazeFilters.names.contains(name), let result = try BrazeFilters.apply(name, input, arguments, renderer) { return result }
            if let result = try standard(name, input, arguments, keywords, renderer) { return result }
        } catch let failure as Failure {
            throw LiquidRenderError(failure.message, line: line)
        }
        if renderer.strict { throw LiquidRenderError("undefined filter '\(name)'", line: line) }
        return input
    }

    static func argument(_ arguments: [LiquidValue], _ index: Int, _ filter: String) throws -> LiquidValue {
        guard index < arguments.count else { throw Failure(message: "\(filter): wrong number of arguments (given \(arguments.count), expected \(index + 1))") }
        return arguments[index]
    }

    static func requireArity(_ arguments: [LiquidValue], _ range: ClosedRange<Int>, _ filter: String) throws {
        guard range.contains(arguments.count) else {
            throw Failure(message: "\(filter): wrong number of arguments (given \(arguments.count), expected \(range.lowerBound == range.upperBound ? "\(range.lowerBound)" : "\(range.lowerBound)..\(range.upperBound)"))")
        }
    }

    /// Numbers from numbers and numeric strings, as Ruby Liquid's `Utils.to_number`.
    static func number(_ value: LiquidValue) -> LiquidValue {
        switch value {
        case .int, .double: return value
        case .string(let text):
            let trimmed = text.trimmingSpaces
            if let integer = Int(trimmed) { return .int(integer) }
            if let match = trimmed.range(of: #"^-?\d+\.\d+"#, options: .regularExpression), let double = Double(trimmed[match]) {
                return .double(double)
            }
            if let match = trimmed.range(of: #"^-?\d+"#, options: .regularExpression), let integer = Int(trimmed[match]) {
                return .int(integer)
            }
            return .int(0)
        default: return .int(0)
        }
    }

    static func integerArgument(_ value: LiquidValue, _ filter: String) throws -> Int {
        switch value {
        case .int(let number): return number
        case .double(let number): return Int(number)
        case .string(let text):
            guard let number = Int(text.trimmingSpaces) else { throw Failure(message: "\(filter): invalid integer") }
            return number
        case .nil: return 0
        default: throw Failure(message: "\(filter): invalid integer")
        }
    }

    static func arithmetic(_ left: LiquidValue, _ right: LiquidValue, int: (Int, Int) -> (Int, Bool), double: (Double, Double) -> Double) -> LiquidValue {
        switch (number(left), number(right)) {
        case (.int(let a), .int(let b)):
            let (result, overflow) = int(a, b)
            return overflow ? .double(double(Double(a), Double(b))) : .int(result)
        case (let a, let b):
            return .double(decimal(double(a.number ?? 0, b.number ?? 0)))
        }
    }

    /// Float results rounded to 15 significant digits, so `10.1 - 2.2` is `7.9` as Ruby's decimal
    /// arithmetic gives, not `7.8999999999999995`.
    static func decimal(_ value: Double) -> Double {
        guard value.isFinite, value != 0 else { return value }
        let scale = pow(10.0, 15 - (log10(abs(value))).rounded(.up))
        guard scale.isFinite, scale > 0 else { return value }
        return (value * scale).rounded() / scale
    }

    static func scalars(_ text: String) -> [Unicode.Scalar] { Array(text.unicodeScalars) }

    static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }

    static func inputArray(_ value: LiquidValue) -> [LiquidValue] {
        switch value {
        case .array(let items): return items
        case .range: return value.elements
        case .nil: return []
        default: return [value]
        }
    }

    static func flattened(_ value: LiquidValue) -> [LiquidValue] {
        inputArray(value).flatMap { item -> [LiquidValue] in
            if case .array = item { return flattened(item) }
            return [item]
        }
    }

    static func property(_ item: LiquidValue, _ key: String, _ renderer: Renderer) -> LiquidValue {
        renderer.property(item, key)
    }

    // swiftlint:disable:next cyclomatic_complexity function_body_length
    static func standard(
        _ name: String, _ input: LiquidValue, _ arguments: [LiquidValue], _ keywords: [String: LiquidValue], _ renderer: Renderer
    ) throws -> LiquidValue? {
        switch name {
        case "abs":
            try requireArity(arguments, 0...0, name)
            switch number(input) {
            case .int(let value): return .int(value == Int.min ? value : abs(value))
            case .double(let value): return .double(abs(value))
            default: return .int(0)
            }
        case "append":
            try requireArity(arguments, 1...1, name)
            return .string(input.text + arguments[0].text)
        case "prepend":
            try requireArity(arguments, 1...1, name)
            return .string(arguments[0].text + input.text)
        case "at_least", "at_most":
            try requireArity(arguments, 1...1, name)
            let a = number(input)
            let b = number(arguments[0])
            let pickFirst = name == "at_least" ? (a.number ?? 0) >= (b.number ?? 0) : (a.number ?? 0) <= (b.number ?? 0)
            return pickFirst ? a : b
        case "base64_encode", "base64_url_safe_encode":
            try requireArity(arguments, 0...0, name)
            var encoded = Data(input.text.utf8).base64EncodedString()
            if name == "base64_url_safe_encode" {
                encoded = encoded.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            }
            return .string(encoded)
        case "base64_decode", "base64_url_safe_decode":
            try requireArity(arguments, 0...0, name)
            var text = input.text
            if name == "base64_url_safe_decode" {
                text = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            }
            while text.count % 4 != 0 { text += "=" }
            guard let data = Data(base64Encoded: text) else { throw Failure(message: "\(name): invalid base64 provided") }
            return .string(String(decoding: data, as: UTF8.self))
        case "capitalize":
            try requireArity(arguments, 0...0, name)
            let text = input.text
            guard let first = text.first else { return .string("") }
            return .string(String(first).uppercased() + text.dropFirst().lowercased())
        case "ceil", "floor", "round":
            try requireArity(arguments, name == "round" ? 0...1 : 0...0, name)
            let value = number(input)
            if name == "round", let digitsValue = arguments.first {
                let digits = (try? integerArgument(digitsValue, name)) ?? 0
                if digits < 0 { return .int(0) }
                if case .int = value { return value }
                if digits > 0 {
                    let factor = pow(10.0, Double(digits))
                    return .double(((value.number ?? 0) * factor).rounded(.toNearestOrAwayFromZero) / factor)
                }
            }
            if case .int = value { return value }
            let rule: FloatingPointRoundingRule = name == "ceil" ? .up : name == "floor" ? .down : .toNearestOrAwayFromZero
            let rounded = (value.number ?? 0).rounded(rule)
            return rounded.isFinite && abs(rounded) < 9e18 ? .int(Int(rounded)) : .double(rounded)
        case "compact":
            try requireArity(arguments, 0...1, name)
            if let key = arguments.first {
                return .array(inputArray(input).filter { property($0, key.text, renderer) != .nil })
            }
            return .array(inputArray(input).filter { $0 != .nil })
        case "concat":
            try requireArity(arguments, 1...1, name)
            guard case .array(let other) = arguments[0] else { throw Failure(message: "concat: argument must be an array") }
            return .array(flattened(input) + other)
        case "date":
            try requireArity(arguments, 1...1, name)
            return try DateFilter.format(input, arguments.first, renderer: renderer)
        case "default":
            try requireArity(arguments, 0...1, name)
            let allowFalse = keywords["allow_false"]?.isTruthy ?? false
            let fallback = arguments.first ?? .string("")
            if case .bool(false) = input, allowFalse { return input }
            return input.isTruthy && !input.isEmpty ? input : fallback
        case "divided_by":
            try requireArity(arguments, 1...1, name)
            let divisor = number(arguments[0])
            switch (number(input), divisor) {
            case (.int(let a), .int(let b)):
                guard b != 0 else { throw Failure(message: "divided by 0") }
                let quotient = Double(a) / Double(b)
                return .int(Int(quotient.rounded(.down)))
            case (let a, let b):
                guard (b.number ?? 0) != 0 || a.number == nil else {
                    if case .int = b { throw Failure(message: "divided by 0") }
                    return .double((a.number ?? 0) / (b.number ?? 0))
                }
                return .double((a.number ?? 0) / (b.number ?? 0))
            }
        case "downcase":
            try requireArity(arguments, 0...0, name)
            return .string(input.text.lowercased())
        case "upcase":
            try requireArity(arguments, 0...0, name)
            return .string(input.text.uppercased())
        case "escape", "h":
            try requireArity(arguments, 0...0, name)
            if case .nil = input { return .nil }
            return .string(escapeHTML(input.text))
        case "escape_once":
            try requireArity(arguments, 0...0, name)
            return .string(escapeOnce(input.text))
        case "find", "find_index", "has", "reject", "where":
            return try collectionQuery(name, input, arguments, renderer)
        case "first", "last":
            try requireArity(arguments, 0...0, name)
            switch input {
            case .object(let object):
                guard name == "first", let key = object.keys.first else { return .nil }
                return .array([.string(key), object[key]])
            case .array(let items): return (name == "first" ? items.first : items.last) ?? .nil
            case .string(let text):
                guard let character = name == "first" ? text.first : text.last else { return .nil }
                return .string(String(character))
            case .range: return (name == "first" ? input.elements.first : input.elements.last) ?? .nil
            default: return .nil
            }
        case "join":
            try requireArity(arguments, 0...1, name)
            let separator = arguments.first?.text ?? " "
            switch input {
            case .array, .range: return .string(flattened(input).map(\.text).joined(separator: separator))
            default: return .string(input.text)
            }
        case "lstrip":
            try requireArity(arguments, 0...0, name)
            return .string(String(input.text.drop(while: \.isWhitespace)))
        case "rstrip":
            try requireArity(arguments, 0...0, name)
            return .string(String(input.text.reversed().drop(while: \.isWhitespace).reversed()))
        case "strip":
            try requireArity(arguments, 0...0, name)
            return .string(input.text.trimmingSpaces)
        case "map":
            try requireArity(arguments, 1...1, name)
            let key = arguments[0].text
            if case .object = input { return .array([property(input, key, renderer)]) }
            return .array(try flattened(input).map { item in
                switch item {
                case .object: return property(item, key, renderer)
                case .nil: return .nil
                default: throw Failure(message: "map: cannot select property of \(item.typeName)")
                }
            })
        case "minus":
            try requireArity(arguments, 1...1, name)
            return arithmetic(input, arguments[0], int: { $0.subtractingReportingOverflow($1) }, double: -)
        case "plus":
            try requireArity(arguments, 1...1, name)
            return arithmetic(input, arguments[0], int: { $0.addingReportingOverflow($1) }, double: +)
        case "times":
            try requireArity(arguments, 1...1, name)
            return arithmetic(input, arguments[0], int: { $0.multipliedReportingOverflow(by: $1) }, double: *)
        case "modulo":
            try requireArity(arguments, 1...1, name)
            switch (number(input), number(arguments[0])) {
            case (.int(let a), .int(let b)):
                guard b != 0 else { throw Failure(message: "divided by 0") }
                let remainder = a % b
                return .int(remainder != 0 && (remainder < 0) != (b < 0) ? remainder + b : remainder)
            case (let a, let b):
                let divisor = b.number ?? 0
                guard divisor != 0 else { throw Failure(message: "divided by 0") }
                let dividend = a.number ?? 0
                return .double(decimal(dividend - divisor * (dividend / divisor).rounded(.down)))
            }
        case "newline_to_br":
            try requireArity(arguments, 0...0, name)
            return .string(input.text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n", with: "<br />\n"))
        case "remove", "remove_first", "remove_last", "replace", "replace_first", "replace_last":
            return try replace(name, input, arguments)
        case "reverse":
            try requireArity(arguments, 0...0, name)
            return .array(inputArray(input).reversed())
        case "size":
            try requireArity(arguments, 0...0, name)
            switch input {
            case .string(let text): return .int(text.unicodeScalars.count)
            case .array(let items): return .int(items.count)
            case .object(let object): return .int(object.count)
            case .range: return .int(input.elements.count)
            default: return .int(0)
            }
        case "slice":
            try requireArity(arguments, 1...2, name)
            func whole(_ value: LiquidValue) -> Int? {
                switch value {
                case .int(let number): return number
                case .string(let text): return Int(text.trimmingSpaces)
                default: return nil
                }
            }
            guard let start = whole(arguments[0]) else { throw Failure(message: "slice: the start must be an integer") }
            var length = 1
            if arguments.count > 1, arguments[1] != .nil {
                guard let value = whole(arguments[1]) else { throw Failure(message: "slice: the length must be an integer") }
                length = value
            }
            if case .array(let items) = input {
                let from = start < 0 ? items.count + start : start
                guard from >= 0, from <= items.count, length >= 0 else { return .array([]) }
                return .array(Array(items[from..<min(items.count, from + length)]))
            }
            let characters = scalars(input.text)
            let from = start < 0 ? characters.count + start : start
            guard from >= 0, from <= characters.count, length >= 0 else { return .string("") }
            return .string(string(characters[from..<min(characters.count, from + length)]))
        case "sort", "sort_natural":
            try requireArity(arguments, 0...1, name)
            let items = inputArray(input)
            let natural = name == "sort_natural"
            let sortKey = arguments.first.flatMap { $0 == .nil ? nil : $0.text }
            func key(_ item: LiquidValue) -> LiquidValue { sortKey.map { property(item, $0, renderer) } ?? item }
            let present = items.filter { key($0) != .nil }
            let missing = items.filter { key($0) == .nil }
            let sorted = try present.sorted { a, b in
                let left = key(a)
                let right = key(b)
                if natural { return left.text.lowercased() < right.text.lowercased() }
                guard let order = Comparison.order(left, right) else {
                    throw Failure(message: "comparison of \(left.typeName) with \(right.typeName) failed")
                }
                return order < 0
            }
            return .array(sorted + missing)
        case "split":
            try requireArity(arguments, 1...1, name)
            let text = input.text
            let separator = arguments[0].text
            if text.isEmpty { return .array([]) }
            var parts: [String]
            if separator.isEmpty {
                parts = text.map(String.init)
            } else if separator == " " {
                parts = text.split(whereSeparator: \.isWhitespace).map(String.init)
            } else {
                parts = text.components(separatedBy: separator)
                while parts.last == "" { parts.removeLast() }
            }
            return .array(parts.map { .string($0) })
        case "strip_html":
            try requireArity(arguments, 0...0, name)
            var text = input.text
            for pattern in [#"<script.*?</script>"#, #"<!--.*?-->"#, #"<style.*?</style>"#, #"<.*?>"#] {
                if let expression = try? NSRegularExpression(pattern: pattern, options: [.caseInsensitive, .dotMatchesLineSeparators]) {
                    text = expression.stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text), withTemplate: "")
                }
            }
            return .string(text)
        case "strip_newlines":
            try requireArity(arguments, 0...0, name)
            return .string(input.text.replacingOccurrences(of: "\r\n", with: "").replacingOccurrences(of: "\n", with: "").replacingOccurrences(of: "\r", with: ""))
        case "sum":
            try requireArity(arguments, 0...1, name)
            var total: LiquidValue = .int(0)
            for item in flattened(input) {
                if arguments.first != nil, item != .nil {
                    guard case .object = item else { throw Failure(message: "sum: cannot select a property of \(item.typeName)") }
                }
                let value = arguments.first.map { property(item, $0.text, renderer) } ?? item
                let numeric: LiquidValue
                switch value {
                case .int, .double: numeric = value
                case .string: numeric = number(value)
                default: numeric = .int(0)
                }
                total = arithmetic(total, numeric, int: { $0.addingReportingOverflow($1) }, double: +)
            }
            return total
        case "truncate":
            try requireArity(arguments, 0...2, name)
            if let first = arguments.first, case .nil = first { throw Failure(message: "truncate: the length must be an integer") }
            let length = arguments.isEmpty ? 50 : try integerArgument(arguments[0], name)
            let ellipsis = arguments.count > 1 ? arguments[1].text : "..."
            let characters = scalars(input.text)
            guard characters.count > length else { return .string(input.text) }
            let keep = max(0, length - ellipsis.unicodeScalars.count)
            return .string(string(characters[0..<min(keep, characters.count)]) + ellipsis)
        case "truncatewords":
            try requireArity(arguments, 0...2, name)
            if let first = arguments.first, case .nil = first { throw Failure(message: "truncatewords: the word count must be an integer") }
            let count = max(1, arguments.isEmpty ? 15 : try integerArgument(arguments[0], name))
            let ellipsis = arguments.count > 1 ? arguments[1].text : "..."
            let words = input.text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" })
            guard words.count > count else { return .string(input.text) }
            return .string(words.prefix(count).joined(separator: " ") + ellipsis)
        case "uniq":
            try requireArity(arguments, 0...1, name)
            var seen: [LiquidValue] = []
            var result: [LiquidValue] = []
            for item in inputArray(input) {
                let key = arguments.first.map { property(item, $0.text, renderer) } ?? item
                if !seen.contains(where: { Comparison.equal($0, key) }) {
                    seen.append(key)
                    result.append(item)
                }
            }
            return .array(result)
        case "url_encode":
            try requireArity(arguments, 0...0, name)
            if case .nil = input { return .nil }
            return .string(urlEncode(input.text))
        case "url_decode":
            try requireArity(arguments, 0...0, name)
            let text = input.text.replacingOccurrences(of: "+", with: " ")
            guard let decoded = text.removingPercentEncoding else { throw Failure(message: "url_decode: invalid percent encoding") }
            return .string(decoded)
        default:
            return nil
        }
    }

    static func collectionQuery(_ name: String, _ input: LiquidValue, _ arguments: [LiquidValue], _ renderer: Renderer) throws -> LiquidValue {
        try requireArity(arguments, 1...2, name)
        let items: [LiquidValue]
        switch input {
        case .object, .string: items = [input]
        default: items = flattened(input)
        }
        let key = arguments[0].text
        let target = arguments.count > 1 ? arguments[1] : .nil
        func matches(_ item: LiquidValue) throws -> Bool {
            switch item {
            case .nil: return false
            case .object:
                let value = property(item, key, renderer)
                if case .nil = target { return value.isTruthy }
                return Comparison.equal(value, target)
            case .string(let text):
                if case .nil = target { return text.contains(key) }
                return text.contains(target.text)
            default:
                if case .nil = target {
                    if case .string = arguments[0] { throw Failure(message: "\(name): cannot compare \(item.typeName) with String") }
                    return Comparison.equal(item, arguments[0])
                }
                return false
            }
        }
        switch name {
        case "where": return .array(try items.filter(matches))
        case "reject": return .array(try items.filter { try !matches($0) })
        case "find": return try items.first(where: matches) ?? .nil
        case "find_index": return try items.firstIndex(where: matches).map { .int($0) } ?? .nil
        default: return .bool(try items.contains(where: matches))
        }
    }

    static func replace(_ name: String, _ input: LiquidValue, _ arguments: [LiquidValue]) throws -> LiquidValue {
        let isRemove = name.hasPrefix("remove")
        try requireArity(arguments, isRemove ? 1...1 : name == "replace_last" ? 2...2 : 1...2, name)
        let text = input.text
        let target = arguments[0].text
        let replacement = isRemove ? "" : (arguments.count > 1 ? arguments[1].text : "")
        if name.hasSuffix("_first") {
            guard let range = text.range(of: target) else { return .string(text) }
            return .string(text.replacingCharacters(in: range, with: replacement))
        }
        if name.hasSuffix("_last") {
            guard let range = text.range(of: target, options: .backwards) else { return .string(text) }
            return .string(text.replacingCharacters(in: range, with: replacement))
        }
        if target.isEmpty {
            return .string(replacement + text.map { String($0) + replacement }.joined())
        }
        return .string(text.replacingOccurrences(of: target, with: replacement))
    }

    static func escapeHTML(_ text: String) -> String {
        var result = ""
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }

    static func escapeOnce(_ text: String) -> String {
        let pattern = try? NSRegularExpression(pattern: #"&(?!(?:[a-zA-Z]+|#\d+|#x[0-9a-fA-F]+);)|[<>"']"#)
        guard let pattern else { return escapeHTML(text) }
        var result = ""
        var last = text.startIndex
        for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
            guard let range = Range(match.range, in: text) else { continue }
            result += text[last..<range.lowerBound]
            result += escapeHTML(String(text[range]))
            last = range.upperBound
        }
        return result + text[last...]
    }

    static func urlEncode(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "*"):
                result.append(Character(Unicode.Scalar(byte)))
            case UInt8(ascii: " "):
                result += "+"
            default:
                result += String(format: "%%%02X", byte)
            }
        }
        return result
    }
}
