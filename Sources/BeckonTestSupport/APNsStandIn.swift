import BeckonChannels
import BeckonCore
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// A local APNs stand-in: verifies every provider token's ES256 signature with the public key of
/// the test's key pair, checks the headers and payload Apple requires, and answers by token:
/// `dead…` 410 Unregistered (with a timestamp), `bad0…` 400 BadDeviceToken, `a429…` 429 with
/// Retry-After once then 200; `expireFirstToken` answers 403 ExpiredProviderToken to the first
/// provider token it sees, `refuseAll` 403 InvalidProviderToken to everything.
public final class APNsStandIn: Sendable {
    /// One request as the stand-in saw it, with the status it answered.
    public struct Push: Sendable {
        public let token: String
        public let apnsID: String
        public let jwt: String
        public let headers: [String: String]
        public let payload: JSONValue
        public let status: Int
    }

    let publicKey: P256.Signing.PublicKey
    let topic: String
    let unregisteredAt: Int64
    let latency: Duration
    private let pushes = Mutex<[Push]>([])
    private let state = Mutex<(expireFirst: Bool, expired: String?, refuseAll: Bool, throttled: Set<String>)>((false, nil, false, []))

    /// - Parameters:
    ///   - unregisteredAt: the `timestamp` (epoch ms) of 410 answers.
    ///   - latency: how long each answer takes (a provider's round trip).
    public init(publicKey: P256.Signing.PublicKey, topic: String, unregisteredAt: Int64, latency: Duration = .zero) {
        self.publicKey = publicKey
        self.topic = topic
        self.unregisteredAt = unregisteredAt
        self.latency = latency
    }

    public var all: [Push] { pushes.withLock { $0 } }
    public var accepted: [Push] { all.filter { $0.status == 200 } }
    public func expireFirstToken() { state.withLock { $0.expireFirst = true } }
    public func refuseAll(_ refuse: Bool) { state.withLock { $0.refuseAll = refuse } }

    /// Requests in flight per connection (HTTP/2 streams multiplexed on one connection).
    public let inFlight = InFlightGauge()

    public func router() -> Router<ConnectionRequestContext> {
        let router = Router(context: ConnectionRequestContext.self)
        router.post("/3/device/{token}") { request, context -> Response in
            try await self.inFlight.measure(context.connection) { try await self.respond(request, context: context) }
        }
        return router
    }

    private func respond(_ request: Request, context: ConnectionRequestContext) async throws -> Response {
        let token = context.parameters.get("token") ?? ""
        let body = try await request.body.collect(upTo: 1 << 16)
        if self.latency > .zero { try await Task.sleep(for: self.latency) }
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        let jwt = String((headers["authorization"] ?? "").dropFirst("bearer ".count))
        func answer(_ status: Int, _ reason: String?, extra: [String: JSONValue] = [:], retryAfter: String? = nil) -> Response {
            self.pushes.withLock {
                $0.append(Push(
                    token: token, apnsID: headers["apns-id"] ?? "", jwt: jwt, headers: headers,
                    payload: (try? JSONValue.parse(Array(String(buffer: body).utf8))) ?? .null, status: status))
            }
            var fields = HTTPFields()
            if let id = headers["apns-id"] { fields[HTTPField.Name("apns-id")!] = id }
            if let retryAfter { fields[HTTPField.Name("Retry-After")!] = retryAfter }
            var object = extra
            if let reason { object["reason"] = .string(reason) }
            return Response(
                status: HTTPResponse.Status(code: status), headers: fields,
                body: .init(byteBuffer: ByteBuffer(string: reason == nil ? "" : JSONValue.object(object).serialized())))
        }
        // Provider token: ES256 over the test key, kid and iss as configured.
        guard let verified = try? JSONWebToken.verifyES256(jwt, key: self.publicKey),
            let header = try? JSONValue.parse(verified.header), let claims = try? JSONValue.parse(verified.claims),
            header["kid"]?.stringValue == "KEY1234567", claims["iss"]?.stringValue == "TEAM123456", claims["iat"] != nil
        else { return answer(403, "InvalidProviderToken") }
        let mode = self.state.withLock { state -> String in
            if state.refuseAll { return "refuse" }
            if state.expireFirst, state.expired == nil { state.expired = jwt }
            if state.expired == jwt { return "expired" }
            if token.hasPrefix("a429"), state.throttled.insert(token).inserted { return "throttle" }
            return "ok"
        }
        switch mode {
        case "refuse": return answer(403, "InvalidProviderToken")
        case "expired": return answer(403, "ExpiredProviderToken")
        default: break
        }
        guard headers["apns-topic"] == self.topic else { return answer(400, "BadTopic") }
        guard let type = headers["apns-push-type"], ["alert", "background"].contains(type) else { return answer(400, "InvalidPushType") }
        guard let priority = headers["apns-priority"], ["5", "10"].contains(priority), type == "alert" || priority == "5" else {
            return answer(400, "BadPriority")
        }
        guard let id = headers["apns-id"], UUID(uuidString: id) != nil, id == id.lowercased() else { return answer(400, "BadMessageId") }
        guard body.readableBytes <= 4096 else { return answer(413, "PayloadTooLarge") }
        guard body.readableBytes > 0 else { return answer(400, "PayloadEmpty") }
        if token.hasPrefix("dead") { return answer(410, "Unregistered", extra: ["timestamp": .int(self.unregisteredAt)]) }
        if token.hasPrefix("bad0") { return answer(400, "BadDeviceToken") }
        if mode == "throttle" { return answer(429, "TooManyRequests", retryAfter: "30") }
        return answer(200, nil)
    }
}
