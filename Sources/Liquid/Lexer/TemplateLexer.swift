/// Splits a template into text, `{{ output }}` and `{% tag %}` tokens, applying whitespace control.
struct TemplateLexer {
    enum Kind: Equatable { case text, output, tag }

    struct Token {
        var kind: Kind
        /// Text, or the markup between the delimiters (trimmed of `-`).
        var content: String
        var line: Int
        var column: Int
        var trimLeft: Bool
        var trimRight: Bool
    }

    static func tokenize(_ source: String) throws -> [Token] {
        let bytes = Array(source.utf8)
        var tokens: [Token] = []
        var position = 0
        var textStart = 0
        var line = 1
        var lineStart = 0
        var tokenLine = 1
        var tokenColumn = 1

        func advanceLines(to end: Int, from start: Int) {
            var index = start
            while index < end {
                if bytes[index] == 0x0A {
                    line += 1
                    lineStart = index + 1
                }
                index += 1
            }
        }

        func flushText(until end: Int) {
            if end > textStart {
                tokens.append(Token(kind: .text, content: String(decoding: bytes[textStart..<end], as: UTF8.self),
                                    line: tokenLine, column: tokenColumn, trimLeft: false, trimRight: false))
            }
        }

        tokenLine = 1
        tokenColumn = 1
        while position < bytes.count - 1 {
            guard bytes[position] == UInt8(ascii: "{"), bytes[position + 1] == UInt8(ascii: "{") || bytes[position + 1] == UInt8(ascii: "%") else {
                position += 1
                continue
            }
            let isTag = bytes[position + 1] == UInt8(ascii: "%")
            flushText(until: position)
            advanceLines(to: position, from: textStart)
            let startLine = line
            let startColumn = position - lineStart + 1
            var inner = position + 2
            let trimLeft = inner < bytes.count && bytes[inner] == UInt8(ascii: "-")
            if trimLeft { inner += 1 }
            var end = inner
            var found = false
            while end < bytes.count - 1 {
                if isTag {
                    if bytes[end] == UInt8(ascii: "%"), bytes[end + 1] == UInt8(ascii: "}") { found = true; break }
                } else {
                    if bytes[end] == UInt8(ascii: "$"), bytes[end + 1] == UInt8(ascii: "{") {
                        if let close = bytes[(end + 2)...].firstIndex(of: UInt8(ascii: "}")) { end = close + 1; continue }
                    }
                    if bytes[end] == UInt8(ascii: "}"), bytes[end + 1] == UInt8(ascii: "}") { found = true; break }
                }
                end += 1
            }
            guard found else {
                throw LiquidSyntaxError(
                    isTag ? "Tag '{%' was not properly terminated with '%}'" : "Variable '{{' was not properly terminated with '}}'",
                    line: startLine, column: startColumn)
            }
            var markupEnd = end
            let trimRight = markupEnd > inner && bytes[markupEnd - 1] == UInt8(ascii: "-")
            if trimRight { markupEnd -= 1 }
            let markup = inner <= markupEnd ? String(decoding: bytes[inner..<markupEnd], as: UTF8.self) : ""
            tokens.append(Token(kind: isTag ? .tag : .output, content: markup, line: startLine, column: startColumn,
                                trimLeft: trimLeft, trimRight: trimRight))
            advanceLines(to: end + 2, from: position)
            position = end + 2
            textStart = position
            tokenLine = line
            tokenColumn = position - lineStart + 1
        }
        flushText(until: bytes.count)
        return applyWhitespaceControl(tokens)
    }

    /// `{%-`/`{{-` strip white space before; `-%}`/`-}}` strip white space after.
    static func applyWhitespaceControl(_ tokens: [Token]) -> [Token] {
        var result = tokens
        for index in result.indices where result[index].kind != .text {
            if result[index].trimLeft, index > 0, result[index - 1].kind == .text {
                result[index - 1].content = String(result[index - 1].content.reversed().drop(while: \.isWhitespace).reversed())
            }
            if result[index].trimRight, index + 1 < result.count, result[index + 1].kind == .text {
                result[index + 1].content = String(result[index + 1].content.drop(while: \.isWhitespace))
            }
        }
        return result
    }
}
