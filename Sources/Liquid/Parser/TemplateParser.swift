import Foundation

/// Builds the node tree from template tokens, matching block tags and reporting unclosed ones.
struct TemplateParser {
    let tokens: [TemplateLexer.Token]
    var position = 0
    let strict: Bool
    let limits: LiquidLimits
    var depth = 0

    /// Block tags and the tags that may appear inside them at their own level.
    static let blockEnds: [String: String] = [
        "if": "endif", "unless": "endunless", "case": "endcase", "for": "endfor", "tablerow": "endtablerow",
        "capture": "endcapture", "comment": "endcomment", "raw": "endraw", "ifchanged": "endifchanged", "doc": "enddoc",
    ]

    init(tokens: [TemplateLexer.Token], strict: Bool, limits: LiquidLimits) {
        self.tokens = tokens
        self.strict = strict
        self.limits = limits
    }

    static func splitTag(_ markup: String) -> (name: String, rest: String) {
        let trimmed = markup.trimmingSpaces
        if trimmed.hasPrefix("#") { return ("#", String(trimmed.dropFirst())) }
        let nameEnd = trimmed.firstIndex { $0.isWhitespace || $0 == "(" } ?? trimmed.endIndex
        return (String(trimmed[..<nameEnd]), String(trimmed[nameEnd...]).trimmingSpaces)
    }

    /// Parses nodes until one of `terminators` (returned with its markup) or the end.
    mutating func parseBlock(until terminators: Set<String>, opener: (name: String, line: Int)?) throws
        -> (nodes: [Node], terminator: String?, markup: String, line: Int)
    {
        depth += 1
        defer { depth -= 1 }
        guard depth <= limits.maxNestingDepth else {
            throw LiquidSyntaxError("blocks are nested more than \(limits.maxNestingDepth) deep", line: opener?.line ?? 1, column: 1)
        }
        var nodes: [Node] = []
        while position < tokens.count {
            let token = tokens[position]
            position += 1
            switch token.kind {
            case .text:
                if !token.content.isEmpty { nodes.append(.text(token.content)) }
            case .output:
                nodes.append(try output(token))
            case .tag:
                let (name, rest) = Self.splitTag(token.content)
                if terminators.contains(name) { return (nodes, name, rest, token.line) }
                if let node = try tag(name: name, markup: rest, token: token) { nodes.append(contentsOf: node) }
            }
        }
        if let opener {
            let end = Self.blockEnds[opener.name] ?? "end\(opener.name)"
            throw LiquidSyntaxError("'\(end)' expected to close '\(opener.name)' opened on line \(opener.line)", line: opener.line, column: 1)
        }
        return (nodes, nil, "", 0)
    }

    func output(_ token: TemplateLexer.Token) throws -> Node {
        if token.content.trimmingSpaces.isEmpty { return .text("") }
        do {
            var parser = try ExpressionParser(token.content, line: token.line, inTag: false)
            return .output(try parser.expression(lax: !strict), line: token.line)
        } catch let error as LiquidSyntaxError {
            if strict { throw LiquidSyntaxError(error.message, line: token.line, column: token.column) }
            return .text("")
        }
    }

    func syntax(_ message: String, _ token: TemplateLexer.Token) -> LiquidSyntaxError {
        LiquidSyntaxError(message, line: token.line, column: token.column)
    }

    mutating func tag(name: String, markup: String, token: TemplateLexer.Token) throws -> [Node]? {
        let line = token.line
        switch name {
        case "#":
            return nil
        case "assign":
            guard let equals = markup.firstIndex(of: "=") else { throw syntax("assign needs 'name = value', got '\(markup)'", token) }
            let variable = String(markup[..<equals]).trimmingSpaces
            guard !variable.isEmpty, variable.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." }) else {
                throw syntax("'\(variable)' is not a variable name for assign", token)
            }
            var parser = try ExpressionParser(String(markup[markup.index(after: equals)...]), line: line)
            return [.assign(variable, try parser.expression(lax: !strict))]
        case "capture":
            let variable = markup.trimmingSpaces.trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
            guard !variable.isEmpty else { throw syntax("capture needs a variable name", token) }
            let body = try parseBlock(until: ["endcapture"], opener: ("capture", line))
            return [.capture(variable, body.nodes)]
        case "increment", "decrement":
            let variable = markup.trimmingSpaces
            guard !variable.isEmpty else { throw syntax("\(name) needs a variable name", token) }
            return [.counter(variable, increment: name == "increment")]
        case "if", "unless":
            return [try conditional(name: name, markup: markup, token: token)]
        case "case":
            return [try caseTag(markup: markup, token: token)]
        case "for", "tablerow":
            return [try forTag(name: name, markup: markup, token: token)]
        case "break": return [.breakLoop]
        case "continue": return [.continueLoop]
        case "cycle":
            return [try cycle(markup: markup, token: token)]
        case "comment", "doc":
            if name == "doc", !markup.trimmingSpaces.isEmpty { throw syntax("doc takes no arguments", token) }
            try skipRaw(until: name == "comment" ? "endcomment" : "enddoc", opener: name, line: line, nested: name)
            return nil
        case "raw":
            let text = try skipRaw(until: "endraw", opener: "raw", line: line, nested: nil)
            return [.text(text)]
        case "echo":
            if markup.trimmingSpaces.isEmpty { return nil }
            var parser = try ExpressionParser(markup, line: line)
            return [.output(try parser.expression(lax: !strict), line: line)]
        case "liquid":
            return try liquidTag(markup: markup, token: token)
        case "render", "include":
            return [try partial(isolated: name == "render", markup: markup, token: token)]
        case "ifchanged":
            return [.ifChanged(try parseBlock(until: ["endifchanged"], opener: ("ifchanged", line)).nodes)]
        case "abort_message":
            var inner = markup.trimmingSpaces
            if inner.hasPrefix("(") && inner.hasSuffix(")") { inner = String(inner.dropFirst().dropLast()) }
            if inner.trimmingSpaces.isEmpty { return [.abort(nil)] }
            var parser = try ExpressionParser(inner, line: line)
            return [.abort(try parser.operand())]
        case "connected_content":
            return [.connectedContent(try ConnectedContentCall.parse(markup, line: line))]
        default:
            if name.hasPrefix("end") || ["else", "elsif", "when"].contains(name) {
                throw syntax("'\(name)' has no opening tag to close or continue", token)
            }
            throw syntax("Unknown tag '\(name)'", token)
        }
    }

    /// Liquid renders nothing for a block whose body is only white space and tags that print
    /// nothing (assign, capture, nested blank blocks): drop its white-space text.
    static func blankStripped(_ nodes: [Node]) -> [Node] {
        isBlank(nodes) ? nodes.filter { if case .text = $0 { return false } else { return true } } : nodes
    }

    static func isBlank(_ nodes: [Node]) -> Bool {
        nodes.allSatisfy { node in
            switch node {
            case .text(let text): return text.allSatisfy(\.isWhitespace)
            case .assign, .capture: return true
            case .conditional(let branches, let otherwise, _):
                return branches.allSatisfy { isBlank($0.1) } && isBlank(otherwise ?? [])
            case .caseWhen(_, let blocks):
                return blocks.allSatisfy { block in
                    switch block {
                    case .when(_, let body), .otherwise(let body): return isBlank(body)
                    }
                }
            case .forLoop(let loop): return isBlank(loop.body) && isBlank(loop.otherwise ?? [])
            default: return false
            }
        }
    }

    /// Collects everything up to the closing tag verbatim (raw, comment, doc).
    @discardableResult
    mutating func skipRaw(until end: String, opener: String, line: Int, nested: String?) throws -> String {
        var text = ""
        var level = 0
        while position < tokens.count {
            let token = tokens[position]
            position += 1
            if token.kind == .tag {
                let (name, _) = Self.splitTag(token.content)
                if name == "raw", end != "endraw" {
                    while position < tokens.count {
                        let inner = tokens[position]
                        position += 1
                        if inner.kind == .tag, Self.splitTag(inner.content).name == "endraw" { break }
                    }
                    continue
                }
                if let nested, name == nested { level += 1 }
                if name == end {
                    if level == 0 { return text }
                    level -= 1
                }
            }
            switch token.kind {
            case .text: text += token.content
            case .output: text += "{{" + (token.trimLeft ? "-" : "") + token.content + (token.trimRight ? "-" : "") + "}}"
            case .tag: text += "{%" + (token.trimLeft ? "-" : "") + token.content + (token.trimRight ? "-" : "") + "%}"
            }
        }
        throw LiquidSyntaxError("'\(end)' expected to close '\(opener)' opened on line \(line)", line: line, column: 1)
    }

    mutating func conditional(name: String, markup: String, token: TemplateLexer.Token) throws -> Node {
        var branches: [(Condition, [Node])] = []
        var otherwise: [Node]?
        var condition = try parseCondition(markup, token: token)
        if name == "unless" { condition = .not(condition) }
        let end = name == "if" ? "endif" : "endunless"
        while true {
            let block = try parseBlock(until: ["elsif", "else", end], opener: (name, token.line))
            if otherwise != nil {
                // after else: anything but the end is an error
                guard block.terminator == end else { throw LiquidSyntaxError("'\(block.terminator ?? "")' after 'else' in '\(name)'", line: block.line, column: 1) }
                otherwise = (otherwise ?? []) + block.nodes
                break
            }
            branches.append((condition, block.nodes))
            switch block.terminator {
            case "elsif":
                condition = try parseCondition(block.markup, token: token)
            case "else":
                var rest = try parseBlock(until: ["elsif", "else", end], opener: (name, token.line))
                otherwise = rest.nodes
                while rest.terminator != end {
                    rest = try parseBlock(until: ["elsif", "else", end], opener: (name, token.line))
                }
                return Self.blankConditional(branches, otherwise, token.line)
            default:
                return Self.blankConditional(branches, otherwise, token.line)
            }
        }
        return Self.blankConditional(branches, otherwise, token.line)
    }

    static func blankConditional(_ branches: [(Condition, [Node])], _ otherwise: [Node]?, _ line: Int) -> Node {
        let node = Node.conditional(branches, otherwise: otherwise, line: line)
        guard isBlank([node]) else { return node }
        return .conditional(branches.map { ($0.0, blankStripped($0.1)) }, otherwise: otherwise.map(blankStripped), line: line)
    }

    func parseCondition(_ markup: String, token: TemplateLexer.Token) throws -> Condition {
        guard !markup.trimmingSpaces.isEmpty else { throw syntax("a condition is required", token) }
        var parser = try ExpressionParser(markup, line: token.line)
        let condition = try parser.condition()
        if let extra = parser.peek {
            throw syntax("unexpected \(parser.describe(extra)) in condition '\(markup)'", token)
        }
        return condition
    }

    mutating func caseTag(markup: String, token: TemplateLexer.Token) throws -> Node {
        var parser = try ExpressionParser(markup, line: token.line)
        let subject = try parser.operand()
        var blocks: [CaseBlock] = []
        var block = try parseBlock(until: ["when", "else", "endcase"], opener: ("case", token.line))
        while let terminator = block.terminator, terminator != "endcase" {
            if terminator == "when" {
                var values: [Operand] = []
                var whenParser = try ExpressionParser(block.markup, line: block.line)
                repeat {
                    values.append(try whenParser.operand())
                    if whenParser.peek == .comma {
                        whenParser.position += 1
                    } else if case .identifier("or")? = whenParser.peek {
                        whenParser.position += 1
                    } else {
                        break
                    }
                } while !whenParser.atEnd
                if strict, !whenParser.atEnd { throw syntax("unexpected \(whenParser.describe(whenParser.peek!)) in 'when'", token) }
                block = try parseBlock(until: ["when", "else", "endcase"], opener: ("case", token.line))
                blocks.append(.when(values, block.nodes))
            } else {
                block = try parseBlock(until: ["when", "else", "endcase"], opener: ("case", token.line))
                blocks.append(.otherwise(block.nodes))
            }
        }
        let node = Node.caseWhen(subject, blocks)
        guard Self.isBlank([node]) else { return node }
        return .caseWhen(subject, blocks.map { block in
            switch block {
            case .when(let values, let body): return .when(values, Self.blankStripped(body))
            case .otherwise(let body): return .otherwise(Self.blankStripped(body))
            }
        })
    }

    mutating func forTag(name: String, markup: String, token: TemplateLexer.Token) throws -> Node {
        var parser = try ExpressionParser(markup, line: token.line)
        let variable = try parser.identifier("a loop variable")
        guard case .identifier("in")? = parser.next() else { throw syntax("\(name) needs 'variable in collection'", token) }
        let collection = try parser.operand()
        var limit: Operand?
        var offset: Operand?
        var offsetContinue = false
        var reversed = false
        var columns: Operand?
        while let next = parser.peek {
            if next == .comma { parser.position += 1; continue }
            guard case .identifier(let word) = next else {
                if strict { throw syntax("unexpected \(parser.describe(next)) in '\(name)'", token) }
                parser.position += 1
                continue
            }
            parser.position += 1
            if word == "reversed" { reversed = true; continue }
            guard parser.peek == .colon else {
                if strict { throw syntax("unexpected '\(word)' in '\(name)'", token) }
                continue
            }
            parser.position += 1
            if word == "offset", case .identifier("continue")? = parser.peek {
                parser.position += 1
                offsetContinue = true
                continue
            }
            let value = try parser.operand()
            switch word {
            case "limit": limit = value
            case "offset": offset = value
            case "cols": columns = value
            default: if strict { throw syntax("unknown \(name) parameter '\(word)'", token) }
            }
        }
        let end = name == "for" ? "endfor" : "endtablerow"
        let bodyStart = position
        let block = try parseBlock(until: ["else", end], opener: (name, token.line))
        let usesForloop = tokens[bodyStart..<position].contains { token in
            token.kind != .text && (token.content.contains("forloop") || token.content.contains("include"))
        }
        var otherwise: [Node]?
        if block.terminator == "else" {
            otherwise = try parseBlock(until: [end], opener: (name, token.line)).nodes
        }
        let loop = ForLoop(
            variable: variable, collection: collection, limit: limit, offset: offset, offsetContinue: offsetContinue,
            reversed: reversed, body: Self.blankStripped(block.nodes), otherwise: otherwise, name: "\(variable)-\(Self.collectionText(markup))", line: token.line,
            usesForloop: usesForloop)
        return name == "for" ? .forLoop(loop) : .tableRow(loop, columns: columns)
    }

    /// The collection as written (`item in array limit: 2` → `array`), which names the loop for `offset: continue`.
    static func collectionText(_ markup: String) -> String {
        guard let range = markup.range(of: " in ") else { return markup.trimmingSpaces }
        let rest = String(markup[range.upperBound...]).trimmingSpaces
        if rest.hasPrefix("("), let close = rest.firstIndex(of: ")") { return String(rest[...close]) }
        return String(rest.prefix { !$0.isWhitespace })
    }

    func cycle(markup: String, token: TemplateLexer.Token) throws -> Node {
        var parser = try ExpressionParser(markup, line: token.line)
        var group: Operand?
        var values: [Operand] = []
        let first = try parser.operand()
        if parser.peek == .colon {
            parser.position += 1
            group = first
        } else {
            values.append(first)
            if parser.peek == .comma { parser.position += 1 }
        }
        while !parser.atEnd {
            values.append(try parser.operand())
            if parser.peek == .comma { parser.position += 1 } else { break }
        }
        return .cycle(group: group, values: values, key: markup.trimmingSpaces)
    }

    mutating func liquidTag(markup: String, token: TemplateLexer.Token) throws -> [Node] {
        let lines = markup.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
        let inner = lines.map { line -> TemplateLexer.Token in
            TemplateLexer.Token(kind: .tag, content: line, line: token.line, column: token.column, trimLeft: false, trimRight: false)
        }
        var nested = TemplateParser(tokens: inner, strict: strict, limits: limits)
        nested.depth = depth
        return try nested.parseBlock(until: [], opener: nil).nodes
    }

    func partial(isolated: Bool, markup: String, token: TemplateLexer.Token) throws -> Node {
        var parser = try ExpressionParser(markup, line: token.line)
        let name = try parser.operand()
        if isolated, case .literal(.string) = name {} else if isolated {
            throw syntax("render needs a quoted template name", token)
        }
        var with: Operand?
        var forEach: Operand?
        var alias: String?
        var arguments: [(String, Operand)] = []
        while let next = parser.peek {
            if next == .comma { parser.position += 1; continue }
            guard case .identifier(let word) = next else {
                throw syntax("unexpected \(parser.describe(next)) in '\(isolated ? "render" : "include")'", token)
            }
            parser.position += 1
            if parser.peek == .colon {
                parser.position += 1
                arguments.append((word, try parser.operand()))
            } else if word == "with" {
                with = try parser.operand()
            } else if word == "for" {
                forEach = try parser.operand()
            } else if word == "as" {
                alias = try parser.identifier("a name after 'as'")
            } else {
                throw syntax("unexpected '\(word)' in '\(isolated ? "render" : "include")'", token)
            }
        }
        return .partial(Partial(name: name, isolated: isolated, with: with, forEach: forEach, alias: alias, arguments: arguments, line: token.line))
    }
}
