/// Settings of the HTTP API, built once by the composition root.
public struct APIConfiguration: Sendable {
    /// Largest accepted request body.
    public var maxBodyBytes = 4 * 1024 * 1024
    /// Whether to accept the legacy `api_key` in the query string or body (Braze still does).
    public var acceptsLegacyAPIKey = true

    public init() {}
}
