import Foundation

/// One render: variable scopes, counters, cycles, loop state and the output buffer.
final class Renderer {
    let environment: RenderEnvironment
    let limits: LiquidLimits
    let strict: Bool
    var output = ""
    /// Innermost scope last; `assign` writes to the outermost.
    var scopes: [[String: LiquidValue]] = [[:]]
    /// Counters of `increment`/`decrement`, a namespace of their own.
    var counters: [String: Int] = [:]
    var cycles: [String: Int] = [:]
    var offsets: [String: Int] = [:]
    var lastChanged: String?
    var iterations = 0
    var partialDepth = 0
    var interrupt: Interrupt?
    var forloops: [LiquidObject] = []
    /// Partials parsed during this render, so a partial rendered in a loop is parsed once.
    var parsedPartials: [String: Template] = [:]

    enum Interrupt { case breakLoop, continueLoop }

    init(environment: RenderEnvironment, limits: LiquidLimits, strict: Bool) {
        self.environment = environment
        self.limits = limits
        self.strict = strict
    }

    /// The template's input variables, read after every scope.
    var globals = LiquidObject()

    func write(_ text: String) throws {
        output += text
        if output.utf8.count > limits.maxOutputBytes {
            throw LiquidLimitError("the output is larger than \(limits.maxOutputBytes) bytes")
        }
    }

    func lookup(_ name: String) -> LiquidValue? {
        for scope in scopes.reversed() {
            if let value = scope[name] { return value }
        }
        if globals.contains(name) { return globals[name] }
        if let counter = counters[name] { return .int(counter) }
        return nil
    }

    func assign(_ name: String, _ value: LiquidValue) {
        scopes[0][name] = value
    }

    func render(_ nodes: [Node]) async throws {
        for node in nodes {
            if interrupt != nil { return }
            try await render(node)
        }
    }

    func render(_ node: Node) async throws {
        switch node {
        case .text(let text):
            try write(text)
        case .output(let expression, let line):
            try write(try await evaluate(expression, line: line).text)
        case .assign(let name, let expression):
            assign(name, try await evaluate(expression, line: 0))
        case .capture(let name, let body):
            let saved = output
            output = ""
            try await render(body)
            let captured = output
            output = saved
            assign(name, .string(captured))
        case .counter(let name, let increment):
            let current = counters[name] ?? 0
            if increment {
                try write(String(current))
                counters[name] = current + 1
            } else {
                counters[name] = current - 1
                try write(String(current - 1))
            }
        case .conditional(let branches, let otherwise, _):
            for (condition, body) in branches where try evaluate(condition) {
                try await render(body)
                return
            }
            if let otherwise { try await render(otherwise) }
        case .caseWhen(let subject, let blocks):
            let value = try resolve(subject)
            var matched = false
            for block in blocks {
                switch block {
                case .when(let values, let body):
                    for candidate in values where Comparison.equal(value, try resolve(candidate)) {
                        matched = true
                        try await render(body)
                    }
                case .otherwise(let body):
                    if !matched { try await render(body) }
                }
            }
        case .forLoop(let loop):
            try await renderFor(loop)
        case .tableRow(let loop, let columns):
            try await renderTableRow(loop, columns: columns)
        case .breakLoop:
            interrupt = .breakLoop
        case .continueLoop:
            interrupt = .continueLoop
        case .cycle(let group, let values, let written):
            let resolved = try values.map { try resolve($0) }
            let key = try group.map { try resolve($0).text } ?? written
            let index = cycles[key] ?? 0
            if index < resolved.count { try write(resolved[index].text) }
            cycles[key] = index + 1 >= resolved.count ? 0 : index + 1
        case .partial(let partial):
            try await renderPartial(partial)
        case .ifChanged(let body):
            let saved = output
            output = ""
            try await render(body)
            let rendered = output
            output = saved
            if rendered != lastChanged {
                lastChanged = rendered
                try write(rendered)
            }
        case .abort(let reason):
            let text = try reason.map { try resolve($0).text }
            throw MessageAborted(reason: text?.isEmpty == true ? nil : text)
        case .connectedContent(let call):
            try await connectedContent(call)
        }
    }

    // MARK: Loops

    func loopItems(_ loop: ForLoop) throws -> [LiquidValue] {
        let collection = try resolve(loop.collection)
        if case .range(let low, let high) = collection, high - low >= limits.maxRangeSize {
            throw LiquidLimitError("the range \(low)..\(high) has more than \(limits.maxRangeSize) elements")
        }
        var items: [LiquidValue]
        switch collection {
        case .string(let text): items = text.isEmpty ? [] : [.string(text)]
        case .bool, .int, .double, .nil: items = []
        default: items = collection.elements
        }
        var start = 0
        if loop.offsetContinue {
            start = offsets[loop.name] ?? 0
        } else if let offset = loop.offset {
            start = try integer(resolve(offset)) ?? 0
        }
        var end = items.count
        if let limit = loop.limit {
            end = start + max(0, try integer(resolve(limit)) ?? 0)
        }
        start = max(0, min(start, items.count))
        end = max(start, min(end, items.count))
        offsets[loop.name] = end
        items = Array(items[start..<end])
        if loop.reversed { items.reverse() }
        return items
    }

    func integer(_ value: LiquidValue) throws -> Int? {
        switch value {
        case .int(let number): return number
        case .double(let number): return Int(number)
        case .string(let text):
            guard let number = Int(text.trimmingSpaces) else { throw LiquidRenderError("'\(text)' is not a number", line: 0) }
            return number
        case .nil: return nil
        default: throw LiquidRenderError("expected a number, got \(value.typeName)", line: 0)
        }
    }

    func countIteration() throws {
        iterations += 1
        if iterations > limits.maxIterations {
            throw LiquidLimitError("loops ran more than \(limits.maxIterations) iterations")
        }
    }

    /// The loop counters every loop object shares (`forloop`, `tablerowloop`).
    static func loopCounters(index: Int, count: Int) -> LiquidObject {
        var object = LiquidObject()
        object["length"] = .int(count)
        object["index"] = .int(index + 1)
        object["index0"] = .int(index)
        object["rindex"] = .int(count - index)
        object["rindex0"] = .int(count - index - 1)
        object["first"] = .bool(index == 0)
        object["last"] = .bool(index == count - 1)
        return object
    }

    func renderFor(_ loop: ForLoop) async throws {
        let items = try loopItems(loop)
        if items.isEmpty {
            if let otherwise = loop.otherwise { try await render(otherwise) }
            return
        }
        scopes.append([:])
        defer { scopes.removeLast() }
        for (index, item) in items.enumerated() {
            try countIteration()
            scopes[scopes.count - 1][loop.variable] = item
            guard loop.usesForloop else {
                try await render(loop.body)
                if let signal = interrupt {
                    interrupt = nil
                    if signal == .breakLoop { break }
                }
                continue
            }
            var forloop = Self.loopCounters(index: index, count: items.count)
            forloop["name"] = .string(loop.name)
            forloop["parentloop"] = forloops.last.map { .object($0) } ?? .nil
            forloops.append(forloop)
            scopes[scopes.count - 1]["forloop"] = .object(forloop)
            scopes[scopes.count - 1][loop.variable] = item
            try await render(loop.body)
            forloops.removeLast()
            if let signal = interrupt {
                interrupt = nil
                if signal == .breakLoop { break }
            }
        }
    }

    func renderTableRow(_ loop: ForLoop, columns: Operand?) async throws {
        let items = try loopItems(loop)
        let columnCount = try columns.flatMap { try integer(resolve($0)) } ?? items.count
        scopes.append([:])
        defer { scopes.removeLast() }
        try write("<tr class=\"row1\">\n")
        var row = 1
        for (index, item) in items.enumerated() {
            try countIteration()
            let column = columnCount > 0 ? index % columnCount : index
            if column == 0, index > 0 {
                row += 1
                try write("</tr>\n<tr class=\"row\(row)\">")
            }
            var tablerow = Self.loopCounters(index: index, count: items.count)
            tablerow["col"] = .int(column + 1)
            tablerow["col0"] = .int(column)
            tablerow["col_first"] = .bool(column == 0)
            tablerow["col_last"] = .bool(columnCount > 0 ? column == columnCount - 1 : index == items.count - 1)
            tablerow["row"] = .int(row)
            scopes[scopes.count - 1]["tablerowloop"] = .object(tablerow)
            scopes[scopes.count - 1][loop.variable] = item
            try write("<td class=\"col\(column + 1)\">")
            try await render(loop.body)
            try write("</td>")
            if let signal = interrupt {
                interrupt = nil
                if signal == .breakLoop { break }
            }
        }
        try write("</tr>\n")
    }

    // MARK: Partials

    func renderPartial(_ partial: Partial) async throws {
        let name = try resolve(partial.name).text
        guard partialDepth < limits.maxPartialDepth else {
            throw LiquidLimitError("partials are nested more than \(limits.maxPartialDepth) deep (is '\(name)' including itself?)")
        }
        guard let source = environment.partials.partial(named: name) else {
            if strict { throw LiquidRenderError("no partial named '\(name)'", line: partial.line) }
            try write("Liquid error (line \(partial.line)): template not found: \(name)")
            return
        }
        let template: Template
        if let parsed = parsedPartials[name] {
            template = parsed
        } else {
            template = try Template.parse(source, options: Template.ParseOptions(strict: strict, limits: limits))
            parsedPartials[name] = template
        }
        let alias = partial.alias ?? name.split(separator: "/").last.map(String.init) ?? name
        var arguments: [String: LiquidValue] = [:]
        for (key, operand) in partial.arguments { arguments[key] = try resolve(operand) }
        let renderOne = { (bound: LiquidValue?, forloop: LiquidObject?) async throws in
            self.partialDepth += 1
            defer { self.partialDepth -= 1 }
            if partial.isolated {
                let savedScopes = self.scopes
                let savedLoops = self.forloops
                let savedCounters = self.counters
                let savedGlobals = self.globals
                self.globals = LiquidObject()
                self.scopes = [arguments]
                self.forloops = []
                self.counters = [:]
                if let bound { self.scopes[0][alias] = bound }
                if let forloop { self.scopes[0]["forloop"] = .object(forloop) }
                defer {
                    self.scopes = savedScopes
                    self.forloops = savedLoops
                    self.counters = savedCounters
                    self.globals = savedGlobals
                }
                try await self.render(template.nodes)
                self.interrupt = nil
            } else {
                self.scopes.append(arguments)
                if let bound { self.scopes[self.scopes.count - 1][alias] = bound }
                defer { self.scopes.removeLast() }
                try await self.render(template.nodes)
            }
        }
        if let forEach = partial.forEach {
            let collection = try resolve(forEach)
            let items: [LiquidValue]
            if case .array = collection { items = collection.elements } else if case .range = collection { items = collection.elements } else { items = [collection] }
            for (index, item) in items.enumerated() {
                try countIteration()
                try await renderOne(item, partial.isolated ? Self.loopCounters(index: index, count: items.count) : nil)
            }
        } else if let with = partial.with {
            let value = try resolve(with)
            if !partial.isolated, case .array(let items) = value {
                for item in items { try await renderOne(item, nil) }
            } else {
                try await renderOne(value, nil)
            }
        } else {
            try await renderOne(partial.isolated ? nil : lookup(name), nil)
        }
    }

    // MARK: Values

    func evaluate(_ expression: Expression, line: Int) async throws -> LiquidValue {
        var value = try resolve(expression.operand)
        for filter in expression.filters {
            let arguments = try filter.arguments.map { try resolve($0) }
            var keywords: [String: LiquidValue] = [:]
            for (key, operand) in filter.keywords { keywords[key] = try resolve(operand) }
            value = try Filters.apply(filter.name, to: value, arguments: arguments, keywords: keywords, renderer: self, line: line)
        }
        if case .variable(let path) = expression.operand, expression.filters.isEmpty, path.segments.count == 2,
            case .key("content_blocks") = path.segments[0], case .key(let blockName) = path.segments[1]
        {
            return try await contentBlock(blockName, line: line)
        }
        return value
    }

    func contentBlock(_ name: String, line: Int) async throws -> LiquidValue {
        let key = name.hasPrefix("${") && name.hasSuffix("}") ? String(name.dropFirst(2).dropLast()) : name
        guard let source = environment.contentBlocks[key] else {
            if strict { throw LiquidRenderError("no content block named '\(key)'", line: line) }
            return .nil
        }
        guard partialDepth < limits.maxPartialDepth else {
            throw LiquidLimitError("content blocks are nested more than \(limits.maxPartialDepth) deep")
        }
        let template = try Template.parse(source, options: Template.ParseOptions(strict: strict, limits: limits))
        let saved = output
        output = ""
        partialDepth += 1
        defer { partialDepth -= 1 }
        try await render(template.nodes)
        let rendered = output
        output = saved
        return .string(rendered)
    }

    func resolve(_ operand: Operand) throws -> LiquidValue {
        switch operand {
        case .literal(let value): return value
        case .empty: return .string("")
        case .blank: return .string("")
        case .range(let low, let high):
            let lowValue = try resolve(low)
            let highValue = try resolve(high)
            guard let start = rangeBound(lowValue), let end = rangeBound(highValue) else {
                if strict { throw LiquidRenderError("invalid range bounds", line: 0) }
                return .range(0, -1)
            }
            return .range(start, end)
        case .nested(let expression):
            return try resolve(expression.operand)
        case .variable(let path):
            return try resolve(path)
        }
    }

    func rangeBound(_ value: LiquidValue) -> Int? {
        switch value {
        case .int(let number): return number
        case .double(let number): return Int(number)
        case .string(let text): return Int(text.trimmingSpaces) ?? Double(text.trimmingSpaces).map { Int($0) } ?? 0
        case .nil: return 0
        default: return nil
        }
    }

    func resolve(_ path: VariablePath) throws -> LiquidValue {
        var current: LiquidValue
        var segments = path.segments[...]
        switch segments.removeFirst() {
        case .key(let name):
            guard let value = lookup(name) else { return .nil }
            current = value
        case .index(let operand):
            let key = try resolve(operand)
            guard case .string(let name) = key, let value = lookup(name) else { return .nil }
            current = value
        }
        for segment in segments {
            switch segment {
            case .key(let key):
                current = property(current, key)
            case .index(let operand):
                let key = try resolve(operand)
                switch (current, key) {
                case (.array(let items), .int(let index)):
                    let position = index < 0 ? items.count + index : index
                    current = items.indices.contains(position) ? items[position] : .nil
                case (.object(let object), _):
                    current = object[key.text]
                default:
                    current = property(current, key.text)
                }
            }
        }
        return current
    }

    func property(_ value: LiquidValue, _ key: String) -> LiquidValue {
        let name = key.hasPrefix("${") && key.hasSuffix("}") ? String(key.dropFirst(2).dropLast()) : key
        switch value {
        case .object(let object):
            if object.contains(name) { return object[name] }
            if name == "size" { return .int(object.count) }
            if name == "first", let key = object.keys.first { return .array([.string(key), object[key]]) }
            return .nil
        case .array(let items):
            switch name {
            case "size": return .int(items.count)
            case "first": return items.first ?? .nil
            case "last": return items.last ?? .nil
            default: return Int(name).flatMap { items.indices.contains($0) ? items[$0] : nil } ?? .nil
            }
        case .string(let text):
            if name == "size" { return .int(text.unicodeScalars.count) }
            return .nil
        case .range(let low, let high):
            switch name {
            case "size": return .int(max(0, high - low + 1))
            case "first": return .int(low)
            case "last": return .int(high)
            default: return .nil
            }
        default:
            return .nil
        }
    }

    func evaluate(_ condition: Condition) throws -> Bool {
        switch condition {
        case .value(let operand): return try resolve(operand).isTruthy
        case .not(let inner): return !(try evaluate(inner))
        case .and(let left, let right): return try evaluate(left) && evaluate(right)
        case .or(let left, let right): return try evaluate(left) || evaluate(right)
        case .comparison(let left, let op, let right):
            return try Comparison.compare(left, op, right, renderer: self)
        }
    }
}
