/// Splits tag and output markup into expression tokens.
struct MarkupLexer {
    enum Token: Equatable {
        case identifier(String)
        case string(String)
        case integer(Int)
        case float(Double)
        case comparison(String)
        case dot, dotDot, pipe, colon, comma, openParen, closeParen, openBracket, closeBracket, equals
        /// Braze's `${name}` attribute reference.
        case brazeName(String)
    }

    struct Failure: Error {
        let message: String
    }

    static func tokenize(_ markup: String) throws -> [Token] {
        let chars = Array(markup.unicodeScalars)
        var tokens: [Token] = []
        var index = 0
        func isIdentifierStart(_ scalar: Unicode.Scalar) -> Bool {
            scalar == "_" || (scalar.properties.isAlphabetic)
        }
        func isIdentifierPart(_ scalar: Unicode.Scalar) -> Bool {
            isIdentifierStart(scalar) || ("0"..."9").contains(scalar) || scalar == "-" || scalar == "?"
        }
        while index < chars.count {
            let scalar = chars[index]
            if scalar.properties.isWhitespace {
                index += 1
                continue
            }
            switch scalar {
            case "'", "\"":
                var end = index + 1
                while end < chars.count, chars[end] != scalar { end += 1 }
                guard end < chars.count else { throw Failure(message: "unterminated string in '\(markup)'") }
                var text = String.UnicodeScalarView()
                text.append(contentsOf: chars[(index + 1)..<end])
                tokens.append(.string(String(text)))
                index = end + 1
            case "$" where index + 1 < chars.count && chars[index + 1] == "{":
                var end = index + 2
                while end < chars.count, chars[end] != "}" { end += 1 }
                guard end < chars.count else { throw Failure(message: "'${' is not closed with '}'") }
                var text = String.UnicodeScalarView()
                text.append(contentsOf: chars[(index + 2)..<end])
                tokens.append(.brazeName(String(text).trimmingSpaces))
                index = end + 1
            case _ where ("0"..."9").contains(scalar) || (scalar == "-" && index + 1 < chars.count && ("0"..."9").contains(chars[index + 1])):
                var end = index + 1
                var sawDot = false
                while end < chars.count {
                    if ("0"..."9").contains(chars[end]) {
                        end += 1
                    } else if chars[end] == ".", !sawDot, end + 1 < chars.count, ("0"..."9").contains(chars[end + 1]) {
                        sawDot = true
                        end += 1
                    } else {
                        break
                    }
                }
                var text = String.UnicodeScalarView()
                text.append(contentsOf: chars[index..<end])
                let literal = String(text)
                if sawDot {
                    tokens.append(.float(Double(literal) ?? 0))
                } else if let integer = Int(literal) {
                    tokens.append(.integer(integer))
                } else {
                    tokens.append(.float(Double(literal) ?? 0))
                }
                index = end
            case ".":
                if index + 1 < chars.count, chars[index + 1] == "." {
                    tokens.append(.dotDot)
                    index += 2
                } else {
                    tokens.append(.dot)
                    index += 1
                }
            case "|": tokens.append(.pipe); index += 1
            case ":": tokens.append(.colon); index += 1
            case ",": tokens.append(.comma); index += 1
            case "(": tokens.append(.openParen); index += 1
            case ")": tokens.append(.closeParen); index += 1
            case "[": tokens.append(.openBracket); index += 1
            case "]": tokens.append(.closeBracket); index += 1
            case "=", "!", "<", ">":
                let next = index + 1 < chars.count ? chars[index + 1] : " "
                if scalar == "=" && next != "=" {
                    tokens.append(.equals)
                    index += 1
                } else if next == "=" || (scalar == "<" && next == ">") {
                    tokens.append(.comparison(String(scalar) + String(next)))
                    index += 2
                } else if scalar == "<" || scalar == ">" {
                    tokens.append(.comparison(String(scalar)))
                    index += 1
                } else {
                    throw Failure(message: "unexpected character '\(scalar)'")
                }
            default:
                guard isIdentifierStart(scalar) else { throw Failure(message: "unexpected character '\(scalar)'") }
                var end = index + 1
                while end < chars.count, isIdentifierPart(chars[end]) { end += 1 }
                var text = String.UnicodeScalarView()
                text.append(contentsOf: chars[index..<end])
                tokens.append(.identifier(String(text)))
                index = end
            }
        }
        return tokens
    }
}

extension String {
    var trimmingSpaces: String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
