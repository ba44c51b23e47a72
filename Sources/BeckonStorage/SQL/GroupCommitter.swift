import Synchronization

/// Commits the writes of many concurrent requests in one transaction, answering each only after it.
///
/// Leader/follower group commit: the first writer to find no commit in progress becomes the
/// leader and commits everything queued so far in one transaction, then hands leadership to the
/// oldest writer still waiting (so no request waits behind an endless stream of others); the
/// others wait for their ticket. Each write runs under its own savepoint, so one failing write
/// rolls back alone. Per-user aggregate increments that writes record are merged across the
/// batch and applied once before the commit, which is what makes group commit fast.
public final class GroupCommitter: Sendable {
    private struct State {
        var queue: [PendingWrite] = []
        var leaderActive = false
    }

    private let database: any SQLDatabase
    private let state = Mutex(State())
    private let maxBatch: Int

    /// - Parameters:
    ///   - database: where to commit.
    ///   - maxBatch: the most writes one transaction carries.
    public init(database: any SQLDatabase, maxBatch: Int = 256) {
        self.database = database
        self.maxBatch = maxBatch
    }

    /// Runs `body` in a group transaction and returns its result once that transaction committed.
    ///
    /// - Parameter flushesAggregates: apply the aggregates queued by earlier writes of the batch
    ///   before this one runs (needed by writes that move or delete aggregate rows).
    public func write<T: Sendable>(
        flushesAggregates: Bool = false,
        _ body: @Sendable @escaping (any SQLConnection, inout AggregateDeltas) throws -> T
    ) async throws -> T {
        let ticket = WriteTicket()
        let pending = PendingWrite(flushesAggregates: flushesAggregates, ticket: ticket) { connection, deltas in
            try body(connection, &deltas)
        }
        let leads = state.withLock { state -> Bool in
            state.queue.append(pending)
            if state.leaderActive { return false }
            state.leaderActive = true
            return true
        }
        if leads { await commitNextBatch() }
        while true {
            switch await ticket.next() {
            case .done(let result):
                guard let value = try result.get() as? T else {
                    throw SQLError(message: "group commit returned a value of the wrong type", sql: "")
                }
                return value
            case .lead:
                await commitNextBatch()
            }
        }
    }

    /// Commits one batch, then hands leadership to the oldest waiting writer (so no request waits
    /// behind an endless stream of others), or gives it up when nothing is queued.
    private func commitNextBatch() async {
        let batch = state.withLock { state -> [PendingWrite] in
            let taken = Array(state.queue.prefix(maxBatch))
            state.queue.removeFirst(taken.count)
            if taken.isEmpty { state.leaderActive = false }
            return taken
        }
        if !batch.isEmpty { await commit(batch) }
        let next = state.withLock { state -> WriteTicket? in
            guard let first = state.queue.first else {
                state.leaderActive = false
                return nil
            }
            return first.ticket
        }
        next?.lead()
    }

    private func commit(_ batch: [PendingWrite]) async {
        do {
            let results = try await database.write { connection -> [Result<any Sendable, any Error>] in
                var merged = AggregateDeltas()
                var results: [Result<any Sendable, any Error>] = []
                results.reserveCapacity(batch.count)
                for write in batch {
                    if write.flushesAggregates, !merged.isEmpty {
                        try merged.apply(connection)
                        merged = AggregateDeltas()
                    }
                    try connection.execute("SAVEPOINT group_write")
                    var deltas = AggregateDeltas()
                    do {
                        let value = try write.body(connection, &deltas)
                        try connection.execute("RELEASE SAVEPOINT group_write")
                        merged.merge(deltas)
                        results.append(.success(value))
                    } catch {
                        try connection.execute("ROLLBACK TO SAVEPOINT group_write")
                        try connection.execute("RELEASE SAVEPOINT group_write")
                        results.append(.failure(error))
                    }
                }
                try merged.apply(connection)
                return results
            }
            for (write, result) in zip(batch, results) { write.ticket.complete(result) }
        } catch {
            for write in batch { write.ticket.complete(.failure(error)) }
        }
    }
}

/// A write waiting for its group transaction.
private struct PendingWrite: Sendable {
    let flushesAggregates: Bool
    let ticket: WriteTicket
    let body: @Sendable (any SQLConnection, inout AggregateDeltas) throws -> any Sendable

    init(
        flushesAggregates: Bool, ticket: WriteTicket,
        body: @Sendable @escaping (any SQLConnection, inout AggregateDeltas) throws -> any Sendable
    ) {
        self.flushesAggregates = flushesAggregates
        self.ticket = ticket
        self.body = body
    }
}

/// What a waiting writer is told: its outcome, or that it now leads the next commit.
private enum TicketSignal: Sendable {
    case done(Result<any Sendable, any Error>)
    case lead
}

/// The signals for one waiting writer, handed over by the current leader.
private final class WriteTicket: Sendable {
    private struct State {
        var signals: [TicketSignal] = []
        var waiter: CheckedContinuation<TicketSignal, Never>?
    }

    private let state = Mutex(State())

    func complete(_ result: Result<any Sendable, any Error>) { send(.done(result)) }

    func lead() { send(.lead) }

    private func send(_ signal: TicketSignal) {
        let waiter = state.withLock { state -> CheckedContinuation<TicketSignal, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.signals.append(signal)
            return nil
        }
        waiter?.resume(returning: signal)
    }

    func next() async -> TicketSignal {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> TicketSignal? in
                if !state.signals.isEmpty { return state.signals.removeFirst() }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}
