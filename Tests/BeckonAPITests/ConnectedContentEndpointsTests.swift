import BeckonAPI
import BeckonConnectedContent
import BeckonCore
import BeckonOutboundHTTP
import BeckonStorage
import BeckonTestSupport
import Foundation
import Hummingbird
import Testing

/// `/beckon/v1/connected_content/*`, `/beckon/v1/activity_log`, and Connected Content in
/// `/liquid/preview` calling Beckon's own API served on a real port.
@Suite("Connected Content endpoints")
struct ConnectedContentEndpointsTests {
    @Test(arguments: TestDatabases.all())
    func credentialsAreStoredSealedAndNeverShown(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            let created = try await api.post(
                "/beckon/v1/connected_content/credentials", #"{"name": "shop_api", "username": "beckon", "password": "pa55-word"}"#)
            #expect(created.status == .created)
            #expect(created.json["credential"]?["type"] == .string("basic"))
            #expect(!created.text.contains("pa55-word"))
            let replaced = try await api.post("/beckon/v1/connected_content/credentials", #"{"name": "shop_api", "token": "tkn-9"}"#)
            #expect(replaced.status == .ok)
            #expect(replaced.json["credential"]?["type"] == .string("bearer"))

            let bad = try await api.post("/beckon/v1/connected_content/credentials", #"{"name": "bad name", "type": "basic", "username": "a:b"}"#)
            #expect(bad.status == .badRequest)
            let errors = bad.json["errors"]?.arrayValue?.compactMap(\.stringValue) ?? []
            #expect(errors.contains { $0.hasPrefix("name:") })
            #expect(errors.contains { $0.hasPrefix("password:") })
            #expect(errors.contains { $0.hasPrefix("username: must not contain ':'") })

            let list = try await api.get("/beckon/v1/connected_content/credentials")
            #expect(list.json["credentials"]?.arrayValue?.count == 1)
            #expect(!list.text.contains("tkn-9"))
            let stored = try await api.connectedContent.credentials.credential(workspaceID: api.workspace.id, name: "shop_api")
            #expect(stored == .bearer(token: "tkn-9"))

            let (_, narrow) = try await api.workspaces.createAPIKey(workspaceID: api.workspace.id, name: "narrow", permissions: ["users.track"])
            #expect(try await api.get("/beckon/v1/connected_content/credentials", key: narrow).status == .forbidden)
            #expect(try await api.delete("/beckon/v1/connected_content/credentials/shop_api").status == .ok)
            #expect(try await api.delete("/beckon/v1/connected_content/credentials/shop_api").status == .notFound)
        }
    }

    @Test func settingsAreValidatedFieldByField() async throws {
        try await APIHarness.run(.sqlite) { api in
            let defaults = try await api.get("/beckon/v1/connected_content/settings")
            #expect(defaults.json["settings"]?["timeout_ms"] == .int(2_000))
            #expect(defaults.json["settings"]?["rate_limit_per_second"] == .int(100))
            let updated = try await api.put(
                "/beckon/v1/connected_content/settings", #"{"timeout_ms": 1500, "allowed_hosts": ["Rank.Internal:8080", "10.0.0.7"]}"#)
            #expect(updated.status == .ok)
            #expect(updated.json["settings"]?["allowed_hosts"] == .array([.string("rank.internal:8080"), .string("10.0.0.7")]))
            #expect(updated.json["settings"]?["timeout_ms"] == .int(1_500))
            let bad = try await api.put(
                "/beckon/v1/connected_content/settings",
                #"{"timeout_ms": 50, "rate_limit_per_second": "fast", "allowed_hosts": ["http://x.com/a"], "colour": 1}"#)
            #expect(bad.status == .badRequest)
            let errors = bad.json["errors"]?.arrayValue?.compactMap(\.stringValue) ?? []
            #expect(errors.count == 4)
            #expect(errors.contains("timeout_ms: must be a whole number from 100 to 30000"))
            #expect(errors.contains("allowed_hosts[0]: allowed host 'http://x.com/a' must be a host or host:port, not a URL"))
            let unchanged = try await api.get("/beckon/v1/connected_content/settings")
            #expect(unchanged.json["settings"]?["timeout_ms"] == .int(1_500), "a rejected update writes nothing")
        }
    }

    /// MISSION.md case 1: the message reads a segment's size from Beckon's own
    /// `/segments/data_series` at render time and aborts below a threshold, with the reason in
    /// the activity log when the call fails.
    @Test func socialProofFromBeckonsOwnSegmentAPI() async throws {
        var configuration = ConnectedContentConfiguration()
        configuration.allowedHosts = try HostAllowlist(parsing: ["127.0.0.1"])
        try await APIHarness.run(.sqlite, connectedContent: configuration) { api in
            var events: [String] = []
            for index in 0..<1_234 {
                events.append(#"{"external_id": "v\#(index)", "name": "product_viewed", "time": "2025-06-30T10:00:00Z", "properties": {"brand": "Jucy Judy"}}"#)
            }
            for chunk in stride(from: 0, to: events.count, by: 75) {
                let reply = try await api.post("/users/track", #"{"events": [\#(events[chunk..<min(chunk + 75, events.count)].joined(separator: ","))]}"#)
                #expect(reply.status == .created)
            }
            let filter = #"{"event": "product_viewed", "where": {"brand": "Jucy Judy"}, "within_last": {"days": 1}}"#
            let created = try await api.post("/beckon/v1/segments", #"{"name": "Viewed Jucy Judy", "filter": \#(filter)}"#)
            let segmentID = try #require(created.json["segment_id"]?.stringValue, "\(created.text)")
            let (_, seriesKey) = try await api.workspaces.createAPIKey(
                workspaceID: api.workspace.id, name: "messages", permissions: ["segments.data_series"])

            try await LocalHTTPServer.run(api.api.makeRouter()) { port in
                func preview(threshold: Int, key: String) async throws -> APIHarness.Reply {
                    let template = """
                        {% connected_content http://127.0.0.1:\(port)/segments/data_series?segment_id=\(segmentID)&length=1 :headers {"Authorization": "Bearer \(key)"} :save series %}
                        {%- assign viewers = series.data[0].size -%}
                        {%- if viewers == nil or viewers < \(threshold) -%}{% abort_message('too few viewers for social proof') %}{%- endif -%}
                        {{ viewers | number_with_delimiter }} people viewed this brand's best sellers yesterday
                        """
                    let body = JSONValue.object(["template": .string(template), "external_id": .string("v1")]).serialized()
                    return try await api.post("/liquid/preview", body)
                }
                let sent = try await preview(threshold: 1_000, key: seriesKey)
                #expect(sent.json["aborted"] == .bool(false), "\(sent.text)")
                #expect(sent.json["output"]?.stringValue?.hasSuffix("1,234 people viewed this brand's best sellers yesterday") == true)
                let below = try await preview(threshold: 5_000, key: seriesKey)
                #expect(below.json["aborted"] == .bool(true))
                #expect(below.json["abort_reason"] == .string("too few viewers for social proof"))
                let unauthorized = try await preview(threshold: 1_000, key: "wrong-key-0123456789")
                #expect(unauthorized.json["abort_reason"] == .string("too few viewers for social proof"), "\(unauthorized.text)")
            }
            let log = try await api.get("/beckon/v1/activity_log?type=connected_content_failure&external_id=v1")
            let entries = log.json["entries"]?.arrayValue ?? []
            #expect(entries.count == 1)
            #expect(entries.first?["status"] == .int(401))
            #expect(entries.first?["channel"] == .string("preview"))
            #expect(entries.first?["url"]?.stringValue?.contains("/segments/data_series?segment_id=\(segmentID)") == true)
            #expect(!log.text.contains("wrong-key"))
        }
    }

    @Test func activityLogPagesNewestFirst() async throws {
        try await APIHarness.run(.sqlite) { api in
            let base = BrazeTime.epochMilliseconds(APIHarness.now)
            try await api.connectedContent.activityLog.record((0..<5).map { index in
                ActivityLogEntry(
                    workspaceID: api.workspace.id, time: base + Int64(index) * 1_000, type: index == 4 ? "abort" : "connected_content_failure",
                    campaignID: index % 2 == 0 ? "cmp_even" : "cmp_odd", externalID: "u\(index)", reason: "reason \(index)")
            })
            let first = try await api.get("/beckon/v1/activity_log?limit=2")
            #expect(first.json["entries"]?.arrayValue?.map { $0["reason"] } == [.string("reason 4"), .string("reason 3")])
            let cursor = try #require(first.json["next_cursor"]?.stringValue)
            let second = try await api.get("/beckon/v1/activity_log?limit=2&cursor=\(cursor)")
            #expect(second.json["entries"]?.arrayValue?.map { $0["reason"] } == [.string("reason 2"), .string("reason 1")])
            let filtered = try await api.get("/beckon/v1/activity_log?campaign_id=cmp_even&type=connected_content_failure")
            #expect(filtered.json["entries"]?.arrayValue?.count == 2)
            let since = try await api.get("/beckon/v1/activity_log?since=2025-06-30T15:00:03Z")
            #expect(since.json["entries"]?.arrayValue?.count == 2)
            #expect(try await api.get("/beckon/v1/activity_log?since=yesterday").status == .badRequest)
            #expect(try await api.get("/beckon/v1/activity_log?limit=0").status == .badRequest)
            #expect(try await api.connectedContent.activityLog.prune(before: base + 2_000) == 2)
        }
    }
}
