import Foundation
import Liquid
import Testing

/// Random and mutated templates never crash, hang or exceed their limits.
@Suite("Liquid robustness")
struct RobustnessTests {
    struct Generator {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(max(bound, 1)))
        }
    }

    static let fragments = [
        "{{", "}}", "{%", "%}", "{%-", "-%}", "if x", "endif", "for i in (1..999999999)", "for i in items", "endfor", "else", "elsif y",
        "unless", "case x", "when 1", "endcase", "assign x = ", "capture c", "endcapture", "raw", "endraw", "comment", "endcomment",
        "render 'self'", "include 'loop'", "cycle 1, 2", "tablerow t in items cols: 2", "endtablerow", "| upcase", "| split: ','",
        "| append: x", "| times: 99999999999", "| divided_by: 0", "| slice: -5, 3", "| date: '%Y'", "'str'", "\"", "'", "${first_name}",
        "custom_attribute.${a}", "abort_message('r')", "connected_content https://x :save r", "(1..3)", "[0]", ".size", "안녕",
        " ", "\n", "x", "1.5", "-3", "nil", "blank", "empty", "contains", "==", "and", "or", "liquid", "echo x", "increment n", "break",
    ]

    @Test("30,000 random and mutated templates finish without crashing")
    func fuzz() async throws {
        var random = Generator(state: 2026)
        var limits = LiquidLimits()
        limits.maxIterations = 2_000
        limits.maxOutputBytes = 64 * 1024
        var environment = RenderEnvironment()
        environment.partials = DictionaryPartials(["self": "{% render 'self' %}", "loop": "{% include 'loop' %}"])
        let data: LiquidValue = ["x": 1, "y": "a,b", "items": .array((0..<20).map { .int($0) }), "user": ["first_name": "지민"]]
        guard case .object(let context) = data else { return }
        var rendered = 0
        var rejected = 0
        for round in 0..<30_000 {
            var source = ""
            for _ in 0..<(1 + random.next(12)) {
                source += Self.fragments[random.next(Self.fragments.count)]
                if random.next(3) == 0 { source += " " }
            }
            if round % 7 == 0 { source = String(repeating: "{% if x %}", count: 150) + source }
            do {
                let template = try Template.parse(source, options: Template.ParseOptions(strict: round % 2 == 0, limits: limits))
                _ = try await template.render(context, environment: environment)
                rendered += 1
            } catch {
                rejected += 1
            }
        }
        #expect(rendered + rejected == 30_000)
        #expect(rendered > 1_000, "the generator also produces valid templates")
    }

    @Test("each limit stops a render with a clear error", arguments: [
        ("{% for i in (1..999999999) %}x{% endfor %}", "range"),
        ("{% for i in (1..50000) %}{% for j in (1..50000) %}{% endfor %}{% endfor %}", "iterations"),
        ("{% render 'self' %}", "nested"),
        ("{% for i in (1..90000) %}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx{% endfor %}", "output"),
    ])
    func limits(source: String, mention: String) async throws {
        var environment = RenderEnvironment()
        environment.partials = DictionaryPartials(["self": "{% render 'self' %}"])
        await #expect {
            _ = try await Template.parse(source).render(LiquidObject(), environment: environment)
        } throws: { error in
            (error as? LiquidLimitError)?.message.contains(mention) ?? false
        }
    }

    @Test("deep nesting is a syntax error, not a stack overflow")
    func deepNesting() {
        #expect(throws: LiquidSyntaxError.self) {
            _ = try Template.parse(String(repeating: "{% if true %}", count: 5_000))
        }
    }
}
