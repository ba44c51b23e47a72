import BeckonCore
import BeckonOutboundHTTP
import BeckonStorage
import Logging

/// Connected Content as the rest of Beckon uses it: the service that renders call, and the
/// stores behind its credentials, settings and activity-log endpoints, all over one database.
public struct ConnectedContentComponents: Sendable {
    public let service: ConnectedContentService
    public let credentials: ConnectedContentCredentialStore
    public let settings: ConnectedContentSettingsStore
    public let activityLog: ActivityLogStore
    /// The allowlist every workspace shares, shown beside a workspace's own.
    public let serverAllowlist: HostAllowlist
    /// The HTTP client Connected Content calls with, shared with the channels.
    public let outbound: OutboundHTTPClient
    /// The box sealing stored secrets (Connected Content and push credentials).
    public let secrets: SecretBox

    public init(
        database: any SQLDatabase, secrets: SecretBox, clock: any BeckonClock, configuration: ConnectedContentConfiguration, logger: Logger
    ) {
        credentials = ConnectedContentCredentialStore(database: database, box: secrets, clock: clock)
        settings = ConnectedContentSettingsStore(database: database, clock: clock)
        activityLog = ActivityLogStore(database: database)
        serverAllowlist = configuration.allowedHosts
        self.secrets = secrets
        let outbound = OutboundHTTPClient(serverAllowlist: configuration.allowedHosts, extraTrustRoots: configuration.extraTrustRoots)
        self.outbound = outbound
        service = ConnectedContentService(
            configuration: configuration, clock: clock, settings: settings, credentials: credentials, activityLog: activityLog,
            outbound: outbound, logger: logger)
    }
}
