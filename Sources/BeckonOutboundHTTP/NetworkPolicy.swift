import BeckonCore
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Decides which destinations outbound calls may reach: http/https on ports 80 and 443 at
/// public addresses, plus allowlisted hosts (any address but cloud metadata, and the allowlisted
/// ports). The check runs on every address a name resolves to, and again on the address each
/// new connection actually reached, so a name that changes its answer between the two is caught.
public final class NetworkPolicy: Sendable {
    /// Allowlisted for every workspace (`--allow-host`, `BECKON_ALLOW_HOSTS`, Beckon's own URL).
    public let serverAllowlist: HostAllowlist
    /// Non-public addresses reached through an allowlisted host, so connections to them pass.
    private let approvedAddresses = Mutex<Set<String>>([])
    /// Destinations that passed recently (`allowlisted|host:port`), so a send to one vendor does not
    /// resolve and classify its addresses for every message; new connections are still checked.
    private let recentlyAuthorized = Mutex<[String: ContinuousClock.Instant]>([:])

    public init(serverAllowlist: HostAllowlist) {
        self.serverAllowlist = serverAllowlist
    }

    /// Throws a `.blocked` failure naming the rule when `url` may not be called.
    public func authorize(host: String, port: Int, workspaceAllowlist: HostAllowlist) async throws(OutboundFailure) {
        let allowlisted = serverAllowlist.allows(host: host, port: port) || workspaceAllowlist.allows(host: host, port: port)
        let memo = "\(allowlisted)|\(host):\(port)"
        let now = ContinuousClock.now
        if let until = recentlyAuthorized.withLock({ $0[memo] }), until > now { return }
        if !allowlisted, port != 80, port != 443 {
            throw OutboundFailure(
                "port \(port) of \(host) is not allowed: only 80 and 443 unless the host is allowlisted", kind: .blocked)
        }
        let addresses = try await Self.resolve(host)
        for address in addresses {
            if AddressClassifier.isMetadata(address) {
                throw OutboundFailure("\(host) resolves to \(address), a cloud metadata address, which is never called", kind: .blocked)
            }
            guard let restriction = AddressClassifier.restriction(of: address) else { continue }
            guard allowlisted else {
                throw OutboundFailure(
                    "\(host) resolves to \(address) (\(restriction)); internal addresses need the host on the allowlist", kind: .blocked)
            }
            approvedAddresses.withLock { _ = $0.insert(address) }
        }
        recentlyAuthorized.withLock { memos in
            if memos.count > 10_000 { memos.removeAll() }
            memos[memo] = now + .seconds(30)
        }
    }

    /// Whether a connection that reached `address` may carry a request.
    func admitsConnection(to address: String) -> Bool {
        if AddressClassifier.isMetadata(address) { return false }
        guard AddressClassifier.restriction(of: address) != nil else { return true }
        return approvedAddresses.withLock { $0.contains(address) }
    }

    /// For the HTTP client's connection hook: closes and fails a connection to a refused address.
    func guardConnection(_ channel: any Channel) -> EventLoopFuture<Void> {
        guard let address = channel.remoteAddress?.ipAddress, !admitsConnection(to: address) else {
            return channel.eventLoop.makeSucceededVoidFuture()
        }
        channel.close(promise: nil)
        return channel.eventLoop.makeFailedFuture(
            OutboundFailure("the connection reached \(address), an internal address that is not allowlisted", kind: .blocked))
    }

    /// Every address `host` resolves to (an IP literal resolves to itself).
    static func resolve(_ host: String) async throws(OutboundFailure) -> [String] {
        if IPAllowlist.addressBytes(host) != nil { return [host] }
        let result: Result<[String], OutboundFailure>
        do {
            result = try await NIOThreadPool.singleton.runIfActive { lookUp(host) }
        } catch {
            result = .failure(OutboundFailure("cannot resolve \(host): \(error)", kind: .network))
        }
        return try result.get()
    }

    private static func lookUp(_ host: String) -> Result<[String], OutboundFailure> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0, let first = list else {
            let message = String(cString: gai_strerror(status))
            return .failure(OutboundFailure("cannot resolve \(host): \(message)", kind: .network))
        }
        defer { freeaddrinfo(first) }
        var addresses: [String] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            if entry.pointee.ai_family == AF_INET, let raw = entry.pointee.ai_addr {
                raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                    var address = pointer.pointee.sin_addr
                    _ = inet_ntop(AF_INET, &address, &buffer, socklen_t(buffer.count))
                }
            } else if entry.pointee.ai_family == AF_INET6, let raw = entry.pointee.ai_addr {
                raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                    var address = pointer.pointee.sin6_addr
                    _ = inet_ntop(AF_INET6, &address, &buffer, socklen_t(buffer.count))
                }
            }
            let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if !text.isEmpty, !addresses.contains(text) { addresses.append(text) }
            cursor = entry.pointee.ai_next
        }
        guard !addresses.isEmpty else { return .failure(OutboundFailure("\(host) has no address", kind: .network)) }
        return .success(addresses)
    }
}
