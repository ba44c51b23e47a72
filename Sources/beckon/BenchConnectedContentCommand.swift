import ArgumentParser
import BeckonConnectedContent
import BeckonCore
import BeckonOutboundHTTP
import BeckonStorage
import Foundation
import Hummingbird
import Liquid
import Logging
import Synchronization

/// `beckon bench connected-content`: the category best-seller template (MISSION.md case 2)
/// rendered for many users against a local API with a fixed latency, cold then warm, beside the
/// same template with the API's answer inlined in the context (no network).
struct BenchConnectedContentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connected-content",
        abstract: "Render the best-seller template N times against a local API answering after a fixed latency; prints JSON lines.")

    @Option(help: "Renders per pass.") var renders = 100_000
    @Option(help: "Distinct categories (users are spread evenly over them).") var categories = 200
    @Option(name: .customLong("latency-ms"), help: "How long the local API takes to answer.") var latencyMilliseconds = 20
    @Option(help: "Renders in flight at once.") var concurrency = 64

    static let bestSeller = """
        {%- assign category = custom_attribute.${last_viewed_category} | default: 'all' -%}
        {%- connected_content http://127.0.0.1:PORT/best?category={{ category | url_param_escape }} :cache_max_age 3600 :save best -%}
        BODY
        """
    static let body = """
        {%- if best.projects.size == 0 -%}{%- abort_message('no best seller for this category right now') -%}{%- endif -%}
        {%- assign project = best.projects[0] -%}
        {"senderKey": "shop-kakao", "templateCode": "BEST_NOW", "recipientNo": "{{ ${phone_number} | json_escape }}",
         "content": "{{ ${first_name} | default: '서포터' | json_escape }}님, 지금 {{ project.category_name | json_escape }} 1위는 '{{ project.title | json_escape }}'입니다.",
         "buttons": [{"name": "보러 가기", "type": "WL", "linkMo": "{{ project.url }}"}]}
        """

    static func answer(_ category: String) -> String {
        #"{"category": "\#(category)", "projects": [{"title": "Best of \#(category)", "url": "https://shop.example/p/\#(category)-1", "category_name": "\#(category)"}, {"title": "Second", "url": "https://shop.example/p/2"}]}"#
    }

    func run() async throws {
        guard renders >= 1, categories >= 1, concurrency >= 1, latencyMilliseconds >= 0 else {
            throw ValidationError("--renders, --categories and --concurrency must be at least 1, --latency-ms at least 0")
        }
        let received = RenderCounter()
        let latency = Duration.milliseconds(latencyMilliseconds)
        let router = Router()
        router.get("/best") { request, _ -> Response in
            _ = received.take()
            try await Task.sleep(for: latency)
            let category = request.uri.queryParameters["category"].map(String.init) ?? "all"
            return Response(
                status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: Self.answer(category))))
        }
        var quiet = Logger(label: "bench")
        quiet.logLevel = .error
        let server = try await BenchLocalServer.start(router, logger: quiet)
        let port = server.port

        var configuration = ConnectedContentConfiguration()
        configuration.allowedHosts = try HostAllowlist(parsing: ["127.0.0.1"])
        let service = ConnectedContentService(configuration: configuration, clock: SystemClock(), logger: quiet)
        let live = try Template.parse(Self.bestSeller.replacingOccurrences(of: "PORT", with: String(port)).replacingOccurrences(of: "BODY", with: Self.body))
        let inlined = try Template.parse(Self.body)
        var liveContexts: [LiquidObject] = []
        var inlinedContexts: [LiquidObject] = []
        for index in 0..<renders {
            let category = "c\(index % categories)"
            let user: LiquidValue = [
                "user": ["external_id": .string("u\(index)"), "first_name": index % 3 == 0 ? .nil : "지민", "phone": .string("+8210\(10_000_000 + index)"),
                         "custom_attributes": ["last_viewed_category": .string(category)]],
            ]
            var withAnswer = BrazeContext.make(from: user)
            withAnswer["best"] = (try? LiquidValue(json: Data(Self.answer(category).utf8))) ?? .nil
            liveContexts.append(BrazeContext.make(from: user))
            inlinedContexts.append(withAnswer)
        }
        var environment = RenderEnvironment()
        environment.fetcher = service.fetcher(for: ConnectedContentContext(workspaceID: 0, channel: "bench"))
        do {
            let cold = try await Self.pass("cold cache", live, contexts: liveContexts, environment: environment, concurrency: concurrency)
            let requestsAfterCold = received.count
            print(cold.json(extra: ["api_requests": LiquidValue.int(requestsAfterCold)]))
            let warm = try await Self.pass("warm cache", live, contexts: liveContexts, environment: environment, concurrency: concurrency)
            print(warm.json(extra: ["api_requests": LiquidValue.int(received.count - requestsAfterCold)]))
            let local = try await Self.pass("inlined (no network)", inlined, contexts: inlinedContexts, environment: RenderEnvironment(), concurrency: concurrency)
            print(local.json(extra: [:]))
            let ratio = (local.rendersPerSecond / warm.rendersPerSecond * 100).rounded() / 100
            print(CommandJSON.text(["pass": "summary", "inlined_over_warm": .double(ratio), "latency_ms": .int(latencyMilliseconds), "categories": .int(categories)]))
        } catch {
            try? await service.shutdown()
            try? await server.stop()
            throw error
        }
        try await service.shutdown()
        try await server.stop()
    }

    /// One pass's throughput and latency.
    struct PassResult {
        let name: String
        let renders: Int
        let seconds: Double
        let latencies: [Double]
        var rendersPerSecond: Double { Double(renders) / seconds }

        func json(extra: [String: LiquidValue]) -> String {
            let sorted = latencies.sorted()
            func percentile(_ p: Double) -> Double { ((sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] * 1000).rounded()) / 1000 }
            var object = LiquidObject()
            object["pass"] = .string(name)
            object["renders"] = .int(renders)
            object["seconds"] = .double((seconds * 100).rounded() / 100)
            object["renders_per_second"] = .double(rendersPerSecond.rounded())
            object["p50_ms"] = .double(percentile(0.5))
            object["p99_ms"] = .double(percentile(0.99))
            for (key, value) in extra { object[key] = value }
            return CommandJSON.text(.object(object))
        }
    }

    static func pass(
        _ name: String, _ template: Template, contexts: [LiquidObject], environment: RenderEnvironment, concurrency: Int
    ) async throws -> PassResult {
        let next = RenderCounter()
        let start = ContinuousClock.now
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var mine: [Double] = []
                    while true {
                        let index = next.take()
                        guard index < contexts.count else { return mine }
                        let began = ContinuousClock.now
                        _ = try await template.render(contexts[index], environment: environment)
                        mine.append(BenchLiquidCommand.seconds(ContinuousClock.now - began) * 1000)
                    }
                }
            }
            return try await group.reduce(into: [Double]()) { $0 += $1 }
        }
        return PassResult(name: name, renders: contexts.count, seconds: BenchLiquidCommand.seconds(ContinuousClock.now - start), latencies: latencies)
    }
}

/// Hands out render indexes to the workers of a pass.
final class RenderCounter: Sendable {
    private let next = Mutex(0)

    var count: Int { next.withLock { $0 } }

    func take() -> Int {
        next.withLock { value in
            defer { value += 1 }
            return value
        }
    }
}
