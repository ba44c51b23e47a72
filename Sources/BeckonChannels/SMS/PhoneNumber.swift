import Foundation

/// A phone number as SMS vendors take it: normalised from the forms users type (`010-1234-5678`,
/// `+82 10 1234 5678`, `(02) 123-4567`, `+1 415 555 0100`) to E.164 and, for Korean numbers, the
/// bare domestic form Korean vendors want (`01012345678`).
public struct PhoneNumber: Sendable, Hashable {
    /// `+821012345678`.
    public let e164: String
    /// `01012345678` for Korean numbers; nil for other countries.
    public let domestic: String?

    /// Whether it is a Korean mobile number (010, 011, 016–019), the only kind that receives SMS in Korea.
    public var isKoreanMobile: Bool {
        guard let domestic else { return false }
        return ["010", "011", "016", "017", "018", "019"].contains(String(domestic.prefix(3)))
    }

    /// The number to hand a Korean vendor: domestic when Korean, E.164 otherwise.
    public var vendorForm: String { domestic ?? e164 }

    /// Parses `text`, or explains why it is not a phone number.
    public static func parse(_ text: String) -> Result<PhoneNumber, PhoneNumberError> {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { return .failure(PhoneNumberError("is empty")) }
        var digits = ""
        var international = false
        for (index, character) in trimmed.enumerated() {
            if character == "+", index == 0 {
                international = true
            } else if let digit = character.wholeNumberValue, character.isASCII {
                digits.append(String(digit))
            } else if !" -.()/".contains(character) {
                return .failure(PhoneNumberError("'\(trimmed.prefix(40))' has a character a phone number cannot have: '\(character)'"))
            }
        }
        if !international, digits.hasPrefix("00") {
            // 00 is the international prefix in most countries (001, 002 and 00700 in Korea: carrier codes before the country code).
            international = true
            for carrier in ["00700", "001", "002"] where digits.hasPrefix(carrier) {
                digits.removeFirst(carrier.count)
                break
            }
            if digits.hasPrefix("00") { digits.removeFirst(2) }
        }
        if international {
            guard (8...15).contains(digits.count), digits.first != "0" else {
                return .failure(PhoneNumberError("'\(trimmed.prefix(40))' is not an international number (+, country code, 7 to 14 more digits)"))
            }
            if digits.hasPrefix("82") {
                var national = String(digits.dropFirst(2))
                if national.hasPrefix("0") { national.removeFirst() }  // +82 010… written with the trunk 0
                return korean("0" + national, original: trimmed)
            }
            return .success(PhoneNumber(e164: "+" + digits, domestic: nil))
        }
        return korean(digits, original: trimmed)
    }

    /// A Korean number in domestic form: 0 and 8 to 10 more digits (02 Seoul, 031–064 regions,
    /// 070 internet phones, 01x mobiles), or a 15xx/16xx/18xx representative number of 8 digits.
    private static func korean(_ digits: String, original: String) -> Result<PhoneNumber, PhoneNumberError> {
        if digits.count == 8, ["15", "16", "18"].contains(String(digits.prefix(2))) {
            return .success(PhoneNumber(e164: "+82" + digits, domestic: digits))
        }
        guard digits.hasPrefix("0"), (9...11).contains(digits.count) else {
            return .failure(PhoneNumberError(
                "'\(original.prefix(40))' is not a phone number (Korean numbers: 0 and 8 to 10 more digits such as 010-1234-5678; others: +country code)"))
        }
        if digits.hasPrefix("01"), digits.count < 10 {
            return .failure(PhoneNumberError("'\(original.prefix(40))' is too short for a Korean mobile number (010-1234-5678)"))
        }
        return .success(PhoneNumber(e164: "+82" + digits.dropFirst(), domestic: digits))
    }
}

/// Why a text is not a phone number.
public struct PhoneNumberError: Error, Sendable, CustomStringConvertible {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
