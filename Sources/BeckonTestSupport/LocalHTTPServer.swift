import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// A real HTTP server on 127.0.0.1 and a free port, for tests that make outbound calls
/// (Connected Content, webhooks): `try await LocalHTTPServer.run(router) { port in … }`.
public enum LocalHTTPServer {
    /// Starts `router` on a free loopback port, runs `body` with the port, then stops the server.
    public static func run<Context: RequestContext, T: Sendable>(
        _ router: Router<Context>, _ body: (_ port: Int) async throws -> T
    ) async throws -> T where Context.Source == ApplicationRequestContextSource {
        let logger = Logger(label: "local-http-server")
        return try await serve(logger: logger, body) { onRunning in
            Application(
                router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "local-test"),
                onServerRunning: onRunning, logger: logger)
        }
    }

    /// Runs the application `make` builds (given its `onServerRunning`), hands `body` the port it
    /// listens on, then shuts it down, whether `body` returned or threw.
    static func serve<App: ApplicationProtocol, T: Sendable>(
        logger: Logger, _ body: (_ port: Int) async throws -> T,
        make: (_ onRunning: @escaping @Sendable (any Channel) async -> Void) throws -> App
    ) async throws -> T {
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = try make { channel in
            portContinuation.yield(channel.localAddress?.port ?? 0)
            portContinuation.finish()
        }
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let running = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            await group.triggerGracefulShutdown()
            try await running.value
            throw LocalHTTPServerError()
        }
        do {
            let result = try await body(port)
            await group.triggerGracefulShutdown()
            try await running.value
            return result
        } catch {
            await group.triggerGracefulShutdown()
            try? await running.value
            throw error
        }
    }
}

/// The local server did not start listening.
public struct LocalHTTPServerError: Error, CustomStringConvertible {
    public var description: String { "the local HTTP server did not start" }
}
