/// Byte lengths in CP949 (Unified Hangul Code, the superset of EUC-KR that Korean carriers count
/// SMS and LMS in): ASCII is 1 byte, every other character CP949 carries is 2, and characters it
/// cannot carry (emoji, rare Hanja) would arrive garbled, so they are refused.
public enum CP949 {
    /// A character CP949 cannot carry, with its position (in characters) in the text.
    public struct UnencodableCharacter: Error, Sendable, Equatable {
        public let character: Character
        public let offset: Int

        /// `'😀' (U+1F600) at character 12`.
        public var description: String {
            let codes = character.unicodeScalars.map { "U+" + String($0.value, radix: 16, uppercase: true).leftPadded(4) }
            return "'\(character)' (\(codes.joined(separator: " "))) at character \(offset + 1)"
        }
    }

    /// The text's length in CP949 bytes, or the first character it cannot carry.
    public static func byteCount(_ text: String) -> Result<Int, UnencodableCharacter> {
        var bytes = 0
        for (offset, character) in text.enumerated() {
            for scalar in character.unicodeScalars {
                if scalar.isASCII {
                    bytes += 1
                } else if isEncodable(scalar.value) {
                    bytes += 2
                } else {
                    return .failure(UnencodableCharacter(character: character, offset: offset))
                }
            }
        }
        return .success(bytes)
    }

    /// The first character of `text` CP949 cannot carry, if any.
    public static func firstUnencodable(_ text: String) -> UnencodableCharacter? {
        if case .failure(let character) = byteCount(text) { return character }
        return nil
    }

    static func isEncodable(_ code: UInt32) -> Bool {
        // Binary search over the sorted, disjoint ranges.
        var low = 0
        var high = ranges.count - 1
        while low <= high {
            let middle = (low + high) / 2
            let range = ranges[middle]
            if code < range.lowerBound {
                high = middle - 1
            } else if code > range.upperBound {
                low = middle + 1
            } else {
                return true
            }
        }
        return false
    }

    private static let ranges: [ClosedRange<UInt32>] = encodableRanges.split(whereSeparator: { $0 == "," || $0 == "\n" }).compactMap { item in
        let bounds = item.split(separator: "-").compactMap { UInt32($0, radix: 16) }
        return bounds.count == 2 ? bounds[0]...bounds[1] : nil
    }
}

extension String {
    /// The string with leading zeros up to `width` characters.
    fileprivate func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
