import Synchronization

/// Bounds how many deliveries of one campaign on one channel are in flight at once (the limit is
/// the channel's `concurrencyPerCampaign`); waiters are served in arrival order.
final class CampaignConcurrency: Sendable {
    private struct Slot {
        var active = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let slots = Mutex<[String: Slot]>([:])

    func acquire(_ key: String, limit: Int) async {
        let limit = max(1, limit)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let admitted = slots.withLock { slots -> Bool in
                var slot = slots[key] ?? Slot()
                defer { slots[key] = slot }
                guard slot.active < limit else {
                    slot.waiters.append(continuation)
                    return false
                }
                slot.active += 1
                return true
            }
            if admitted { continuation.resume() }
        }
    }

    /// Hands the slot to the next waiter, or frees it.
    func release(_ key: String) {
        let next = slots.withLock { slots -> CheckedContinuation<Void, Never>? in
            guard var slot = slots[key] else { return nil }
            if !slot.waiters.isEmpty {
                let waiter = slot.waiters.removeFirst()
                slots[key] = slot
                return waiter
            }
            slot.active -= 1
            slots[key] = slot.active == 0 ? nil : slot
            return nil
        }
        next?.resume()
    }
}
