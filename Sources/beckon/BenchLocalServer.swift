import ArgumentParser
import Hummingbird
import Logging
import ServiceLifecycle

/// A Hummingbird server on a free loopback port inside a benchmark process (the API or receiver
/// a benchmark calls).
struct BenchLocalServer {
    let port: Int
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    static func start(_ router: Router<BasicRequestContext>, logger: Logger) async throws -> BenchLocalServer {
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { portContinuation.yield($0.localAddress?.port ?? 0) }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            await group.triggerGracefulShutdown()
            throw ValidationError("the local benchmark server did not start")
        }
        return BenchLocalServer(port: port, group: group, task: task)
    }

    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }
}
