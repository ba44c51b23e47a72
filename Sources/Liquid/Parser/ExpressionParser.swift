import Foundation

/// Parses operands, filters and conditions from markup tokens.
struct ExpressionParser {
    var tokens: [MarkupLexer.Token]
    var position = 0
    let line: Int

    init(_ markup: String, line: Int, inTag: Bool = true) throws {
        do {
            tokens = try MarkupLexer.tokenize(inTag ? ExpressionParser.unwrapNestedOutput(markup) : markup)
        } catch let failure as MarkupLexer.Failure {
            throw LiquidSyntaxError(failure.message, line: line, column: 1)
        }
        self.line = line
    }

    /// Braze accepts `{{ expr }}` inside tag markup; it stands for `expr`.
    static func unwrapNestedOutput(_ markup: String) -> String {
        guard markup.contains("{{") else { return markup }
        var result = ""
        var quote: Character?
        var characters = markup[...]
        while let character = characters.first {
            if let open = quote {
                if character == open { quote = nil }
                result.append(character)
                characters.removeFirst()
            } else if character == "'" || character == "\"" {
                quote = character
                result.append(character)
                characters.removeFirst()
            } else if characters.hasPrefix("{{") || characters.hasPrefix("}}") {
                result.append(" ")
                characters.removeFirst(2)
            } else {
                result.append(character)
                characters.removeFirst()
            }
        }
        return result
    }

    var atEnd: Bool { position >= tokens.count }
    var peek: MarkupLexer.Token? { position < tokens.count ? tokens[position] : nil }

    func error(_ message: String) -> LiquidSyntaxError { LiquidSyntaxError(message, line: line, column: 1) }

    mutating func next() -> MarkupLexer.Token? {
        defer { position += 1 }
        return peek
    }

    mutating func expect(_ token: MarkupLexer.Token, _ what: String) throws {
        guard peek == token else { throw error("expected \(what)\(peek.map { " but found \(describe($0))" } ?? " at the end")") }
        position += 1
    }

    func describe(_ token: MarkupLexer.Token) -> String {
        switch token {
        case .identifier(let name): return "'\(name)'"
        case .string(let text): return "'\(text)'"
        case .integer(let number): return "\(number)"
        case .float(let number): return "\(number)"
        case .comparison(let op): return "'\(op)'"
        case .brazeName(let name): return "'${\(name)}'"
        case .dot: return "'.'"
        case .dotDot: return "'..'"
        case .pipe: return "'|'"
        case .colon: return "':'"
        case .comma: return "','"
        case .openParen: return "'('"
        case .closeParen: return "')'"
        case .openBracket: return "'['"
        case .closeBracket: return "']'"
        case .equals: return "'='"
        }
    }

    mutating func identifier(_ what: String) throws -> String {
        guard case .identifier(let name)? = peek else { throw error("expected \(what)") }
        position += 1
        return name
    }

    mutating func operand() throws -> Operand {
        guard let token = next() else { throw error("expected a value") }
        switch token {
        case .string(let text): return .literal(.string(text))
        case .integer(let number): return .literal(.int(number))
        case .float(let number): return .literal(.double(number))
        case .openParen:
            let low = try operand()
            try expect(.dotDot, "'..' in a range")
            let high = try operand()
            try expect(.closeParen, "')' to close a range")
            return .range(low, high)
        case .identifier(let name):
            switch name {
            case "true": return .literal(.bool(true))
            case "false": return .literal(.bool(false))
            case "nil", "null": return .literal(.nil)
            case "empty" where !continuesPath: return .empty
            case "blank" where !continuesPath: return .blank
            default: return .variable(try path(first: .key(name)))
            }
        case .brazeName(let name):
            return .variable(try path(first: .key("${" + name + "}")))
        case .openBracket:
            let key = try operand()
            try expect(.closeBracket, "']'")
            return .variable(try path(first: .index(key)))
        default:
            throw error("unexpected \(describe(token))")
        }
    }

    var continuesPath: Bool { peek == .dot || peek == .openBracket }

    mutating func path(first: VariablePath.Segment) throws -> VariablePath {
        var segments = [first]
        while let token = peek {
            if token == .dot {
                position += 1
                switch next() {
                case .identifier(let name)?: segments.append(.key(name))
                case .brazeName(let name)?: segments.append(.key(name))
                case .integer(let number)?: segments.append(.key(String(number)))
                default: throw error("expected a property name after '.'")
                }
            } else if token == .openBracket {
                position += 1
                let key = try operand()
                try expect(.closeBracket, "']'")
                segments.append(.index(key))
            } else {
                break
            }
        }
        return VariablePath(segments: segments, line: line)
    }

    /// `operand | filter: args | filter …`; in lax mode, stops quietly at anything it cannot read.
    mutating func expression(lax: Bool) throws -> Expression {
        let base = try operand()
        var filters: [FilterCall] = []
        while peek == .pipe {
            position += 1
            guard case .identifier(let name)? = peek else {
                if lax { break }
                throw error("expected a filter name after '|'")
            }
            position += 1
            var arguments: [Operand] = []
            var keywords: [(String, Operand)] = []
            if peek == .colon {
                position += 1
                while true {
                    if case .identifier(let key)? = peek, position + 1 < tokens.count, tokens[position + 1] == .colon {
                        position += 2
                        keywords.append((key, try operand()))
                    } else {
                        arguments.append(try operand())
                    }
                    guard peek == .comma else { break }
                    position += 1
                }
            }
            filters.append(FilterCall(name: name, arguments: arguments, keywords: keywords))
        }
        if !lax, let token = peek { throw error("unexpected \(describe(token)) after the expression") }
        return Expression(operand: base, filters: filters)
    }

    /// `a == b and c or d`: `and`/`or` bind right to left without precedence, as Liquid does.
    mutating func condition() throws -> Condition {
        let left = try comparison()
        if case .identifier(let word)? = peek, word == "and" || word == "or" {
            position += 1
            let right = try condition()
            return word == "and" ? .and(left, right) : .or(left, right)
        }
        return left
    }

    mutating func comparison() throws -> Condition {
        let left = try operand()
        if case .comparison(let op)? = peek {
            position += 1
            return .comparison(left, op, try operand())
        }
        if case .identifier("contains")? = peek {
            position += 1
            return .comparison(left, "contains", try operand())
        }
        return .value(left)
    }
}

