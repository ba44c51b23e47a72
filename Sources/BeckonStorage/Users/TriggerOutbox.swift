import BeckonCore

/// Which ingested facts a workspace's campaigns react to. Ingestion writes exactly these to the
/// trigger outbox, in the transaction that stores the data, so a crash can never keep the data
/// and lose the trigger (or the other way round); a workspace nothing reacts in writes nothing.
public struct TriggerInterest: Sendable, Hashable {
    /// Custom events by name (triggers, `cancel_if`, conversions).
    public var eventNames: Set<String>
    public var purchases: Bool
    public var sessionStarts: Bool
    /// Attribute changes (segment entry is re-checked on every change, event or purchase).
    public var profileUpdates: Bool
    /// Opens of a campaign's push (conversions, triggers).
    public var pushOpens: Bool

    public init(
        eventNames: Set<String> = [], purchases: Bool = false, sessionStarts: Bool = false, profileUpdates: Bool = false, pushOpens: Bool = false
    ) {
        self.eventNames = eventNames
        self.purchases = purchases
        self.sessionStarts = sessionStarts
        self.profileUpdates = profileUpdates
        self.pushOpens = pushOpens
    }

    /// Nothing reacts: ingestion writes no outbox rows.
    public static let none = TriggerInterest()

    public var isEmpty: Bool { eventNames.isEmpty && !purchases && !sessionStarts && !profileUpdates && !pushOpens }
}

/// One fact in the trigger outbox: what a user did, as ingested.
public struct OutboxFact: Sendable {
    /// Kinds as stored in `trigger_outbox.kind`.
    public enum Kind: String, Sendable {
        case event
        case purchase
        case sessionStart = "session_start"
        case profileUpdate = "profile_update"
        /// The user opened a push; `name` is the campaign it came from.
        case pushOpen = "push_open"
    }

    /// The row id: facts are consumed in this order.
    public let id: Int64
    public let workspaceID: Int64
    public let userID: Int64
    public let kind: Kind
    /// The event name, the purchased product id, or the campaign whose push was opened.
    public let name: String?
    public let properties: [String: JSONValue]
    /// When it happened (the event's own time), epoch ms.
    public let time: Int64
    /// When Beckon stored it, epoch ms: delays and conversion windows count from here.
    public let observedAt: Int64

    public init(
        id: Int64, workspaceID: Int64, userID: Int64, kind: Kind, name: String?, properties: [String: JSONValue], time: Int64,
        observedAt: Int64
    ) {
        self.id = id
        self.workspaceID = workspaceID
        self.userID = userID
        self.kind = kind
        self.name = name
        self.properties = properties
        self.time = time
        self.observedAt = observedAt
    }
}

/// Appends facts to `trigger_outbox` inside an ingest transaction.
struct OutboxWriter {
    let interest: TriggerInterest
    let workspaceID: Int64
    let now: Int64
    private(set) var rows: [[SQLValue]] = []
    private var updatedUsers: Set<Int64> = []

    init(interest: TriggerInterest, workspaceID: Int64, now: Int64) {
        self.interest = interest
        self.workspaceID = workspaceID
        self.now = now
    }

    mutating func event(userID: Int64, name: String, properties: [String: JSONValue]?, time: Int64) {
        if interest.eventNames.contains(name) {
            append(userID: userID, kind: .event, name: name, properties: properties, time: time)
        } else {
            profileChanged(userID: userID)
        }
    }

    mutating func purchase(userID: Int64, productID: String, properties: [String: JSONValue]?, time: Int64) {
        if interest.purchases {
            append(userID: userID, kind: .purchase, name: productID, properties: properties, time: time)
        } else {
            profileChanged(userID: userID)
        }
    }

    mutating func sessionStart(userID: Int64, time: Int64) {
        if interest.sessionStarts {
            append(userID: userID, kind: .sessionStart, name: nil, properties: nil, time: time)
        } else {
            profileChanged(userID: userID)
        }
    }

    mutating func pushOpen(userID: Int64, campaignID: String, time: Int64) {
        if interest.pushOpens {
            append(userID: userID, kind: .pushOpen, name: campaignID, properties: nil, time: time)
        } else {
            profileChanged(userID: userID)
        }
    }

    /// A change that matters only to segment entry: one row per user per request at most (and
    /// none when another fact of the user already re-checks the segment).
    mutating func profileChanged(userID: Int64) {
        guard interest.profileUpdates, updatedUsers.insert(userID).inserted else { return }
        append(userID: userID, kind: .profileUpdate, name: nil, properties: nil, time: now, markUpdated: false)
    }

    private mutating func append(
        userID: Int64, kind: OutboxFact.Kind, name: String?, properties: [String: JSONValue]?, time: Int64, markUpdated: Bool = true
    ) {
        if markUpdated, interest.profileUpdates { updatedUsers.insert(userID) }
        rows.append([
            .integer(workspaceID), .integer(userID), .text(kind.rawValue), .text(name),
            .text(properties.map { JSONValue.object($0).serialized() }), .integer(time), .integer(now),
        ])
    }

    func flush(_ connection: any SQLConnection) throws {
        try connection.insertRows(into: "trigger_outbox", columns: ["workspace_id", "user_id", "kind", "name", "properties", "time", "observed_at"],
            rows: rows)
    }
}
