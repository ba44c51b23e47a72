import BeckonCore
import BeckonTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import Synchronization
import Testing

/// A webhook receiver that records, per `Idempotency-Key`, how often and when it arrived.
final class TimedReceiver: Sendable {
    struct Key: Sendable {
        var count = 0
        var first: ContinuousClock.Instant
        var user: String
    }

    private let state = Mutex<[String: Key]>([:])
    var keys: [String: Key] { state.withLock { $0 } }
    var distinctUsers: Int { state.withLock { Set($0.values.map(\.user)).count } }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/hook") { request, _ -> Response in
            let bytes = try await request.body.collect(upTo: 1 << 16)
            try await Task.sleep(for: .milliseconds(1))
            let key = request.headers[HTTPField.Name("Idempotency-Key")!] ?? ""
            let user = (try? JSONValue.parse(Array(String(buffer: bytes).utf8)))?["to"]?.stringValue ?? ""
            let now = ContinuousClock.now
            self.state.withLock { keys in
                var entry = keys[key] ?? Key(first: now, user: user)
                entry.count += 1
                keys[key] = entry
            }
            return Response(status: .ok)
        }
        return router
    }
}

/// Several `beckon serve` processes, killed with SIGKILL at the worst moments: nothing is lost,
/// nothing is sent twice except under the same idempotency key, and a live node's work is never
/// taken from it.
@Suite("several nodes and kill -9", .serialized)
struct MultiNodeTests {
    static let adminKey = "multi-node-test-key-0123456789"

    static func track(_ server: ServerProcessTests.Server, users: Range<Int>) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    for chunk in stride(from: users.lowerBound + worker * 75, to: users.upperBound, by: 300) {
                        let attributes = (chunk..<min(chunk + 75, users.upperBound)).map { #"{"external_id": "u\#($0)", "first_name": "N\#($0)"}"# }
                        let (status, text) = try await server.request(
                            "POST", "/users/track", key: adminKey, body: #"{"attributes": [\#(attributes.joined(separator: ","))]}"#)
                        #expect(status == 201, "\(text)")
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    static func createCampaign(_ server: ServerProcessTests.Server, _ body: String) async throws -> String {
        let (created, text) = try await server.request("POST", "/beckon/v1/campaigns", key: adminKey, body: body)
        #expect(created == 201, "\(text)")
        let id = try #require(try JSONValue.parse(Array(text.utf8))["campaign_id"]?.stringValue)
        let (launched, launchText) = try await server.request("POST", "/beckon/v1/campaigns/\(id)/launch", key: adminKey, body: "{}")
        #expect(launched == 200, "\(launchText)")
        return id
    }

    @Test("two nodes on one PostgreSQL, one killed mid-send: every user once per key, the dead node's claims taken over",
          arguments: TestDatabases.postgresOnly())
    func twoNodesOneKilled(kind: TestDatabaseKind) async throws {
        let database = try await kind.make()
        defer { Task { try? await database.cleanup() } }
        let url = try #require(database.url)
        let receiver = TimedReceiver()
        let users = 20_000
        let directoryA = try ServerProcessTests.temporaryDirectory()
        let directoryB = try ServerProcessTests.temporaryDirectory()
        defer {
            try? FileManager.default.removeItem(at: directoryA)
            try? FileManager.default.removeItem(at: directoryB)
        }
        try await LocalHTTPServer.run(receiver.router()) { port in
            func environment(_ node: String) -> [String: String] {
                ["BECKON_ALLOW_HOSTS": "127.0.0.1:\(port)", "DATABASE_URL": url, "BECKON_NODE_ID": node]
            }
            let nodeA = try ServerProcessTests.Server(
                dataDirectory: directoryA, adminKey: Self.adminKey, extraEnvironment: environment("node-a"), arguments: ["--lease-seconds", "3"])
            defer { nodeA.terminate() }
            try await nodeA.waitUntilReady()
            // The second node starts on a database that is no longer empty: it provisions nothing.
            let nodeB = try ServerProcessTests.Server(
                dataDirectory: directoryB, adminKey: Self.adminKey, extraEnvironment: environment("node-b"), arguments: ["--lease-seconds", "3"])
            defer { nodeB.terminate() }
            try await nodeB.waitUntilReady()
            try await Self.track(nodeA, users: 0..<users)
            let id = try await Self.createCampaign(nodeA, #"""
                {"name": "Two nodes", "delivery": {"type": "api_triggered"},
                 "messages": {"webhook": {"url": "http://127.0.0.1:\#(port)/hook", "body": "{\"to\": \"{{${user_id}}}\", \"hi\": \"{{${first_name}}}\"}"}}}
                """#)
            let (triggered, text) = try await nodeA.request("POST", "/campaigns/trigger/send", key: Self.adminKey, body: #"{"campaign_id": "\#(id)", "broadcast": true}"#)
            #expect(triggered == 201, "\(text)")
            for _ in 0..<3_000 where receiver.keys.count < users / 5 { try await Task.sleep(for: .milliseconds(10)) }
            nodeA.kill9()
            let killedAt = ContinuousClock.now
            let beforeKill = receiver.keys.count
            #expect(beforeKill > 0 && beforeKill < users, "killed mid-send (\(beforeKill) of \(users) received)")

            for _ in 0..<6_000 where receiver.distinctUsers < users { try await Task.sleep(for: .milliseconds(20)) }
            let keys = receiver.keys
            #expect(receiver.distinctUsers == users, "every user received the message (\(receiver.distinctUsers))")
            #expect(keys.count == users, "one key per user: never two message ids for one user")
            let repeated = keys.filter { $0.value.count > 1 }
            #expect(repeated.values.allSatisfy { $0.first < killedAt }, "only messages the dead node had in flight are sent again")
            #expect(repeated.count <= 1_000, "at most the dead node's one claim batch repeats (\(repeated.count))")
            var delivered = 0
            for _ in 0..<300 {
                let (_, details) = try await nodeB.request("GET", "/beckon/v1/campaigns/\(id)", key: Self.adminKey, body: nil)
                delivered = Int(try JSONValue.parse(Array(details.utf8))["messages_by_state"]?["delivered"]?.numberValue ?? 0)
                if delivered == users { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(delivered == users, "the dead node's claims were re-queued and settled by the live node")
        }
    }

    @Test("kill -9 right after /users/track answered: every stored trigger event's message is sent after restart")
    func triggerSurvivesKill() async throws {
        let directory = try ServerProcessTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let receiver = TimedReceiver()
        let users = 300
        try await LocalHTTPServer.run(receiver.router()) { port in
            let environment = ["BECKON_ALLOW_HOSTS": "127.0.0.1:\(port)", "BECKON_NODE_ID": "trigger-node"]
            var server = try ServerProcessTests.Server(dataDirectory: directory, adminKey: Self.adminKey, extraEnvironment: environment)
            try await server.waitUntilReady()
            try await Self.track(server, users: 0..<users)
            _ = try await Self.createCampaign(server, #"""
                {"name": "Cart", "delivery": {"type": "action_based", "trigger": {"event": "added_to_cart"}},
                 "messages": {"webhook": {"url": "http://127.0.0.1:\#(port)/hook", "body": "{\"to\": \"{{${user_id}}}\", \"item\": \"{{event_properties.${item}}}\"}"}}}
                """#)
            // Every request is answered 201 only after its events and their trigger facts committed.
            let running = server
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<6 {
                    group.addTask {
                        for user in stride(from: worker, to: users, by: 6) {
                            let (status, _) = try await running.request(
                                "POST", "/users/track", key: Self.adminKey,
                                body: #"{"events": [{"external_id": "u\#(user)", "name": "added_to_cart", "time": "2026-01-01T00:00:00Z", "properties": {"item": "i\#(user)"}}]}"#)
                            #expect(status == 201)
                        }
                    }
                }
                try await group.waitForAll()
            }
            server.kill9()
            let beforeKill = receiver.distinctUsers
            server = try ServerProcessTests.Server(dataDirectory: directory, adminKey: Self.adminKey, extraEnvironment: environment)
            defer { server.terminate() }
            try await server.waitUntilReady()
            for _ in 0..<1_500 where receiver.distinctUsers < users { try await Task.sleep(for: .milliseconds(20)) }
            let keys = receiver.keys
            #expect(receiver.distinctUsers == users, "every trigger was kept (\(beforeKill) sent before the kill, \(receiver.distinctUsers) in all)")
            #expect(keys.count == users, "one message id per trigger: nothing sent twice under another key")
        }
    }
}

/// SIGTERM in the middle of a send: the server stops claiming, finishes what it claimed, and exits
/// in time; the rest goes out after the restart, each user once per key.
@Suite("graceful shutdown", .serialized)
struct GracefulShutdownTests {
    @Test("SIGTERM mid-send drains within the bound and loses nothing")
    func drainsOnTerminate() async throws {
        let directory = try ServerProcessTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let receiver = TimedReceiver()
        let users = 3_000
        try await LocalHTTPServer.run(receiver.router()) { port in
            let environment = ["BECKON_ALLOW_HOSTS": "127.0.0.1:\(port)", "BECKON_NODE_ID": "drain-node"]
            var server = try ServerProcessTests.Server(dataDirectory: directory, adminKey: MultiNodeTests.adminKey, extraEnvironment: environment)
            try await server.waitUntilReady()
            try await MultiNodeTests.track(server, users: 0..<users)
            let id = try await MultiNodeTests.createCampaign(server, #"""
                {"name": "Drain", "delivery": {"type": "api_triggered"},
                 "messages": {"webhook": {"url": "http://127.0.0.1:\#(port)/hook", "body": "{\"to\": \"{{${user_id}}}\"}"}}}
                """#)
            let (triggered, _) = try await server.request(
                "POST", "/campaigns/trigger/send", key: MultiNodeTests.adminKey, body: #"{"campaign_id": "\#(id)", "broadcast": true}"#)
            #expect(triggered == 201)
            for _ in 0..<1_000 where receiver.keys.count < users / 10 { try await Task.sleep(for: .milliseconds(10)) }
            let stopping = ContinuousClock.now
            server.terminate()
            let took = ContinuousClock.now - stopping
            #expect(took < .seconds(35), "graceful shutdown took \(took)")
            #expect(server.process.terminationStatus == 0, "exit status \(server.process.terminationStatus)")
            let sentBeforeStop = receiver.distinctUsers

            server = try ServerProcessTests.Server(dataDirectory: directory, adminKey: MultiNodeTests.adminKey, extraEnvironment: environment)
            defer { server.terminate() }
            try await server.waitUntilReady()
            for _ in 0..<1_500 where receiver.distinctUsers < users { try await Task.sleep(for: .milliseconds(20)) }
            #expect(receiver.distinctUsers == users, "\(sentBeforeStop) before the stop, \(receiver.distinctUsers) in all")
            #expect(receiver.keys.count == users, "one message id per user")
            #expect(receiver.keys.values.allSatisfy { $0.count == 1 }, "a drained stop re-sends nothing")
        }
    }
}
