import Hummingbird
import Logging
import NIOCore

/// The per-request context of every Beckon route: Hummingbird's core storage plus the caller's address.
public struct BeckonRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The peer's IP address, for API key IP allowlists; `nil` when unknown (in-process tests).
    public let remoteIP: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteIP = source.channel.remoteAddress?.ipAddress
    }

    /// Bodies are read by the routes themselves, bounded by `APIConfiguration.maxBodyBytes`.
    public var maxUploadSize: Int { 16 * 1024 * 1024 }
}
