/// A template that cannot be parsed, with where and why, in words a marketer can act on.
public struct LiquidSyntaxError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String
    public let line: Int
    public let column: Int

    public init(_ message: String, line: Int, column: Int) {
        self.message = message
        self.line = line
        self.column = column
    }

    public var description: String { "Liquid syntax error (line \(line), column \(column)): \(message)" }
}

/// A failure while rendering (strict mode, or an error no mode can render through).
public struct LiquidRenderError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String
    public let line: Int

    public init(_ message: String, line: Int) {
        self.message = message
        self.line = line
    }

    public var description: String { "Liquid error (line \(line)): \(message)" }
}

/// A limit of `LiquidLimits` was exceeded: the render stops instead of hanging or exhausting memory.
public struct LiquidLimitError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { "Liquid limit exceeded: \(message)" }
}

/// `{% abort_message('reason') %}` ran: the message must not be sent.
public struct MessageAborted: Error, Sendable, Hashable, CustomStringConvertible {
    /// The reason given to `abort_message`, if any.
    public let reason: String?

    public init(reason: String?) { self.reason = reason }

    public var description: String { "message aborted" + (reason.map { ": \($0)" } ?? "") }
}

/// Bounds on one parse and render.
public struct LiquidLimits: Sendable, Hashable {
    /// Largest template source, in bytes.
    public var maxTemplateBytes = 256 * 1024
    /// Largest output, in bytes.
    public var maxOutputBytes = 1024 * 1024
    /// Loop iterations over the whole render (for, tablerow).
    public var maxIterations = 100_000
    /// Nesting of render/include partials.
    public var maxPartialDepth = 25
    /// Block nesting in the parser.
    public var maxNestingDepth = 100
    /// Elements a range may produce.
    public var maxRangeSize = 100_000

    public init() {}
}
