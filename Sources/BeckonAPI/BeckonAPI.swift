import BeckonMessaging
import BeckonConnectedContent
import BeckonCore
import BeckonSegments
import BeckonStorage
import Hummingbird
import Logging

/// Beckon's HTTP surface: Braze's REST endpoints, Beckon's own `/beckon/v1` endpoints, the SDK
/// endpoint, `/health` and `/metrics`.
///
/// ```swift
/// let api = BeckonAPI(database: db, workspaces: workspaces, users: users, segments: segments,
///                      connectedContent: connectedContent, campaigns: campaigns, clock: SystemClock())
/// let router = api.makeRouter()
/// ```
public struct BeckonAPI: Sendable {
    let database: any SQLDatabase
    let workspaces: WorkspaceStore
    let users: UserStore
    let segments: SegmentService
    let connectedContent: ConnectedContentComponents
    let campaigns: CampaignComponents
    let clock: any BeckonClock
    let configuration: APIConfiguration
    let authenticator: Authenticator
    let metricsText: @Sendable () async -> String

    /// - Parameter metricsText: renders `/metrics` (Prometheus text exposition).
    public init(
        database: any SQLDatabase, workspaces: WorkspaceStore, users: UserStore, segments: SegmentService,
        connectedContent: ConnectedContentComponents, campaigns: CampaignComponents, clock: any BeckonClock, configuration: APIConfiguration = APIConfiguration(), metricsText: @escaping @Sendable () async -> String = { "" }
    ) {
        self.database = database
        self.workspaces = workspaces
        self.users = users
        self.segments = segments
        self.connectedContent = connectedContent
        self.campaigns = campaigns
        self.clock = clock
        self.configuration = configuration
        self.authenticator = Authenticator(
            workspaces: workspaces, clock: clock, acceptsLegacyKey: configuration.acceptsLegacyAPIKey)
        self.metricsText = metricsText
    }

    /// The router with every route and Beckon's middleware (request logs, metrics, JSON errors).
    public func makeRouter() -> Router<BeckonRequestContext> {
        let router = Router(context: BeckonRequestContext.self)
        router.add(middleware: LogRequestsMiddleware(.debug))
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: ErrorMiddleware())
        addHealthRoutes(to: router)
        addUserRoutes(to: router)
        addSDKRoutes(to: router)
        addSegmentablePropertyRoutes(to: router)
        addSegmentRoutes(to: router)
        addLiquidRoutes(to: router)
        addConnectedContentRoutes(to: router)
        addCampaignRoutes(to: router)
        addPushRoutes(to: router)
        addSMSRoutes(to: router)
        addEmailRoutes(to: router)
        addSubscriptionRoutes(to: router)
        return router
    }

    /// Authenticates (header key first, so a bad key never costs a body read) and reads the JSON body.
    func authorizedJSON(_ request: Request, context: BeckonRequestContext, permission: APIPermission) async throws
        -> (key: APIKeyRecord, body: JSONValue)
    {
        let keyOutsideBody = request.headers[.authorization] != nil || request.uri.queryParameters["api_key"] != nil
        if keyOutsideBody {
            let key = try await authenticator.authorize(request, context: context, permission: permission)
            return (key, try await RequestBody.json(request, maxBytes: configuration.maxBodyBytes))
        }
        let body = try await RequestBody.json(request, maxBytes: configuration.maxBodyBytes)
        return (try await authenticator.authorize(request, context: context, permission: permission, body: body), body)
    }
}
