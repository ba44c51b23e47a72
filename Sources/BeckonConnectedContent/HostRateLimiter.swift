import Synchronization

/// Paces calls per destination (generic cell rate algorithm): up to one second's worth at once,
/// then evenly spaced. A call that would wait longer than allowed is refused rather than queued,
/// so a big send slows to the rate the destination can take and fails clearly past that.
final class HostRateLimiter: Sendable {
    /// Theoretical arrival time per destination key.
    private let arrivals = Mutex<[String: ContinuousClock.Instant]>([:])

    /// Waits for a slot; throws when the wait would exceed `maxWait`.
    func acquire(_ key: String, perSecond: Int, maxWait: Duration) async throws(RateLimitExceeded) {
        let interval = Duration.seconds(1) / perSecond
        let tolerance = interval * (perSecond - 1)
        let now = ContinuousClock.now
        let start: ContinuousClock.Instant? = arrivals.withLock { arrivals in
            let arrival = max(arrivals[key] ?? now, now)
            let start = max(now, arrival - tolerance)
            guard start - now <= maxWait else { return nil }
            arrivals[key] = arrival + interval
            if arrivals.count > 10_000 { arrivals = arrivals.filter { $0.value > now } }
            return start
        }
        guard let start else { throw RateLimitExceeded(perSecond: perSecond, maxWait: maxWait) }
        if start > now { try? await Task.sleep(until: start, clock: .continuous) }
    }
}

/// No call slot opened within the allowed wait.
struct RateLimitExceeded: Error, Sendable {
    let perSecond: Int
    let maxWait: Duration
}
