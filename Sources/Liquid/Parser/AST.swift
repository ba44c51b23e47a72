/// A parsed template: a tree of nodes rendered in order.
indirect enum Node: Sendable {
    case text(String)
    case output(Expression, line: Int)
    case assign(String, Expression)
    case capture(String, [Node])
    case counter(String, increment: Bool)
    case conditional([(Condition, [Node])], otherwise: [Node]?, line: Int)
    /// `case`: `when` blocks render for each matching value; an `else` renders when nothing before it matched.
    case caseWhen(Operand, [CaseBlock])
    case forLoop(ForLoop)
    case tableRow(ForLoop, columns: Operand?)
    case breakLoop, continueLoop
    /// `key` names the cycle's position counter: the group, or the values as written.
    case cycle(group: Operand?, values: [Operand], key: String)
    case partial(Partial)
    case ifChanged([Node])
    case abort(Operand?)
    case connectedContent(ConnectedContentCall)
}

enum CaseBlock: Sendable {
    case when([Operand], [Node])
    case otherwise([Node])
}

/// `for x in collection limit: … offset: … reversed`.
struct ForLoop: Sendable {
    let variable: String
    let collection: Operand
    let limit: Operand?
    let offset: Operand?
    let offsetContinue: Bool
    let reversed: Bool
    let body: [Node]
    let otherwise: [Node]?
    let name: String
    let line: Int
    /// Whether the body mentions `forloop`; the object is built only then.
    let usesForloop: Bool
}

/// `render`/`include`.
struct Partial: Sendable {
    let name: Operand
    let isolated: Bool
    let with: Operand?
    let forEach: Operand?
    let alias: String?
    let arguments: [(String, Operand)]
    let line: Int
}

/// An operand followed by filters.
struct Expression: Sendable {
    let operand: Operand
    let filters: [FilterCall]
}

struct FilterCall: Sendable {
    let name: String
    let arguments: [Operand]
    let keywords: [(String, Operand)]
}

indirect enum Operand: Sendable {
    case literal(LiquidValue)
    case variable(VariablePath)
    case range(Operand, Operand)
    case empty
    case blank
    /// `{{ … }}` written inside tag markup: the expression stands for its value.
    case nested(Expression)
}

struct VariablePath: Sendable {
    enum Segment: Sendable {
        case key(String)
        case index(Operand)
    }
    let segments: [Segment]
    let line: Int
}

indirect enum Condition: Sendable {
    case value(Operand)
    case comparison(Operand, String, Operand)
    case and(Condition, Condition)
    case or(Condition, Condition)
    case not(Condition)
}
