import Foundation

/// Braze's filters beyond Shopify's (reference §7.4).
enum BrazeFilters {
    /// Every filter name handled here (checked before the standard filters).
    static let names: Set<String> = [
        "number_with_delimiter", "money", "md5", "sha1", "sha2", "hmac_sha1", "hmac_sha1_hex", "hmac_sha1_base64", "hmac_sha256",
        "hmac_sha256_hex", "hmac_sha256_base64", "hmac_sha512", "url_escape", "url_param_escape", "json_escape", "json_parse",
        "as_json_string", "property_accessor", "time_zone",
    ]

    static func apply(_ name: String, _ input: LiquidValue, _ arguments: [LiquidValue], _ renderer: Renderer) throws -> LiquidValue? {
        switch name {
        case "number_with_delimiter":
            let delimiter = arguments.first?.text ?? ","
            let value = Filters.number(input)
            let text: String
            switch value {
            case .int(let number): text = String(number)
            case .double(let number): text = LiquidValue.format(number)
            default: text = input.text
            }
            let negative = text.hasPrefix("-")
            let unsigned = negative ? String(text.dropFirst()) : text
            let parts = unsigned.split(separator: ".", maxSplits: 1)
            var grouped = ""
            for (index, digit) in parts[0].reversed().enumerated() {
                if index > 0, index % 3 == 0 { grouped.append(contentsOf: delimiter.reversed()) }
                grouped.append(digit)
            }
            var result = (negative ? "-" : "") + String(grouped.reversed())
            if parts.count > 1 { result += "." + parts[1] }
            return .string(result)
        case "money":
            return .string(String(format: "%.2f", Filters.number(input).number ?? 0))
        case "md5", "sha1", "sha2":
            let algorithm: Digest.Algorithm = name == "md5" ? .md5 : name == "sha1" ? .sha1 : .sha256
            return .string(Digest.hex(Digest.hash(Array(input.text.utf8), algorithm)))
        case "hmac_sha1", "hmac_sha1_hex", "hmac_sha1_base64", "hmac_sha256", "hmac_sha256_hex", "hmac_sha256_base64", "hmac_sha512":
            try Filters.requireArity(arguments, 1...1, name)
            let algorithm: Digest.Algorithm = name.hasPrefix("hmac_sha1") ? .sha1 : name == "hmac_sha512" ? .sha512 : .sha256
            let digest = Digest.hmac(key: Array(arguments[0].text.utf8), message: Array(input.text.utf8), algorithm)
            return .string(name.hasSuffix("base64") ? Data(digest).base64EncodedString() : Digest.hex(digest))
        case "url_escape":
            return .string(input.text.addingPercentEncoding(withAllowedCharacters: urlAllowed) ?? input.text)
        case "url_param_escape":
            return .string(input.text.addingPercentEncoding(withAllowedCharacters: parameterAllowed) ?? input.text)
        case "json_escape":
            return .string(String(json(.string(input.text)).dropFirst().dropLast()))
        case "json_parse":
            return (try? LiquidValue(json: Data(input.text.utf8))) ?? .nil
        case "as_json_string":
            return .string(json(input))
        case "property_accessor":
            try Filters.requireArity(arguments, 1...1, name)
            return renderer.property(input, arguments[0].text)
        case "time_zone":
            try Filters.requireArity(arguments, 1...1, name)
            guard let date = DateFilter.parse(input, now: renderer.environment.now),
                let zone = TimeZone(identifier: arguments[0].text)
            else { return input }
            let shifted = date.addingTimeInterval(Double(zone.secondsFromGMT(for: date) - renderer.environment.timeZone.secondsFromGMT(for: date)))
            return .int(Int(shifted.timeIntervalSince1970))
        default:
            return nil
        }
    }

    static let urlAllowed: CharacterSet = {
        var set = CharacterSet.urlQueryAllowed
        set.insert(charactersIn: "/:?#[]@!$&'()*+,;=")
        set.remove(charactersIn: "<>\"{}|\\^` ")
        return set
    }()

    static let parameterAllowed: CharacterSet = {
        var set = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)...Unicode.Scalar(127)))
        set.insert(charactersIn: "-._~")
        return set
    }()

    /// JSON text of a value (Braze's `as_json_string`).
    static func json(_ value: LiquidValue) -> String {
        switch value {
        case .nil: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .int(let number): return String(number)
        case .double(let number): return LiquidValue.format(number)
        case .string(let text):
            var result = "\""
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": result += "\\\""
                case "\\": result += "\\\\"
                case "\n": result += "\\n"
                case "\r": result += "\\r"
                case "\t": result += "\\t"
                default:
                    if scalar.value < 0x20 { result += String(format: "\\u%04x", scalar.value) } else { result.unicodeScalars.append(scalar) }
                }
            }
            return result + "\""
        case .array(let items): return "[" + items.map(json).joined(separator: ",") + "]"
        case .range: return json(.array(value.elements))
        case .object(let object): return "{" + object.keys.map { json(.string($0)) + ":" + json(object[$0]) }.joined(separator: ",") + "}"
        }
    }
}
