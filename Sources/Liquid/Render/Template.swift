import Foundation

/// A parsed Liquid template: parse once, render many times, from any thread.
///
/// ```swift
/// let template = try Template.parse("안녕하세요 {{ ${first_name} | default: '고객' }}님")
/// let text = try await template.render(BrazeContext.make(from: data), environment: RenderEnvironment())
/// ```
/// Rendering throws `MessageAborted` for `abort_message`, `LiquidRenderError` in strict mode,
/// and `LiquidLimitError` when a limit of `LiquidLimits` is exceeded.
public struct Template: Sendable {
    let nodes: [Node]
    public let options: ParseOptions

    /// How a template is parsed.
    public struct ParseOptions: Sendable {
        /// Strict parsing raises on malformed markup that lax parsing (Braze's default) tolerates.
        public var strict = false
        public var limits = LiquidLimits()

        public init(strict: Bool = false, limits: LiquidLimits = LiquidLimits()) {
            self.strict = strict
            self.limits = limits
        }
    }

    /// Parses `source`; throws `LiquidSyntaxError` with line and column.
    public static func parse(_ source: String, options: ParseOptions = ParseOptions()) throws -> Template {
        guard source.utf8.count <= options.limits.maxTemplateBytes else {
            throw LiquidLimitError("the template is \(source.utf8.count) bytes; at most \(options.limits.maxTemplateBytes) are allowed")
        }
        let tokens = try TemplateLexer.tokenize(source)
        var parser = TemplateParser(tokens: tokens, strict: options.strict, limits: options.limits)
        let block = try parser.parseBlock(until: [], opener: nil)
        return Template(nodes: block.nodes, options: options)
    }

    /// Renders with `context` as the template's variables.
    public func render(_ context: LiquidObject, environment: RenderEnvironment = RenderEnvironment()) async throws -> String {
        let renderer = Renderer(environment: environment, limits: options.limits, strict: environment.strict || options.strict)
        renderer.globals = context
        try await renderer.render(nodes)
        return renderer.output
    }
}

/// Where partials come from: `render 'name'` and `include 'name'` look them up here.
public protocol PartialSource: Sendable {
    /// The source of partial `name`, or `nil` when there is none.
    func partial(named name: String) -> String?
}

/// Partials held in memory.
public struct DictionaryPartials: PartialSource {
    public let partials: [String: String]
    public init(_ partials: [String: String]) { self.partials = partials }
    public func partial(named name: String) -> String? { partials[name] }
}

/// Everything a render may use besides the template's variables.
public struct RenderEnvironment: Sendable {
    /// Strict rendering raises on undefined filters and errors that lax rendering prints as empty.
    public var strict = false
    public var partials: any PartialSource = DictionaryPartials([:])
    /// Braze content blocks by name (their Liquid is rendered in the same context).
    public var contentBlocks: [String: String] = [:]
    public var fetcher: any ConnectedContentFetcher = RefusingConnectedContentFetcher()
    /// "Now" for the `date` filter's `now`/`today` (injected so tests can fix it).
    public var now: Date = Date()
    public var timeZone: TimeZone = TimeZone(identifier: "UTC") ?? .current

    public init() {}
}
