import Liquid
import Synchronization

/// Connected Content responses kept in memory for their time to live, within a byte budget
/// (oldest entries leave first, as in Braze's volatile cache). Keys are strings that name the
/// workspace and a hash of the request, so a shared cache across nodes could use them unchanged.
final class ResponseCache: Sendable {
    private struct Entry {
        let response: ConnectedContentResponse
        let expiresAt: Double
        let cost: Int
    }

    private struct State {
        var entries: [String: Entry] = [:]
        /// Keys in insertion order; `head` is the oldest still to consider for eviction.
        var order: [String] = []
        var head = 0
        var bytes = 0
    }

    private let capacityBytes: Int
    private let state = Mutex(State())

    init(capacityBytes: Int) {
        self.capacityBytes = capacityBytes
    }

    /// The response cached under `key`, when it has not expired at `now` (seconds since 1970).
    func lookup(_ key: String, now: Double) -> ConnectedContentResponse? {
        state.withLock { state in
            guard let entry = state.entries[key] else { return nil }
            if entry.expiresAt > now { return entry.response }
            state.entries[key] = nil
            state.bytes -= entry.cost
            return nil
        }
    }

    func store(_ response: ConnectedContentResponse, key: String, expiresAt: Double) {
        let cost = response.body.count + key.utf8.count + 96
        guard cost <= capacityBytes / 4 else { return }
        state.withLock { state in
            if let old = state.entries[key] { state.bytes -= old.cost } else { state.order.append(key) }
            state.entries[key] = Entry(response: response, expiresAt: expiresAt, cost: cost)
            state.bytes += cost
            while state.bytes > capacityBytes, state.head < state.order.count {
                let oldest = state.order[state.head]
                state.head += 1
                if let evicted = state.entries.removeValue(forKey: oldest) { state.bytes -= evicted.cost }
            }
            if state.head > 1_024, state.head * 2 > state.order.count {
                state.order.removeFirst(state.head)
                state.head = 0
            }
        }
    }
}

/// Runs one task per key at a time: callers asking for a key already being fetched wait for
/// that fetch and share its result, so a thousand renders needing one URL make one request.
final class SingleFlight: Sendable {
    private let inFlight = Mutex<[String: Task<ConnectedContentResponse, any Error>]>([:])

    /// The result of `work` for `key`, run by the first caller; `joined` tells whether this call shared another's.
    func run(
        _ key: String, _ work: @escaping @Sendable () async throws -> ConnectedContentResponse
    ) async throws -> (response: ConnectedContentResponse, joined: Bool) {
        let (task, joined) = inFlight.withLock { tasks -> (Task<ConnectedContentResponse, any Error>, Bool) in
            if let running = tasks[key] { return (running, true) }
            let task = Task { try await work() }
            tasks[key] = task
            return (task, false)
        }
        if !joined {
            Task {
                _ = await task.result
                self.inFlight.withLock { _ = $0.removeValue(forKey: key) }
            }
        }
        return (try await task.value, joined)
    }
}
