import BeckonCore
import BeckonTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import Synchronization
import Testing

/// A webhook receiver that honours `Idempotency-Key`: it counts every request per key and per
/// user, and accepts each key once.
final class IdempotentReceiver: Sendable {
    private let state = Mutex<(requests: Int, perKey: [String: Int], usersByKey: [String: String])>((0, [:], [:]))

    var requests: Int { state.withLock { $0.requests } }
    var perKey: [String: Int] { state.withLock { $0.perKey } }
    var usersByKey: [String: String] { state.withLock { $0.usersByKey } }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/hook") { request, _ -> Response in
            let bytes = try await request.body.collect(upTo: 1 << 16)
            try await Task.sleep(for: .milliseconds(2))
            let key = request.headers[HTTPField.Name("Idempotency-Key")!] ?? ""
            let user = (try? JSONValue.parse(Array(String(buffer: bytes).utf8)))?["to"]?.stringValue ?? ""
            self.state.withLock { state in
                state.requests += 1
                state.perKey[key, default: 0] += 1
                state.usersByKey[key] = user
            }
            return Response(status: .ok)
        }
        return router
    }
}

/// Case (f): SIGKILL in the middle of a send; after a restart every eligible user gets the message,
/// and the only repeats are retries of in-flight messages under the same key.
@Suite("send pipeline survives kill -9", .serialized)
struct SendCrashTests {
    @Test func sendCompletesAfterKill() async throws {
        let directory = try ServerProcessTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = "crash-test-key-0123456789"
        let receiver = IdempotentReceiver()
        let users = 3_000
        try await LocalHTTPServer.run(receiver.router()) { port in
            // The restarted process is the same node (same id): it takes back its own claims at once.
            let environment = ["BECKON_ALLOW_HOSTS": "127.0.0.1:\(port)", "BECKON_NODE_ID": "crash-node"]
            var server = try ServerProcessTests.Server(dataDirectory: directory, adminKey: key, extraEnvironment: environment)
            try await server.waitUntilReady()
            for chunk in stride(from: 0, to: users, by: 75) {
                let attributes = (chunk..<min(chunk + 75, users)).map { #"{"external_id": "u\#($0)", "first_name": "N\#($0)"}"# }
                let (status, _) = try await server.request("POST", "/users/track", key: key, body: #"{"attributes": [\#(attributes.joined(separator: ","))]}"#)
                #expect(status == 201)
            }
            let campaign = #"""
                {"name": "Crash", "delivery": {"type": "api_triggered"},
                 "messages": {"webhook": {"url": "http://127.0.0.1:\#(port)/hook", "body": "{\"to\": \"{{${user_id}}}\", \"hi\": \"{{${first_name}}}\"}"}}}
                """#
            let (created, text) = try await server.request("POST", "/beckon/v1/campaigns", key: key, body: campaign)
            #expect(created == 201, "\(text)")
            let id = try #require(try JSONValue.parse(Array(text.utf8))["campaign_id"]?.stringValue)
            _ = try await server.request("POST", "/beckon/v1/campaigns/\(id)/launch", key: key, body: "{}")
            let (triggered, _) = try await server.request("POST", "/campaigns/trigger/send", key: key, body: #"{"campaign_id": "\#(id)", "broadcast": true}"#)
            #expect(triggered == 201)
            for _ in 0..<400 where receiver.requests < users / 3 { try await Task.sleep(for: .milliseconds(10)) }
            server.kill9()
            let beforeKill = receiver.requests
            #expect(beforeKill > 0 && beforeKill < users, "killed mid-send (\(beforeKill) of \(users) received)")

            server = try ServerProcessTests.Server(dataDirectory: directory, adminKey: key, extraEnvironment: environment)
            defer { server.terminate() }
            try await server.waitUntilReady()
            for _ in 0..<3_000 where Set(receiver.usersByKey.values).count < users { try await Task.sleep(for: .milliseconds(20)) }
            let usersByKey = receiver.usersByKey
            #expect(Set(usersByKey.values).count == users, "every user received the message")
            #expect(usersByKey.count == users, "one key per user: never two ids for one message")
            let repeated = receiver.perKey.filter { $0.value > 1 }
            #expect(receiver.requests == users + repeated.values.reduce(0) { $0 + $1 - 1 })
            #expect(repeated.count <= 1_000, "only the claim batch in flight (1,000) can repeat (\(repeated.count))")
            // The receiver has every message before the last ones are settled: wait for the settle.
            var details = ""
            for _ in 0..<100 {
                (_, details) = try await server.request("GET", "/beckon/v1/campaigns/\(id)", key: key, body: nil)
                if details.contains(#""delivered":\#(users)"#) { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(details.contains(#""delivered":\#(users)"#), "\(details)")
        }
    }
}
