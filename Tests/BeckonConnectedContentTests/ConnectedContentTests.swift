import BeckonConnectedContent
import BeckonCore
import BeckonOutboundHTTP
import BeckonStorage
import BeckonTestSupport
import Foundation
import Liquid
import Logging
import Testing

/// Connected Content against a real local HTTP server: responses, limits, network policy,
/// caching, single-flight, pacing, credentials and the activity log.
@Suite("Connected Content")
struct ConnectedContentTests {
    static let start = BrazeTime.parse("2025-06-30T15:00:00Z")!

    /// A service calling the local test API, and a way to render templates through it.
    struct Fixture: Sendable {
        let service: ConnectedContentService
        let base: String
        let received: ReceivedRequests
        let clock: FixedClock
        let activityLog: ActivityLogStore?
        let workspaceID: Int64

        /// Renders `source` (with `BASE` replaced by the local API's URL) for the Braze-shaped `data`.
        func render(_ source: String, data: String = "{}", externalID: String? = nil) async throws -> String {
            let template = try Template.parse(source.replacingOccurrences(of: "BASE", with: base))
            var environment = RenderEnvironment()
            environment.fetcher = service.fetcher(
                for: ConnectedContentContext(workspaceID: workspaceID, campaignID: "cmp_1", externalID: externalID, channel: "webhook"))
            environment.now = clock.now()
            return try await template.render(BrazeContext.make(from: try LiquidValue(json: Data(data.utf8))), environment: environment)
        }

        /// The abort reason when rendering `source` aborts; `nil` when it renders.
        func abortReason(_ source: String) async throws -> String? {
            do {
                _ = try await render(source)
                return nil
            } catch let aborted as MessageAborted {
                return aborted.reason ?? ""
            }
        }

        func entries() async throws -> [ActivityLogEntry] {
            try await activityLog?.entries(workspaceID: workspaceID, query: ActivityLogQuery()) ?? []
        }
    }

    /// Runs `body` with the local API allowlisted as `127.0.0.1` and no rate limit unless `settings` says otherwise.
    static func withFixture(
        settings: ConnectedContentSettings? = nil, database: (any SQLDatabase)? = nil,
        configure: (inout ConnectedContentConfiguration) -> Void = { _ in }, _ body: (Fixture) async throws -> Void
    ) async throws {
        let received = ReceivedRequests()
        try await LocalHTTPServer.run(TestReceiver.router(received)) { port in
            let clock = FixedClock(start)
            var configuration = ConnectedContentConfiguration()
            configuration.allowedHosts = try HostAllowlist(parsing: ["127.0.0.1"])
            configuration.retryBaseDelay = .milliseconds(5)
            var defaults = ConnectedContentSettings()
            defaults.rateLimitPerSecond = nil
            defaults.timeoutMilliseconds = 1_500
            configuration.defaultSettings = settings ?? defaults
            configure(&configuration)
            var workspaceID: Int64 = 1
            var activityLog: ActivityLogStore?
            let service: ConnectedContentService
            if let database {
                try await Migrator.migrate(database)
                let workspace = try await WorkspaceStore(database: database, clock: clock).createWorkspace(name: "shop")
                workspaceID = workspace.id
                let components = ConnectedContentComponents(
                    database: database, secrets: try SecretBox(base64Key: SecretBox.generateKey()), clock: clock,
                    configuration: configuration, logger: Self.quietLogger)
                try await components.settings.save(workspaceID: workspaceID, settings: configuration.defaultSettings)
                service = components.service
                activityLog = components.activityLog
                try await runThenShutDown(service) {
                    try await components.credentials.save(
                        workspaceID: workspaceID, name: "shop_basic", credential: .basic(username: "beckon", password: "s3cret!"))
                    try await components.credentials.save(workspaceID: workspaceID, name: "shop_token", credential: .bearer(token: "tok-123"))
                    try await body(Fixture(
                        service: service, base: "http://127.0.0.1:\(port)", received: received, clock: clock, activityLog: activityLog,
                        workspaceID: workspaceID))
                }
            } else {
                service = ConnectedContentService(configuration: configuration, clock: clock, logger: Self.quietLogger)
                try await runThenShutDown(service) {
                    try await body(Fixture(
                        service: service, base: "http://127.0.0.1:\(port)", received: received, clock: clock, activityLog: nil,
                        workspaceID: workspaceID))
                }
            }
        }
    }

    static let quietLogger: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        return logger
    }()

    static func runThenShutDown(_ service: ConnectedContentService, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch {
            try? await service.shutdown()
            throw error
        }
        try await service.shutdown()
    }

    @Test func jsonObjectIsSavedWithStatusCode() async throws {
        try await Self.withFixture { fixture in
            let output = try await fixture.render(
                "{% connected_content BASE/json :save shop %}{{shop.name}} {{shop.items[1]}} {{shop.__http_status_code__}}")
            #expect(output == "Jucy Judy 2 200")
            let unsaved = try await fixture.render("[{% connected_content BASE/json :no_cache %}]{{connected.name}}")
            #expect(unsaved == "[]Jucy Judy")
        }
    }

    @Test func jsonArrayIsSavedWithoutStatusCode() async throws {
        try await Self.withFixture { fixture in
            let output = try await fixture.render(
                "{% connected_content BASE/array :save list %}{{list.size}} {{list[2]}} [{{list.__http_status_code__}}]")
            #expect(output == "3 3 []")
        }
    }

    @Test func textIsPrintedInPlaceWhenNotSaved() async throws {
        try await Self.withFixture { fixture in
            let printed = try await fixture.render("A{% connected_content BASE/text %}B")
            #expect(printed == "Ahello worldB")
            let saved = try await fixture.render("A{% connected_content BASE/text :save t %}B{{t}}")
            #expect(saved == "AB")
        }
    }

    @Test(arguments: TestDatabases.all())
    func failuresLeaveTheVariableEmptyAndAreLogged(kind: TestDatabaseKind) async throws {
        try await kind.withDatabase { database in
            try await Self.withFixture(database: database) { fixture in
                let template = "{% connected_content BASE/PATH?api_key=hunter2&page=1 :save r %}[{% if r %}set{% else %}empty{% endif %}]"
                for path in ["slow", "big", "error", "missing", "redirect"] {
                    let output = try await fixture.render(template.replacingOccurrences(of: "PATH", with: path), externalID: "u1")
                    #expect(output == "[empty]", "\(path)")
                }
                let missing = try await fixture.render("A{% connected_content BASE/missing %}B")
                #expect(missing == "AB")
                #expect(fixture.received.count("/json") == 0, "a 302 must not be followed")
                let entries = try await fixture.entries()
                let byPath = Dictionary(entries.map { (($0.url ?? "").components(separatedBy: "/").last?.components(separatedBy: "?").first ?? "", $0) }) { first, _ in first }
                #expect(byPath["slow"]?.reason == "no complete response within 1500 ms")
                #expect(byPath["big"]?.reason.contains("1048576-byte limit") == true)
                #expect(byPath["error"]?.status == 500)
                #expect(byPath["missing"]?.status == 404)
                #expect(byPath["redirect"]?.reason == "HTTP 302 (redirects are not followed)")
                for entry in entries {
                    #expect(entry.type == "connected_content_failure")
                    #expect(entry.campaignID == "cmp_1")
                    #expect(entry.channel == "webhook")
                    #expect(entry.url?.contains("hunter2") == false)
                    #expect(entry.durationMilliseconds != nil)
                }
                #expect(entries.first { $0.externalID == "u1" }?.url?.contains("api_key=%5Bredacted%5D&page=1") == true)
            }
        }
    }

    @Test func retryAttemptsFiveTimesThenAborts() async throws {
        try await Self.withFixture { fixture in
            let reason = try await fixture.abortReason("{% connected_content BASE/error :retry :save r %}{{r}}")
            #expect(reason?.contains("failed after 5 attempts: HTTP 500") == true)
            #expect(fixture.received.count("/error") == 5)
            let recovered = try await fixture.render("{% connected_content BASE/flaky :retry :save r %}{{r.ok}}")
            #expect(recovered == "true")
            #expect(fixture.received.count("/flaky") == 3)
        }
    }

    @Test func networkPolicyRefusesInternalAddressesWithoutAllowlist() async throws {
        try await Self.withFixture { fixture in
            let probe = "{% connected_content URL :save r %}[{% if r %}reached{% else %}refused{% endif %}]"
            for url in ["http://localhost/json", "http://10.1.2.3/x", "http://169.254.169.254/latest/meta-data/", "http://[::1]/x",
                        "http://100.64.0.1/x", "http://[::ffff:127.0.0.1]/x", "http://example.com:8080/x", "ftp://127.0.0.1/x"] {
                let output = try await fixture.render(probe.replacingOccurrences(of: "URL", with: url))
                #expect(output == "[refused]", "\(url)")
            }
            #expect(fixture.received.total == 0)
            #expect(fixture.service.statistics.requests == 0, "refused before any request is sent")
        }
        try await Self.withFixture(configure: { $0.allowedHosts = try! HostAllowlist(parsing: ["169.254.169.254", "127.0.0.1:1"]) }) { fixture in
            let metadata = try await fixture.render("{% connected_content http://169.254.169.254/x :save r %}[{{r}}]")
            #expect(metadata == "[]")
            let wrongPort = try await fixture.render("{% connected_content BASE/json :save r %}[{{r.name}}]")
            #expect(wrongPort == "[]", "the allowlisted port is 1, not the test server's")
        }
    }

    @Test(arguments: TestDatabases.all())
    func workspaceAllowlistAndCredentials(kind: TestDatabaseKind) async throws {
        try await kind.withDatabase { database in
            var settings = ConnectedContentSettings()
            settings.rateLimitPerSecond = nil
            settings.allowedHosts = ["localhost"]
            try await Self.withFixture(settings: settings, database: database, configure: { $0.allowedHosts = HostAllowlist() }) { fixture in
                let local = fixture.base.replacingOccurrences(of: "127.0.0.1", with: "localhost")
                let basic = try await fixture.render(
                    "{% connected_content \(local)/headers :basic_auth shop_basic :save h %}{{h.authorization}}")
                #expect(basic == "Basic " + Data("beckon:s3cret!".utf8).base64EncodedString())
                let bearer = try await fixture.render(
                    "{% connected_content \(local)/headers :basic_auth shop_token :no_cache :save h %}{{h.authorization}}")
                #expect(bearer == "Bearer tok-123")
                let reason = try await fixture.abortReason("{% connected_content \(local)/headers :basic_auth deleted_one %}")
                #expect(reason == "connected_content :basic_auth credential 'deleted_one' does not exist")
                let direct = try await fixture.render("{% connected_content \(fixture.base)/json :save r %}[{{r.name}}]")
                #expect(direct == "[]", "127.0.0.1 is not on this workspace's allowlist")
                let entries = try await fixture.entries()
                #expect(entries.contains { $0.reason.hasPrefix("port \(fixture.base.split(separator: ":").last ?? "") of 127.0.0.1 is not allowed") })
                #expect(!entries.contains { $0.reason.contains("s3cret") || $0.reason.contains("tok-123") })
            }
        }
    }

    @Test func requestShapeFollowsBraze() async throws {
        try await Self.withFixture { fixture in
            let get = try await fixture.render(
                #"{% connected_content BASE/headers?q={{ name }} :headers {"X-Shop": "{{ shop }}"} :save h %}{{h.accept}}|{{h.content_type}}|{{h.user_agent}}|{{h.x_shop}}|{{h.q}}"#
                    .replacingOccurrences(of: "{{ name }}", with: "{{ '한글 값' }}").replacingOccurrences(of: "{{ shop }}", with: "{{ 'jj' }}"))
            #expect(get == "*/*|application/json|Braze Sender Beckon|jj|한글 값")
            let form = try await fixture.render("{% connected_content BASE/echo :method post :body a=1&b={{ 'x' }} :save r %}{{r.body}}|{{r.content_type}}")
            #expect(form == "a=1&b=x|application/x-www-form-urlencoded")
            let json = try await fixture.render(
                #"{% connected_content BASE/echo :method post :body a=1&b=2 :content_type application/json :save r %}{{r.body}}"#)
            #expect((try? JSONValue.parse(Array(json.utf8))) == .object(["a": .string("1"), "b": .string("2")]))
            let raw = try await fixture.render(
                #"{% capture payload %}{"user": "{{ 'u 1' }}"}{% endcapture %}{% connected_content BASE/echo :method post :body {{payload}} :content_type application/json :save r %}{{r.body}}"#)
            #expect(raw == #"{"user": "u 1"}"#)
            #expect(fixture.received.count("/echo") == 3, "POSTs are not cached without :cache_max_age")
        }
    }

    @Test func cacheHitMissAndExpiry() async throws {
        try await Self.withFixture { fixture in
            let template = "{% connected_content BASE/json :save r %}{{r.name}}"
            for _ in 0..<3 {
                let output = try await fixture.render(template)
                #expect(output == "Jucy Judy")
            }
            #expect(fixture.received.count("/json") == 1)
            fixture.clock.advance(by: 299)
            _ = try await fixture.render(template)
            #expect(fixture.received.count("/json") == 1, "still fresh at 299 s")
            fixture.clock.advance(by: 2)
            _ = try await fixture.render(template)
            #expect(fixture.received.count("/json") == 2, "expired after Braze's default 300 s")

            let long = "{% connected_content BASE/array :cache_max_age 3600 :save r %}{{r.size}}"
            _ = try await fixture.render(long)
            fixture.clock.advance(by: 3_000)
            _ = try await fixture.render(long)
            #expect(fixture.received.count("/array") == 1)
            fixture.clock.advance(by: 700)
            _ = try await fixture.render(long)
            #expect(fixture.received.count("/array") == 2)

            let capped = "{% connected_content BASE/text :cache_max_age 100000 :save r %}"
            _ = try await fixture.render(capped)
            fixture.clock.advance(by: 14_401)
            _ = try await fixture.render(capped)
            #expect(fixture.received.count("/text") == 2, ":cache_max_age is capped at 4 hours")

            for _ in 0..<2 { _ = try await fixture.render("{% connected_content BASE/json :no_cache :save r %}") }
            #expect(fixture.received.count("/json") == 4)
            for _ in 0..<2 { _ = try await fixture.render("{% connected_content BASE/echo :method post :body a=1 :cache_max_age 600 :save r %}") }
            #expect(fixture.received.count("/echo") == 1, "a POST with :cache_max_age is cached")
            #expect(fixture.service.statistics.cacheHits == 5)
        }
    }

    @Test func thousandConcurrentRendersMakeOneRequest() async throws {
        try await Self.withFixture { fixture in
            let template = "{% connected_content BASE/best?category=shoes :save best %}{{best.projects[0].title}}"
            let outputs = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<1_000 { group.addTask { try await fixture.render(template) } }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(outputs.count == 1_000)
            #expect(Set(outputs) == ["Best of shoes"])
            #expect(fixture.received.count("/best") == 1)
            #expect(fixture.service.statistics.coalesced + fixture.service.statistics.cacheHits == 999)
        }
    }

    @Test func rateLimitHoldsAndFailsPastTheWait() async throws {
        var settings = ConnectedContentSettings()
        settings.rateLimitPerSecond = 5
        settings.maxWaitMilliseconds = 300
        try await Self.withFixture(settings: settings) { fixture in
            let results = try await withThrowingTaskGroup(of: String?.self) { group in
                for index in 0..<20 {
                    group.addTask { try await fixture.abortReason("{% connected_content BASE/headers?n=\(index) :no_cache :save h %}") }
                }
                return try await group.reduce(into: [String?]()) { $0.append($1) }
            }
            let sent = fixture.received.count("/headers")
            #expect((5...7).contains(sent), "5 at once, then one per 200 ms within the 300 ms wait; got \(sent)")
            let aborted = results.compactMap { $0 }
            #expect(aborted.count == 20 - sent)
            #expect(aborted.allSatisfy { $0 == "connected_content rate limit for 127.0.0.1 (5/s) gave no slot within 300 ms" })
        }
    }

    /// MISSION.md case 2: the last viewed category (default when missing) picks the shop's best
    /// seller, cached an hour, and the message body is a KakaoTalk JSON for the vendor's webhook.
    @Test func categoryBestSellerKakaoTalkBody() async throws {
        let template = """
            {%- assign category = custom_attribute.${last_viewed_category} | default: 'all' -%}
            {%- connected_content BASE/best?category={{ category | url_param_escape }} :cache_max_age 3600 :save best -%}
            {%- if best.projects.size == 0 -%}{%- abort_message('no best seller for this category right now') -%}{%- endif -%}
            {%- assign project = best.projects[0] -%}
            {"senderKey": "shop-kakao", "templateCode": "BEST_NOW", "recipientNo": "{{ ${phone_number} | json_escape }}",
             "content": "{{ ${first_name} | default: '서포터' | json_escape }}님, 지금 {{ project.category_name | json_escape }} 1위는 '{{ project.title | json_escape }}'입니다.",
             "buttons": [{"name": "보러 가기", "type": "WL", "linkMo": "{{ project.url }}"}]}
            """
        try await Self.withFixture { fixture in
            let withCategory = try await fixture.render(template, data: """
                {"user": {"external_id": "u1", "first_name": "지민", "phone": "+821012345678", "custom_attributes": {"last_viewed_category": "tech & design"}}}
                """)
            let body = try JSONValue.parse(Array(withCategory.utf8))
            #expect(body["recipientNo"] == .string("+821012345678"))
            #expect(body["content"] == .string("지민님, 지금 tech & design 1위는 'Best of tech & design'입니다."))
            #expect(body["buttons"]?.arrayValue?.first?["linkMo"] == .string("https://shop.example/p/tech & design-1"))

            let withoutCategory = try await fixture.render(template, data: #"{"user": {"external_id": "u2", "phone": "+821099998888"}}"#)
            let fallback = try JSONValue.parse(Array(withoutCategory.utf8))
            #expect(fallback["content"] == .string("서포터님, 지금 전체 1위는 'Best of all'입니다."))

            _ = try await fixture.render(template, data: #"{"user": {"custom_attributes": {"last_viewed_category": "tech & design"}}}"#)
            #expect(fixture.received.count("/best/tech & design") == 1, "one request per category while cached")
            let reason = try await fixture.abortReason(template.replacingOccurrences(of: "| default: 'all'", with: "| default: 'empty'"))
            #expect(reason == "no best seller for this category right now")
        }
    }
}
