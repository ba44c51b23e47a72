import BeckonCore
import BeckonTestSupport
import Crypto
import Foundation
import Testing

/// `kill -9` in the middle of a push campaign: after a restart every token gets its push, and the
/// only repeats are retries under the same `apns-id` (APNs collapses those on the device).
@Suite("push survives kill -9", .serialized)
struct PushCrashTests {
    @Test func pushCompletesAfterKill() async throws {
        let directory = try ServerProcessTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = "push-crash-test-key-0123456789"
        let signingKey = P256.Signing.PrivateKey()
        let authority = try TestCertificateAuthority()
        let caFile = try authority.writeCertificateFile()
        defer { try? FileManager.default.removeItem(atPath: caFile) }
        let apns = APNsStandIn(publicKey: signingKey.publicKey, topic: "com.example.shop", unregisteredAt: 0, latency: .milliseconds(2))
        let users = 3_000
        let tokens = (0..<users).map { String(format: "%064x", $0 + 1) }
        try await LocalTLSServer.run(apns.router(), authority: authority) { port in
            let environment = ["BECKON_ALLOW_HOSTS": "127.0.0.1:\(port)", "BECKON_NODE_ID": "push-crash-node", "BECKON_EXTRA_CA_FILE": caFile]
            var server = try ServerProcessTests.Server(dataDirectory: directory, adminKey: key, extraEnvironment: environment)
            try await server.waitUntilReady()
            let credentials = JSONValue.object([
                "team_id": .string("TEAM123456"), "key_id": .string("KEY1234567"), "private_key": .string(signingKey.pemRepresentation),
                "bundle_id": .string("com.example.shop"), "environment": .string("sandbox"), "endpoint": .string("https://127.0.0.1:\(port)"),
            ])
            let (stored, storedText) = try await server.request("PUT", "/beckon/v1/push/apns", key: key, body: credentials.serialized())
            #expect(stored == 200, "\(storedText)")
            for chunk in stride(from: 0, to: users, by: 75) {
                let attributes = (chunk..<min(chunk + 75, users)).map {
                    #"{"external_id": "u\#($0)", "first_name": "N\#($0)", "push_tokens": [{"app_id": "shop-ios", "token": "\#(tokens[$0])", "platform": "ios"}]}"#
                }
                let (status, text) = try await server.request("POST", "/users/track", key: key, body: #"{"attributes": [\#(attributes.joined(separator: ","))]}"#)
                #expect(status == 201, "\(text)")
            }
            let campaign = #"{"name": "Crash push", "delivery": {"type": "api_triggered"}, "messages": {"push": {"title": "Hi {{${first_name}}}", "body": "Back in stock", "platforms": ["ios"]}}}"#
            let (created, text) = try await server.request("POST", "/beckon/v1/campaigns", key: key, body: campaign)
            #expect(created == 201, "\(text)")
            let id = try #require(try JSONValue.parse(Array(text.utf8))["campaign_id"]?.stringValue)
            _ = try await server.request("POST", "/beckon/v1/campaigns/\(id)/launch", key: key, body: "{}")
            let (triggered, _) = try await server.request("POST", "/campaigns/trigger/send", key: key, body: #"{"campaign_id": "\#(id)", "broadcast": true}"#)
            #expect(triggered == 201)
            // Past 1,000 pushes (one provider token for all of them), well before the last.
            for _ in 0..<6_000 where apns.accepted.count < 1_200 { try await Task.sleep(for: .milliseconds(10)) }
            server.kill9()
            let beforeKill = apns.all
            #expect(beforeKill.count >= 1_000 && beforeKill.count < users, "killed mid-send (\(beforeKill.count) of \(users) pushed)")
            #expect(Set(beforeKill.map(\.jwt)).count == 1, "one provider token for the first \(beforeKill.count) pushes")
            #expect(apns.inFlight.mostPerConnection > 1, "streams multiplexed on one HTTP/2 connection (\(apns.inFlight.mostPerConnection) at most)")

            server = try ServerProcessTests.Server(dataDirectory: directory, adminKey: key, extraEnvironment: environment)
            defer { server.terminate() }
            try await server.waitUntilReady()
            for _ in 0..<3_000 where Set(apns.accepted.map(\.token)).count < users { try await Task.sleep(for: .milliseconds(20)) }
            let pushes = apns.accepted
            #expect(Set(pushes.map(\.token)) == Set(tokens), "every token received its push")
            let idsByToken = Dictionary(grouping: pushes, by: \.token).mapValues { Set($0.map(\.apnsID)) }
            #expect(idsByToken.values.allSatisfy { $0.count == 1 }, "a repeat reuses the token's apns-id")
            let repeats = pushes.count - users
            #expect(repeats <= 1_000, "only pushes in flight at the kill repeat (\(repeats))")
            var delivered = 0
            for _ in 0..<100 {
                let (_, details) = try await server.request("GET", "/beckon/v1/campaigns/\(id)", key: key, body: nil)
                delivered = Int(try JSONValue.parse(Array(details.utf8))["messages_by_state"]?["delivered"]?.numberValue ?? 0)
                if delivered == users { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(delivered == users, "every message settled as delivered")
        }
    }
}
