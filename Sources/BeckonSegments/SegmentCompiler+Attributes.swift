import BeckonCore
import BeckonStorage
import Foundation

extension SegmentCompiler {
    /// Standard attributes compare the `users` column; custom attributes read their indexed rows
    /// in `user_attribute_values` (strings and times by text or epoch milliseconds, numbers and
    /// booleans by number, array elements with kinds starting with `a`).
    func attribute(_ condition: AttributeCondition) throws -> SQLFragment {
        if let standard = condition.standard { return standardAttribute(standard, condition) }
        return try customAttribute(condition.customPath ?? "", condition)
    }

    private func standardAttribute(_ attribute: StandardSegmentAttribute, _ condition: AttributeCondition) -> SQLFragment {
        let column = "u.\(attribute.column)"
        if attribute == .createdAt, let timeCondition = timeCondition(condition) {
            return time(column, timeCondition)
        }
        if attribute == .dob, let timeCondition = timeCondition(condition) {
            return dateText(column, timeCondition)
        }
        let value = condition.value.stringValue ?? ""
        switch condition.op {
        case .eq: return SQLFragment("\(column) = ?", [.text(value)])
        case .ne: return SQLFragment("(\(column) IS NULL OR \(column) <> ?)", [.text(value)])
        case .in: return SQLFragment("\(column) IN (\(placeholders(condition.value)))", texts(condition.value))
        case .notIn: return SQLFragment("(\(column) IS NULL OR \(column) NOT IN (\(placeholders(condition.value))))", texts(condition.value))
        case .contains: return SQLFragment(dialect.containsSubstring(column), [.text(value)])
        case .notContains: return SQLFragment("(\(column) IS NULL OR NOT (\(dialect.containsSubstring(column))))", [.text(value)])
        case .startsWith: return SQLFragment("substr(\(column), 1, length(?)) = ?", [.text(value), .text(value)])
        case .matches: return SQLFragment(dialect.matchesRegex(column), [.text(value)])
        case .exists, .notBlank: return SQLFragment(condition.op == .exists ? "\(column) IS NOT NULL" : "(\(column) IS NOT NULL AND \(column) <> '')")
        case .notExists: return SQLFragment("\(column) IS NULL")
        case .blank: return SQLFragment("(\(column) IS NULL OR \(column) = '')")
        default: return SQLFragment("1 = 0")
        }
    }

    /// `dob` is stored as `YYYY-MM-DD`; compare it with the UTC date of the instant.
    private func dateText(_ column: String, _ condition: TimeCondition) -> SQLFragment {
        func date(_ millis: Int64) -> String { String(BrazeTime.format(epochMilliseconds: millis).prefix(10)) }
        switch condition {
        case .before(let instant): return SQLFragment("\(column) < ?", [.text(date(instant))])
        case .after(let instant): return SQLFragment("\(column) > ?", [.text(date(instant))])
        case .withinLast(let window):
            return SQLFragment("\(column) >= ? AND \(column) <= ?", [.text(date(now - window.milliseconds)), .text(date(now))])
        case .moreThanAgo(let window): return SQLFragment("\(column) < ?", [.text(date(now - window.milliseconds))])
        }
    }

    private func timeCondition(_ condition: AttributeCondition) -> TimeCondition? {
        switch condition.op {
        case .before, .after:
            guard let text = condition.value.stringValue, let date = BrazeTime.parse(text) else { return nil }
            let millis = BrazeTime.epochMilliseconds(date)
            return condition.op == .before ? .before(millis) : .after(millis)
        case .withinLast, .moreThanAgo:
            guard let window = try? SegmentFilter.window(condition.value, path: "") else { return nil }
            return condition.op == .withinLast ? .withinLast(window) : .moreThanAgo(window)
        default:
            return nil
        }
    }

    private func customAttribute(_ path: String, _ condition: AttributeCondition) throws -> SQLFragment {
        let rows = { (match: SQLFragment) -> SQLFragment in
            SQLFragment("SELECT user_id FROM user_attribute_values WHERE workspace_id = ? AND path = ?", [.integer(workspaceID), .text(path)])
                + self.scopedUser() + SQLFragment(" AND ") + match
        }
        let among = { (match: SQLFragment) -> SQLFragment in SQLFragment("u.id IN (") + rows(match) + SQLFragment(")") }
        let notAmong = { (match: SQLFragment) -> SQLFragment in SQLFragment("u.id NOT IN (") + rows(match) + SQLFragment(")") }
        let textKinds = "kind IN ('s', 't', 'as', 'at')"
        let numberKinds = "kind IN ('n', 'an')"
        let timeKinds = "kind IN ('t', 'at')"
        switch condition.op {
        case .eq, .ne:
            let match = scalarMatch(condition.value)
            return condition.op == .eq ? among(match) : notAmong(match)
        case .in, .notIn:
            let match = SQLFragment("(") + .joined(condition.value.arrayValue?.map(scalarMatch) ?? [], separator: " OR ") + SQLFragment(")")
            return condition.op == .in ? among(match) : notAmong(match)
        case .contains, .notContains:
            let match = SQLFragment("\(textKinds) AND " + dialect.containsSubstring("text_value"), [.text(condition.value.stringValue ?? "")])
            return condition.op == .contains ? among(match) : notAmong(match)
        case .startsWith:
            let value = condition.value.stringValue ?? ""
            return among(SQLFragment("\(textKinds) AND substr(text_value, 1, length(?)) = ?", [.text(value), .text(value)]))
        case .matches:
            return among(SQLFragment("\(textKinds) AND " + dialect.matchesRegex("text_value"), [.text(condition.value.stringValue ?? "")]))
        case .exists, .notExists:
            let root = path.split(separator: ".").first.map(String.init) ?? path
            let present = SQLFragment(
                "u.id IN (SELECT user_id FROM user_attribute_values WHERE workspace_id = ? AND (path = ? OR (root = ? AND (path LIKE ? ESCAPE '!' OR path LIKE ? ESCAPE '!')))",
                [.integer(workspaceID), .text(path), .text(root), .text(likePrefix(path) + ".%"), .text(likePrefix(path) + "[]%")])
                + scopedUser() + SQLFragment(")")
            return condition.op == .exists ? present : SQLFragment("NOT (") + present + SQLFragment(")")
        case .blank:
            return notAmong(SQLFragment("NOT (\(textKinds) AND text_value = '')"))
        case .notBlank:
            return among(SQLFragment("NOT (\(textKinds) AND text_value = '')"))
        case .gt, .gte, .lt, .lte, .between:
            let op: NumberCondition.Operator
            switch condition.op {
            case .gt: op = .gt
            case .gte: op = .gte
            case .lt: op = .lt
            case .lte: op = .lte
            default: op = .between
            }
            let bounds = condition.value.arrayValue?.compactMap(\.numberValue) ?? []
            let numberCondition = NumberCondition(
                op: op, value: bounds.first ?? condition.value.numberValue ?? 0, upper: bounds.count == 2 ? bounds[1] : nil)
            return among(SQLFragment("\(numberKinds) AND ") + number("number_value", numberCondition))
        case .before, .after, .withinLast, .moreThanAgo:
            guard let timeCondition = timeCondition(condition) else {
                throw SegmentFilterError("filter.value", "is not a valid time condition")
            }
            return among(SQLFragment("\(timeKinds) AND ") + time("number_value", timeCondition))
        case .includesAny, .includesNone:
            let match = SQLFragment("kind LIKE 'a%' AND (") + .joined(condition.value.arrayValue?.map(scalarMatch) ?? [], separator: " OR ")
                + SQLFragment(")")
            return condition.op == .includesAny ? among(match) : notAmong(match)
        case .includesAll:
            let parts = (condition.value.arrayValue ?? []).map { among(SQLFragment("kind LIKE 'a%' AND ") + scalarMatch($0)) }
            return SQLFragment("(") + .joined(parts, separator: " AND ") + SQLFragment(")")
        case .sizeEq, .sizeGt, .sizeLt:
            guard case .int(let size) = condition.value else { throw SegmentFilterError("filter.value", "must be a whole number") }
            let op = condition.op == .sizeEq ? "=" : condition.op == .sizeGt ? ">" : "<"
            let holdsForZero = (condition.op == .sizeEq && size == 0) || (condition.op == .sizeLt && size > 0)
            let grouped = SQLFragment(
                "SELECT user_id FROM user_attribute_values WHERE workspace_id = ? AND path = ? AND kind LIKE 'a%'",
                [.integer(workspaceID), .text(path)]) + scopedUser()
            if holdsForZero {
                return SQLFragment("u.id NOT IN (") + grouped + SQLFragment(" GROUP BY user_id HAVING NOT (COUNT(*) \(op) ?))", [.integer(size)])
            }
            return SQLFragment("u.id IN (") + grouped + SQLFragment(" GROUP BY user_id HAVING COUNT(*) \(op) ?)", [.integer(size)])
        }
    }

    /// A stored row equal to a scalar: strings by text, numbers by number, booleans as 0/1.
    private func scalarMatch(_ value: JSONValue) -> SQLFragment {
        switch value {
        case .bool(let flag): return SQLFragment("(kind IN ('b', 'ab') AND number_value = ?)", [.real(flag ? 1 : 0)])
        case .int(let number): return SQLFragment("(kind IN ('n', 'an') AND number_value = ?)", [.real(Double(number))])
        case .double(let number): return SQLFragment("(kind IN ('n', 'an') AND number_value = ?)", [.real(number)])
        default: return SQLFragment("(kind IN ('s', 't', 'as', 'at') AND text_value = ?)", [.text(value.stringValue ?? "")])
        }
    }

    private func scopedUser() -> SQLFragment {
        if case .user(let id) = scope { return SQLFragment(" AND user_id = ?", [.integer(id)]) }
        return SQLFragment("")
    }

    private func placeholders(_ list: JSONValue) -> String {
        Array(repeating: "?", count: list.arrayValue?.count ?? 0).joined(separator: ", ")
    }

    private func texts(_ list: JSONValue) -> [SQLValue] {
        (list.arrayValue ?? []).map { value in
            if let text = value.stringValue { return .text(text) }
            return .text(UserStore.segmentValue(value) ?? "")
        }
    }

    /// `path` with LIKE's wildcards escaped by `!`.
    private func likePrefix(_ path: String) -> String {
        path.replacingOccurrences(of: "!", with: "!!").replacingOccurrences(of: "%", with: "!%").replacingOccurrences(of: "_", with: "!_")
    }
}
