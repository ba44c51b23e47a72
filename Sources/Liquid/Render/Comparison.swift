/// Liquid's equality, ordering and `contains` rules.
enum Comparison {
    static func compare(_ leftOperand: Operand, _ op: String, _ rightOperand: Operand, renderer: Renderer) throws -> Bool {
        if isSpecial(leftOperand), isSpecial(rightOperand) {
            let same = { () -> Bool in
                switch (leftOperand, rightOperand) {
                case (.empty, .empty), (.blank, .blank): return true
                default: return false
                }
            }()
            return op == "==" ? same : (op == "!=" || op == "<>") ? !same : false
        }
        if case .empty = rightOperand { return test(try renderer.resolve(leftOperand), op, special: \.isEmpty) }
        if case .blank = rightOperand { return test(try renderer.resolve(leftOperand), op, special: \.isBlank) }
        if case .empty = leftOperand { return test(try renderer.resolve(rightOperand), op, special: \.isEmpty) }
        if case .blank = leftOperand { return test(try renderer.resolve(rightOperand), op, special: \.isBlank) }
        let left = try renderer.resolve(leftOperand)
        let right = try renderer.resolve(rightOperand)
        switch op {
        case "==": return equal(left, right)
        case "!=", "<>": return !equal(left, right)
        case "contains": return contains(left, right)
        case "<", ">", "<=", ">=":
            guard let order = order(left, right) else {
                if renderer.strict || isUncomparable(left, right) {
                    throw LiquidRenderError("comparison of \(left.typeName) with \(right.typeName) failed", line: 0)
                }
                return false
            }
            switch op {
            case "<": return order < 0
            case ">": return order > 0
            case "<=": return order <= 0
            default: return order >= 0
            }
        default:
            throw LiquidRenderError("unknown operator \(op)", line: 0)
        }
    }

    static func isSpecial(_ operand: Operand) -> Bool {
        switch operand {
        case .empty, .blank: return true
        default: return false
        }
    }

    static func isUncomparable(_ left: LiquidValue, _ right: LiquidValue) -> Bool {
        switch (left, right) {
        case (.nil, _), (_, .nil): return false
        default: return true
        }
    }

    static func test(_ value: LiquidValue, _ op: String, special: (LiquidValue) -> Bool) -> Bool {
        switch op {
        case "==": return special(value)
        case "!=", "<>": return !special(value)
        default: return false
        }
    }

    static func equal(_ left: LiquidValue, _ right: LiquidValue) -> Bool {
        switch (left, right) {
        case (.int(let a), .double(let b)): return Double(a) == b
        case (.double(let a), .int(let b)): return a == Double(b)
        case (.range(let a, let b), .range(let c, let d)): return a == c && b == d
        case (.array(let a), .array(let b)): return a.count == b.count && zip(a, b).allSatisfy { equal($0, $1) }
        default: return left == right
        }
    }

    static func order(_ left: LiquidValue, _ right: LiquidValue) -> Int? {
        if let a = left.number, let b = right.number { return a < b ? -1 : a > b ? 1 : 0 }
        if case .string(let a) = left, case .string(let b) = right { return a < b ? -1 : a > b ? 1 : 0 }
        return nil
    }

    static func contains(_ container: LiquidValue, _ item: LiquidValue) -> Bool {
        guard item.isTruthy else { return false }
        switch container {
        case .string(let text):
            if case .nil = item { return false }
            return text.contains(item.text)
        case .array(let items): return items.contains { equal($0, item) }
        case .object(let object): return object.contains(item.text)
        case .range: return container.elements.contains { equal($0, item) }
        default: return false
        }
    }
}

extension LiquidValue {
    var typeName: String {
        switch self {
        case .nil: return "nil"
        case .bool: return "boolean"
        case .int: return "Integer"
        case .double: return "Float"
        case .string: return "String"
        case .array: return "Array"
        case .object: return "Hash"
        case .range: return "Range"
        }
    }
}
