/// Why an outbound call (Connected Content, a webhook, later exports) produced no usable
/// response. The reason goes to the activity log and never holds a secret.
public struct OutboundFailure: Error, Sendable, CustomStringConvertible {
    /// What went wrong, for the activity log and retry decisions.
    public enum Kind: String, Sendable {
        case invalidRequest = "invalid_request"
        case blocked
        case timeout
        case tooLarge = "too_large"
        case network
        case httpStatus = "http_status"
    }

    public let reason: String
    public let kind: Kind
    public var status: Int?

    public init(_ reason: String, kind: Kind, status: Int? = nil) {
        self.reason = reason
        self.kind = kind
        self.status = status
    }

    /// Timeouts, dropped connections and 5xx are worth another attempt.
    public var isRetryable: Bool {
        switch kind {
        case .timeout, .network: return true
        case .httpStatus: return (status ?? 0) >= 500
        default: return false
        }
    }

    public var description: String { reason }
}
