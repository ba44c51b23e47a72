import BeckonCore

/// Applies `/users/track` custom attribute operations to a profile's custom attribute document.
public struct CustomAttributes: Sendable {
    public private(set) var values: [String: JSONValue]
    let maxArrayLength: Int

    public init(values: [String: JSONValue], maxArrayLength: Int = TrackLimits().maxArrayLength) {
        self.values = values
        self.maxArrayLength = maxArrayLength
    }

    /// Applies one change; returns whether the attribute's value changed.
    @discardableResult
    public mutating func apply(_ change: CustomAttributeChange, mergeObjects: Bool) -> Bool {
        let before = values[change.name]
        switch change.operation {
        case .remove:
            values[change.name] = nil
        case .set(let value):
            if mergeObjects, case .object(let incoming) = value, case .object(let existing)? = before {
                values[change.name] = .object(Self.deepMerge(existing, incoming))
            } else {
                values[change.name] = value
            }
        case .increment(let amount):
            switch before {
            case .int(let current)?:
                let (sum, overflow) = current.addingReportingOverflow(amount)
                values[change.name] = overflow ? .double(Double(current) + Double(amount)) : .int(sum)
            case .double(let current)?:
                values[change.name] = .double(current + Double(amount))
            default:
                values[change.name] = .int(amount)
            }
        case .modifyArray(let add, let remove):
            var elements = before?.arrayValue ?? (before.map { $0.isNull ? [] : [$0] } ?? [])
            elements.removeAll { remove.contains($0) }
            for value in add {
                elements.removeAll { $0 == value }
                elements.append(value)
            }
            values[change.name] = .array(Array(elements.suffix(maxArrayLength)))
        case .modifyObjectArray(let add, let updates, let removes):
            var elements = before?.arrayValue ?? []
            for match in removes {
                elements.removeAll { $0[match.key] == match.value }
            }
            for update in updates {
                elements = elements.map { element in
                    guard element[update.match.key] == update.match.value, let object = element.objectValue else {
                        return element
                    }
                    return .object(Self.deepMerge(object, update.newObject))
                }
            }
            elements.append(contentsOf: add)
            values[change.name] = .array(elements)
        }
        return values[change.name] != before
    }

    /// Merges `incoming` into `existing`, recursing into objects present on both sides.
    static func deepMerge(_ existing: [String: JSONValue], _ incoming: [String: JSONValue]) -> [String: JSONValue] {
        var result = existing
        for (key, value) in incoming {
            if case .object(let inner) = value, case .object(let current)? = result[key] {
                result[key] = .object(deepMerge(current, inner))
            } else if value.isNull {
                result[key] = nil
            } else {
                result[key] = value
            }
        }
        return result
    }
}

/// One indexed row of a custom attribute: segment filters read these instead of parsing JSON.
public struct FlattenedAttributeValue: Sendable, Hashable {
    /// `s` string, `n` number, `b` boolean, `t` time (number holds epoch milliseconds), `a…` the same inside an array.
    public let kind: String
    public let path: String
    public let position: Int
    public let text: String?
    public let number: Double?

    /// The rows for attribute `name` holding `value`: scalars at their path, array elements by
    /// position, nested objects as dotted paths, arrays of objects as `name[].field`.
    public static func rows(name: String, value: JSONValue) -> [FlattenedAttributeValue] {
        var rows: [FlattenedAttributeValue] = []
        collect(value, path: name, position: 0, inArray: false, into: &rows)
        return rows
    }

    private static func collect(
        _ value: JSONValue, path: String, position: Int, inArray: Bool, into rows: inout [FlattenedAttributeValue]
    ) {
        let prefix = inArray ? "a" : ""
        switch value {
        case .null:
            return
        case .bool(let flag):
            rows.append(.init(kind: prefix + "b", path: path, position: position, text: flag ? "true" : "false", number: flag ? 1 : 0))
        case .int(let number):
            rows.append(.init(kind: prefix + "n", path: path, position: position, text: nil, number: Double(number)))
        case .double(let number):
            rows.append(.init(kind: prefix + "n", path: path, position: position, text: nil, number: number))
        case .string(let text):
            if let date = BrazeTime.parse(text) {
                rows.append(.init(kind: prefix + "t", path: path, position: position, text: text,
                                  number: Double(BrazeTime.epochMilliseconds(date))))
            } else {
                rows.append(.init(kind: prefix + "s", path: path, position: position, text: text, number: nil))
            }
        case .array(let elements):
            for (index, element) in elements.enumerated() {
                if element.objectValue != nil {
                    collect(element, path: path + "[]", position: index, inArray: true, into: &rows)
                } else {
                    collect(element, path: path, position: index, inArray: true, into: &rows)
                }
            }
        case .object(let members):
            if members.count == 1, let time = members["$time"]?.stringValue, let date = BrazeTime.parse(time) {
                rows.append(.init(kind: prefix + "t", path: path, position: position, text: time,
                                  number: Double(BrazeTime.epochMilliseconds(date))))
                return
            }
            for key in members.keys.sorted() {
                if let member = members[key] {
                    collect(member, path: path + "." + key, position: position, inArray: inArray, into: &rows)
                }
            }
        }
    }
}
