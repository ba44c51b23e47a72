import Synchronization

/// Commits the writes of many concurrent requests in one transaction, answering each only after it.
///
/// Leader/follower group commit: the first writer to find no commit in progress becomes the
/// leader and commits everything queued so far (and what queues up meanwhile) in batches; the
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
        if leads { await drain() }
        guard let result = try await ticket.value() as? T else {
            throw SQLError(message: "group commit returned a value of the wrong type", sql: "")
        }
        return result
    }

    private func drain() async {
        while true {
            let batch = state.withLock { state -> [PendingWrite] in
                let taken = Array(state.queue.prefix(maxBatch))
                state.queue.removeFirst(taken.count)
                if taken.isEmpty { state.leaderActive = false }
                return taken
            }
            if batch.isEmpty { return }
            await commit(batch)
        }
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

/// The outcome of one write, handed from the leader to the waiting writer.
private final class WriteTicket: Sendable {
    private struct State {
        var result: Result<any Sendable, any Error>?
        var waiter: CheckedContinuation<any Sendable, any Error>?
    }

    private let state = Mutex(State())

    func complete(_ result: Result<any Sendable, any Error>) {
        let waiter = state.withLock { state -> CheckedContinuation<any Sendable, any Error>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.result = result
            return nil
        }
        waiter?.resume(with: result)
    }

    func value() async throws -> any Sendable {
        try await withCheckedThrowingContinuation { continuation in
            let ready = state.withLock { state -> Result<any Sendable, any Error>? in
                if let result = state.result { return result }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}
