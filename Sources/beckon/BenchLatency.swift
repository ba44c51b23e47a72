import Metrics
import Synchronization

/// The metrics backend of a benchmark process: keeps every `beckon_push_provider_seconds`
/// recording (each provider request's round trip) for percentiles; other metrics are dropped.
final class BenchLatency: MetricsFactory, Sendable {
    static let shared = BenchLatency()
    private static let installed: Void = MetricsSystem.bootstrap(shared)
    private let samples = Mutex<[Int64]>([])

    /// Installs the backend (once per process) and forgets earlier recordings.
    func reset() {
        _ = Self.installed
        samples.withLock { $0.removeAll(keepingCapacity: true) }
    }

    /// The recordings' percentiles (0…1) in milliseconds, or nil when nothing was recorded.
    func percentiles(_ ranks: [Double]) -> [Double]? {
        let sorted = samples.withLock { $0 }.sorted()
        guard !sorted.isEmpty else { return nil }
        return ranks.map { rank in
            let index = min(sorted.count - 1, Int((Double(sorted.count) * rank).rounded(.up)) - 1)
            return (Double(sorted[max(0, index)]) / 10_000).rounded() / 100
        }
    }

    private final class Capture: TimerHandler, Sendable {
        let owner: BenchLatency
        init(owner: BenchLatency) { self.owner = owner }
        func recordNanoseconds(_ duration: Int64) { owner.samples.withLock { $0.append(duration) } }
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler { NOOPMetricsHandler.instance }
    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler { NOOPMetricsHandler.instance }
    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        label == "beckon_push_provider_seconds" ? Capture(owner: self) : NOOPMetricsHandler.instance
    }
    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}
}
