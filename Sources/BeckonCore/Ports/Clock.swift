import Foundation
import Synchronization

/// The source of "now" for every decision about who gets what; injected so tests can set it.
public protocol BeckonClock: Sendable {
    /// The current instant.
    func now() -> Date
}

/// The wall clock, used only by the composition root.
public struct SystemClock: BeckonClock {
    public init() {}
    public func now() -> Date { Date() }
}

/// A clock that stays where a test puts it.
public final class FixedClock: BeckonClock {
    private let current: Mutex<Date>

    public init(_ start: Date) { current = Mutex(start) }

    public func now() -> Date { current.withLock { $0 } }

    /// Moves the clock to `date`.
    public func set(_ date: Date) { current.withLock { $0 = date } }

    /// Moves the clock forward by `seconds`.
    public func advance(by seconds: TimeInterval) { current.withLock { $0 += seconds } }
}
