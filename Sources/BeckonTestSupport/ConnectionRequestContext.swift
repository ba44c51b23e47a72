import Hummingbird
import NIOCore
import Synchronization

/// A request context that knows the connection it came on: the HTTP/2 streams of one TLS
/// connection share it (a stream channel's parent), an HTTP/1.1 request's channel is the
/// connection (its parent is the listening socket, which has none).
public struct ConnectionRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Identifies the TCP connection.
    public let connection: ObjectIdentifier

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        let channel = source.channel
        if let parent = channel.parent, parent.parent != nil {
            connection = ObjectIdentifier(parent)
        } else {
            connection = ObjectIdentifier(channel)
        }
    }
}

/// Requests in flight per connection: the most seen at once on one connection (HTTP/2 streams
/// multiplexed) and how many connections there were.
public final class InFlightGauge: Sendable {
    private let state = Mutex<(now: [ObjectIdentifier: Int], most: Int, connections: Set<ObjectIdentifier>)>(([:], 0, []))

    public init() {}

    /// The most requests in flight at once on one connection.
    public var mostPerConnection: Int { state.withLock { $0.most } }
    /// Connections that carried at least one request.
    public var connections: Int { state.withLock { $0.connections.count } }

    /// Runs `body` counted as one request in flight on `connection`.
    public func measure<T: Sendable>(_ connection: ObjectIdentifier, _ body: () async throws -> T) async rethrows -> T {
        state.withLock { state in
            state.connections.insert(connection)
            let now = state.now[connection, default: 0] + 1
            state.now[connection] = now
            state.most = max(state.most, now)
        }
        defer { state.withLock { $0.now[connection, default: 1] -= 1 } }
        return try await body()
    }
}
