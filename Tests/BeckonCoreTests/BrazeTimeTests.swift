import BeckonCore
import Foundation
import Testing

@Suite("Braze time formats")
struct BrazeTimeTests {
    @Test("accepted formats", arguments: [
        ("2025-06-30T15:00:00Z", "2025-06-30T15:00:00.000Z"),
        ("2025-06-30T15:00:00.123Z", "2025-06-30T15:00:00.123Z"),
        ("2025-07-01T00:00:00+09:00", "2025-06-30T15:00:00.000Z"),
        ("2025-07-01T00:00:00+0900", "2025-06-30T15:00:00.000Z"),
        ("2025-06-30T15:00:00:500Z", "2025-06-30T15:00:00.500Z"),
        ("2025-06-30T15:00:00", "2025-06-30T15:00:00.000Z"),
        ("2025-06-30 15:00:00", "2025-06-30T15:00:00.000Z"),
        ("2025-06-30", "2025-06-30T00:00:00.000Z"),
        ("06/30/2025", "2025-06-30T00:00:00.000Z"),
        ("1960-02-29T00:00:00Z", "1960-02-29T00:00:00.000Z"),
    ])
    func parses(input: String, expected: String) throws {
        let date = try #require(BrazeTime.parse(input))
        #expect(BrazeTime.format(date) == expected)
    }

    @Test("rejected inputs", arguments: ["", "yesterday", "2025-13-01", "2025-02-30", "2025-06-30T25:00:00Z", "2025-06-30T10:00:00Zjunk", "30/06/2025"])
    func rejects(input: String) {
        #expect(BrazeTime.parse(input) == nil)
    }
}

@Suite("JSON parser")
struct JSONParserTests {
    @Test("keeps booleans, integers, doubles and unicode apart")
    func types() throws {
        let value = try JSONValue.parse(Array(#"{"b": true, "i": 1, "d": 1.5, "big": 9007199254740993, "s": "지민 \u00e9 \ud83d\ude00", "n": null, "a": [1, "x"]}"#.utf8))
        #expect(value["b"] == .bool(true))
        #expect(value["i"] == .int(1))
        #expect(value["d"] == .double(1.5))
        #expect(value["big"] == .int(9_007_199_254_740_993))
        #expect(value["s"] == .string("지민 é 😀"))
        #expect(value["n"] == .null)
        #expect(value["a"] == .array([.int(1), .string("x")]))
    }

    @Test("syntax errors name the line and column", arguments: [
        ("{\"a\": }", "line 1"), ("{\n\"a\": NaN}", "line 2, column 6"), ("[1, 2", "unexpected end"), ("{\"a\": 1} x", "after the JSON value"),
        ("\"\\ud800\"", "surrogate"), ("01", "after the JSON value"),
    ])
    func errors(input: String, fragment: String) {
        #expect {
            _ = try JSONValue.parse(Array(input.utf8))
        } throws: { error in
            "\(error)".contains(fragment)
        }
    }

    @Test("deep nesting is refused, not a stack overflow")
    func depth() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: JSONValueError.self) { _ = try JSONValue.parse(Array(deep.utf8)) }
    }

    @Test("serialization round-trips with sorted keys")
    func roundTrip() throws {
        let text = #"{"a":[1,2.5,"q\"uote\n"],"b":{"c":null,"d":false},"k":"한국어"}"#
        #expect(try JSONValue.parse(Array(text.utf8)).serialized() == text)
    }
}
