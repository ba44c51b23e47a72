import BeckonCore
import Liquid

/// One way of reaching a user (webhook today; push, email, SMS/Kakao, in-app next). The send
/// pipeline knows channels only through this protocol: adding one is an adapter here and its
/// message type, with nothing in the pipeline branching on the channel.
public protocol MessageChannel: Sendable {
    /// The channel's key in a campaign's `messages` object and in message rows (`webhook`).
    var name: String { get }

    /// Validates one message of this channel as a marketer wrote it, parsing every template, and
    /// appends each problem as `path.field: what is wrong` (with Liquid line and column).
    func validate(_ message: JSONValue, path: String, rules: MessageRules, problems: inout [String])

    /// Parses the message's templates once per dispatch. Throws for a message that does not
    /// validate (a stored definition that was corrupted): the send fails, never falls back.
    func prepare(_ message: JSONValue, rules: MessageRules) throws -> any PreparedMessage

    /// Hands a rendered message to the provider. `recipient.messageID` is the idempotency key:
    /// the same message id is sent on every attempt.
    func send(_ message: RenderedMessage, to recipient: Recipient) async -> ChannelOutcome

    /// The users this message can reach at all (push: a valid token on one of its platforms),
    /// applied when the audience is expanded; `nil` for everyone.
    func reachability(_ message: JSONValue) -> SegmentFilter?

    /// Called with the users of a claimed chunk before their messages are sent, so a channel can
    /// load what it needs in one query (push: their tokens). Failures are the channel's to
    /// handle: `send` must still work without it.
    func prefetch(workspaceID: Int64, userIDs: [Int64]) async

    /// Deliveries of one campaign on this channel in flight at once (HTTP/1.1 vendors: their
    /// connection limit; HTTP/2 providers: the streams multiplexed on one connection).
    var concurrencyPerCampaign: Int { get }
}

/// A channel message with its templates parsed, rendered once per recipient.
public protocol PreparedMessage: Sendable {
    /// The message exactly as it would be sent with `context`. Throws `MessageAborted` for
    /// `{% abort_message %}`, `MessageRenderError` for anything that makes it unsendable.
    func render(_ context: LiquidObject, environment: RenderEnvironment) async throws -> RenderedMessage
}

/// Rules from the campaign that change what a message looks like, applied by each channel to
/// its own fields.
public struct MessageRules: Sendable, Hashable {
    /// Korean advertising law: the "(광고)" prefix and the opt-out footer (`nil`: not advertising).
    public var advertising: AdvertisingNotice?
    /// Whether the campaign is advertising (validation requires the channel's ad text field).
    public var isAdvertising: Bool

    public init(isAdvertising: Bool = false, advertising: AdvertisingNotice? = nil) {
        self.isAdvertising = isAdvertising
        self.advertising = advertising
    }
}

/// What an advertising message must carry (정보통신망법 Article 50).
public struct AdvertisingNotice: Sendable, Hashable {
    public static let prefix = "(광고) "
    /// The free opt-out line appended after the text.
    public var optOutText: String

    public init(optOutText: String) {
        self.optOutText = optOutText
    }
}

/// A message rendered for one recipient: the channel's payload as JSON, which previews show and
/// `send` delivers byte for byte.
public struct RenderedMessage: Sendable, Hashable {
    public let channel: String
    public let payload: JSONValue

    public init(channel: String, payload: JSONValue) {
        self.channel = channel
        self.payload = payload
    }
}

/// Who a message goes to and under which idempotency key.
public struct Recipient: Sendable {
    public let workspaceID: Int64
    /// The durable message id: the provider's idempotency key on every attempt.
    public let messageID: String
    public let userID: Int64
    /// This delivery's attempt, from 1 (channels that fan out look up what earlier attempts reached).
    public let attempt: Int
    public let campaignID: String?
    public let dispatchID: String
    public let variant: String
    public let externalID: String?

    public init(
        workspaceID: Int64, messageID: String, userID: Int64, attempt: Int = 1, campaignID: String? = nil, dispatchID: String = "",
        variant: String = "", externalID: String? = nil
    ) {
        self.workspaceID = workspaceID
        self.messageID = messageID
        self.userID = userID
        self.attempt = attempt
        self.campaignID = campaignID
        self.dispatchID = dispatchID
        self.variant = variant
        self.externalID = externalID
    }
}

/// What a provider's answer means, the same five outcomes for every channel.
public enum ChannelOutcome: Sendable, Hashable {
    /// The provider took the message (not proof of display). `detail` is logged, e.g. `HTTP 202`.
    case accepted(detail: String)
    /// The address (token, subscription, number) is dead: never retried.
    case invalidAddress(reason: String)
    /// This message is malformed or refused: never retried; shown to the campaign's author.
    case rejected(reason: String, status: Int?)
    /// Throttled or provider trouble: retried with backoff, not before `after` seconds when given.
    case retryable(reason: String, after: Int?, status: Int?)
    /// Our credentials, keys or provider settings are wrong: the channel is paused for the
    /// workspace and the message waits (not an attempt) until an operator fixes them.
    case configError(reason: String)
}

/// A message that cannot be made from its template and data (the send fails with this reason).
public struct MessageRenderError: Error, Sendable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// The channels a server offers, by name.
public struct ChannelCatalog: Sendable {
    private let channels: [String: any MessageChannel]

    public init(_ channels: [any MessageChannel]) {
        self.channels = Dictionary(channels.map { ($0.name, $0) }) { first, _ in first }
    }

    public subscript(name: String) -> (any MessageChannel)? { channels[name] }

    /// Channel names, sorted.
    public var names: [String] { channels.keys.sorted() }
}

extension MessageChannel {
    /// Nothing to load ahead by default.
    public func prefetch(workspaceID: Int64, userIDs: [Int64]) async {}

    /// Appends a problem for every template in `text` that does not parse, naming `field`.
    public func checkTemplate(_ text: String, field: String, problems: inout [String]) {
        do {
            _ = try Template.parse(text)
        } catch let error as LiquidSyntaxError {
            problems.append("\(field): Liquid syntax error at line \(error.line), column \(error.column): \(error.message)")
        } catch {
            problems.append("\(field): \(error)")
        }
    }
}
