import ArgumentParser
import BeckonTestSupport
import Hummingbird
import HummingbirdHTTP2
import NIOCore
import Logging
import ServiceLifecycle

/// A Hummingbird server on a free loopback port inside a benchmark process (the API or receiver
/// a benchmark calls): plain HTTP/1.1, or HTTP/2 over TLS with a certificate from `tls`.
struct BenchLocalServer {
    let port: Int
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    static func start<Context: RequestContext>(
        _ router: Router<Context>, tls authority: TestCertificateAuthority? = nil, logger: Logger
    ) async throws -> BenchLocalServer where Context.Source == ApplicationRequestContextSource {
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let configuration = ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0))
        let onRunning: @Sendable (any Channel) async -> Void = { portContinuation.yield($0.localAddress?.port ?? 0) }
        let app = if let tls = try authority?.serverTLSConfiguration() {
            try Application(
                router: router, server: .http2Upgrade(tlsConfiguration: tls), configuration: configuration,
                onServerRunning: onRunning, logger: logger)
        } else {
            Application(router: router, configuration: configuration, onServerRunning: onRunning, logger: logger)
        }
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
