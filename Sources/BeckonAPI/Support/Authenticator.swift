import BeckonCore
import BeckonStorage
import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

/// Checks REST API keys: `Authorization: Bearer KEY` (or Braze's legacy `api_key`), revocation,
/// IP allowlist and the endpoint's permission.
public final class Authenticator: Sendable {
    private let workspaces: WorkspaceStore
    private let clock: any BeckonClock
    private let acceptsLegacyKey: Bool
    private let lastTouched = Mutex<[Int64: Date]>([:])
    /// Recently authenticated keys by presented text, so a busy client costs no database read per
    /// request; a revoked key stops working within `cacheSeconds`.
    private let recent = Mutex<[String: (record: APIKeyRecord, checkedAt: Date)]>([:])
    private let cacheSeconds: TimeInterval = 5

    public init(workspaces: WorkspaceStore, clock: any BeckonClock, acceptsLegacyKey: Bool) {
        self.workspaces = workspaces
        self.clock = clock
        self.acceptsLegacyKey = acceptsLegacyKey
    }

    /// The key record allowed to call an endpoint needing `permission`.
    ///
    /// - Throws: `APIError` 401 for a missing, unknown, revoked or IP-refused key; 403 when it
    ///   lacks `permission`.
    public func authorize(
        _ request: Request, context: BeckonRequestContext, permission: APIPermission, body: JSONValue? = nil
    ) async throws -> APIKeyRecord {
        guard let key = presentedKey(request, body: body) else {
            throw APIError.unauthorized("no API key: send 'Authorization: Bearer YOUR-REST-API-KEY'")
        }
        guard let record = try await lookup(key) else {
            throw APIError.unauthorized("the API key is not valid (unknown or revoked)")
        }
        if !record.ipAllowlist.isEmpty {
            guard let address = context.remoteIP, IPAllowlist.allows(address, entries: record.ipAllowlist) else {
                throw APIError.unauthorized("this API key may not be used from \(context.remoteIP ?? "an unknown address")")
            }
        }
        let adminCovers = permission.isBeckonOwn && record.permissions.contains(APIPermission.beckonWorkspaceAdmin.name)
        guard record.permissions.contains(permission.name) || adminCovers else {
            throw APIError.accessDenied("this API key does not have the '\(permission)' permission")
        }
        try await touch(record)
        return record
    }

    private func lookup(_ key: String) async throws -> APIKeyRecord? {
        let now = clock.now()
        if let cached = recent.withLock({ $0[key] }), now.timeIntervalSince(cached.checkedAt) < cacheSeconds, now >= cached.checkedAt {
            return cached.record
        }
        let record = try await workspaces.authenticate(key: key)
        recent.withLock { cache in
            if cache.count > 10_000 { cache.removeAll() }
            if let record { cache[key] = (record, now) } else { cache[key] = nil }
        }
        return record
    }

    private func presentedKey(_ request: Request, body: JSONValue?) -> String? {
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                let key = parts[1].trimmingCharacters(in: .whitespaces)
                return key.isEmpty ? nil : key
            }
            return nil
        }
        guard acceptsLegacyKey else { return nil }
        if let query = request.uri.queryParameters["api_key"], !query.isEmpty { return String(query) }
        return body?["api_key"]?.stringValue
    }

    /// Records use at most once a minute per key, so authentication stays a read.
    private func touch(_ record: APIKeyRecord) async throws {
        let now = clock.now()
        let due = lastTouched.withLock { touched -> Bool in
            if let last = touched[record.id], now.timeIntervalSince(last) < 60 { return false }
            touched[record.id] = now
            return true
        }
        if due { try await workspaces.touchAPIKey(id: record.id) }
    }
}
