import Foundation
import Liquid
import Testing

/// The golden Liquid suite (Shopify Liquid 5 semantics): every case passes or is a listed, explained deviation.
@Suite("Golden Liquid suite")
struct GoldenSuiteTests {
    static func resource(_ name: String, _ ext: String) throws -> Data {
        guard let url = Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Resources")
            ?? Bundle.module.url(forResource: name, withExtension: ext)
        else { throw CocoaError(.fileNoSuchFile) }
        return try Data(contentsOf: url)
    }

    /// Runs one case; `true` when Beckon's output (or error) is what the suite expects.
    static func run(_ test: LiquidObject) async -> Bool {
        var tags: [String] = []
        if case .array(let list) = test["tags"] { tags = list.map(\.text) }
        let strict = tags.contains("strict") || tags.contains("strict2")
        var environment = RenderEnvironment()
        environment.strict = strict
        environment.now = Date(timeIntervalSince1970: 1_751_295_600)
        if case .object(let partials) = test["templates"] {
            var map: [String: String] = [:]
            for key in partials.keys { map[key] = partials[key].text }
            environment.partials = DictionaryPartials(map)
        }
        var context = LiquidObject()
        if case .object(let object) = test["data"] { context = object }
        var output: String?
        do {
            let template = try Template.parse(test["template"].text, options: Template.ParseOptions(strict: strict))
            output = try await template.render(context, environment: environment)
        } catch {
            output = nil
        }
        if test["invalid"] == .bool(true) { return output == nil }
        if case .array(let results) = test["results"] { return results.contains { $0.text == output } }
        return output == test["result"].text
    }

    @Test("every golden case passes or is listed in known_deviations.md")
    func goldenSuite() async throws {
        let suite = try LiquidValue(json: try Self.resource("golden_liquid", "json"))
        guard case .object(let file) = suite, case .array(let cases) = file["tests"] else {
            Issue.record("golden_liquid.json has no tests array")
            return
        }
        let deviations = String(decoding: try Self.resource("known_deviations", "md"), as: UTF8.self)
            .split(separator: "\n").filter { $0.hasPrefix("- ") }
            .compactMap { line -> String? in String(line.dropFirst(2)).components(separatedBy: " — ").first }
        var failed: [String] = []
        for case .object(let test) in cases where await !Self.run(test) {
            failed.append(test["name"].text)
        }
        print("golden Liquid suite: \(cases.count - failed.count) of \(cases.count) cases match; \(deviations.count) known deviations")
        #expect(cases.count == 1054)
        let unexpected = failed.filter { !deviations.contains($0) }
        let fixed = deviations.filter { !failed.contains($0) }
        #expect(unexpected.isEmpty, "failing cases not listed as deviations: \(unexpected)")
        #expect(fixed.isEmpty, "listed deviations that now pass (remove them): \(fixed)")
    }
}
