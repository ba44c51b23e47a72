import BeckonChannels
import Testing

@Suite("SMS text: CP949 bytes and phone numbers")
struct SMSTextTests {
    @Test("CP949 counts ASCII as 1 byte and Hangul, Hanja and full-width symbols as 2; emoji cannot be carried")
    func byteCounts() throws {
        #expect(try CP949.byteCount("Hello").get() == 5)
        #expect(try CP949.byteCount("안녕하세요").get() == 10)
        #expect(try CP949.byteCount("漢字 ★ ①").get() == 2 + 2 + 1 + 2 + 1 + 2)
        #expect(try CP949.byteCount("(광고) 여름 세일\n무료거부 080-123-4567").get() == 38)
        #expect(try CP949.byteCount(String(repeating: "가", count: 45)).get() == 90)
        #expect(try CP949.byteCount("똠방각하 뷁").get() == 11, "all 11,172 Hangul syllables are in CP949 (UHC), not only EUC-KR's 2,350")
        let emoji = CP949.firstUnencodable("세일 😀 시작")
        #expect(emoji?.character == "😀" && emoji?.offset == 3)
        #expect(emoji?.description == "'😀' (U+1F600) at character 4")
        #expect(CP949.firstUnencodable("Ａ가→♥") == nil, "full-width Latin, arrows and hearts are in CP949")
    }

    @Test("phone numbers: Korean domestic and international forms, other countries, and what is not a number")
    func phoneNumbers() throws {
        for form in ["010-1234-5678", "01012345678", "+82 10 1234 5678", "+82-010-1234-5678", "(010) 1234.5678", "0082 10 1234 5678"] {
            let number = try PhoneNumber.parse(form).get()
            #expect(number.e164 == "+821012345678" && number.domestic == "01012345678" && number.isKoreanMobile, "\(form)")
        }
        let seoul = try PhoneNumber.parse("02-123-4567").get()
        #expect(seoul.domestic == "021234567" && !seoul.isKoreanMobile && seoul.e164 == "+8221234567")
        #expect(try PhoneNumber.parse("1588-1234").get().domestic == "15881234", "representative numbers (senders)")
        let american = try PhoneNumber.parse("+1 415 555 0100").get()
        #expect(american.e164 == "+14155550100" && american.domestic == nil && american.vendorForm == "+14155550100")
        for bad in ["", "hello", "1234", "010-12", "+0 123", "010-1234-5678 ext 9", "+82 10 1234 5678 9999 9999"] {
            guard case .failure = PhoneNumber.parse(bad) else {
                Issue.record("'\(bad)' was taken as a phone number")
                continue
            }
        }
        if case .failure(let error) = PhoneNumber.parse("010-1234-567x") { #expect(error.description.contains("'x'")) }
    }
}
