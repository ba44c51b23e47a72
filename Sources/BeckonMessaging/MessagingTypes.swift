import BeckonStorage
import Crypto
import Foundation

/// Where a message is in its life. Stored as the raw value in `messages.state`.
public enum MessageState: String, Sendable, CaseIterable {
    /// Waiting for `not_before`.
    case queued
    /// Claimed by a node (see `lease_owner`, `lease_expires_at`).
    case sending
    case delivered
    case failed
    case aborted
    /// Not sent by rule (frequency cap, quiet hours); never retried.
    case skipped
    /// In the control group: recorded, never sent.
    case control
    case cancelled

    var sql: SQLValue { .text(rawValue) }
}

/// Why a dispatch exists. Stored as the raw value in `dispatches.kind`.
public enum DispatchKind: String, Sendable {
    case scheduled
    case apiTriggered = "api_triggered"
    case actionBased = "action_based"
    case messagesSend = "messages_send"

    /// The Liquid object trigger properties appear under.
    var triggerPropertiesKey: String { self == .actionBased ? "event_properties" : "api_trigger_properties" }

    /// Whether the workspace's global control group is sent to (API sends reach it, as in Braze).
    var reachesGlobalControlGroup: Bool { self == .apiTriggered || self == .messagesSend }
}

/// Where a dispatch is. Stored as the raw value in `dispatches.state`.
public enum DispatchState: String, Sendable {
    /// Not (fully) added to the message queue yet.
    case pending
    case expanded
    case cancelled

    var sql: SQLValue { .text(rawValue) }
}

/// Dispatch ids: `dsp_` and 32 hex digits, random for API calls and derived from what made the
/// dispatch otherwise, so making it twice (a retry, a second node) hits the same row.
public enum DispatchID {
    public static func random() -> String {
        "dsp_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    }

    /// The id of a dispatch made from `parts` (e.g. campaign and run time).
    public static func derived(_ parts: String...) -> String {
        "dsp_" + Hex.digest(parts.joined(separator: "|"), digits: 32)
    }
}

/// Lower-case hex of a SHA-256 prefix.
enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    /// 16 hex digits, zero-padded: sorts like the number.
    static func fixedWidth(_ value: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { buffer in
            for index in 0..<16 { buffer[index] = digits[Int((value >> UInt64(60 - index * 4)) & 0xF)] }
            return 16
        }
    }

    static func digest(_ text: String, digits count: Int) -> String {
        let digest = SHA256.hash(data: Data(text.utf8))
        return String(unsafeUninitializedCapacity: count) { buffer in
            for (index, byte) in digest.prefix(count / 2).enumerated() {
                buffer[index * 2] = digits[Int(byte >> 4)]
                buffer[index * 2 + 1] = digits[Int(byte & 0x0F)]
            }
            return count
        }
    }
}

/// A node's identity and how long its claims hold. Every node sharing a database needs its own
/// `nodeID`; a node renews the leases of the work it is doing, and any node re-queues a claim
/// whose lease expired (its node died or lost the database).
public struct NodeIdentity: Sendable, Hashable {
    public var nodeID: String
    public var leaseMilliseconds: Int64

    /// The default id: host name and process id.
    public static var defaultNodeID: String {
        "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
    }

    public init(nodeID: String = NodeIdentity.defaultNodeID, leaseSeconds: Int = 30) {
        self.nodeID = nodeID
        self.leaseMilliseconds = Int64(leaseSeconds) * 1_000
    }
}

/// Background jobs that exactly one node may run at a time: each run takes a PostgreSQL
/// transaction-level advisory lock (SQLite has one writer, so it needs none).
enum SingletonJob: Int64 {
    case scheduler = 4_242_101
    case triggerOutbox = 4_242_102

    /// Inside a write transaction: whether this node holds the job's lock for the transaction.
    func tryLock(_ connection: any SQLConnection) throws -> Bool {
        guard connection.dialect.kind == .postgres else { return true }
        let row = try connection.first("SELECT pg_try_advisory_xact_lock(?)", [.integer(rawValue)])
        switch row?[0] {
        case .integer(let value)?: return value != 0
        case .text(let text)?: return text == "t" || text == "true"
        default: return false
        }
    }
}
