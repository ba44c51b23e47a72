import ArgumentParser
import BeckonMessaging
import BeckonConnectedContent
import BeckonCore
import BeckonOutboundHTTP
import BeckonServer
import BeckonStorage
import BeckonTestSupport
import BeckonChannels
import Crypto
import Foundation
import Hummingbird
import Synchronization
import Liquid
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `beckon bench campaign`: a broadcast webhook campaign with a personalized Liquid body to every
/// user of a fresh database, delivered to a local receiver that answers 200 at once.
struct BenchCampaignCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "campaign",
        abstract: "Send a personalized webhook campaign to N users through the real pipeline; prints JSON lines.")

    @Option(help: "Users in the audience.") var users = 100_000
    @Option(name: .customLong("data-dir"), help: "Folder for the benchmark's SQLite database (must not hold one).")
    var dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("beckon-bench-campaign-\(UUID().uuidString)").path
    @Option(help: "Messages rendered and sent at once.") var concurrency = 64
    @Option(name: .customLong("concurrency-per-campaign"), help: "Webhook requests of the campaign in flight at once.")
    var concurrencyPerCampaign = 128
    @Flag(name: .customLong("keep-data"), help: "Keep the benchmark database afterwards.") var keepData = false
    @Option(name: .customLong("batch-size"), help: "Messages claimed and not yet settled at most (the claim batch in flight).") var batchSize = 2_000
    @Option(name: .customLong("database"), help: "postgres://… to run against PostgreSQL (an empty database) instead of SQLite.")
    var databaseURL: String?
    @Option(help: "webhook, or push (every user has an iOS token; APNs is a local stand-in).") var channel = "webhook"

    func run() async throws {
        print(CommandJSON.text(.object(try await measure())))
    }

    /// Loads the users, sends the campaign and returns the send phase's figures (the load phase is printed).
    func measure() async throws -> LiquidObject {
        guard ["webhook", "push"].contains(channel) else { throw ValidationError("--channel must be webhook or push") }
        let isPush = channel == "push"
        guard users >= 1, concurrency >= 1, batchSize >= 1, concurrencyPerCampaign >= 1 else {
            throw ValidationError("--users, --concurrency, --concurrency-per-campaign and --batch-size must be at least 1")
        }
        var quiet = Logger(label: "bench")
        quiet.logLevel = .error
        var configuration = ServerConfiguration()
        configuration.dataDirectory = dataDirectory
        configuration.databaseURL = databaseURL
        guard databaseURL != nil || !FileManager.default.fileExists(atPath: configuration.sqlitePath) else {
            throw ValidationError("--data-dir \(dataDirectory) already holds a database; give an empty folder")
        }
        let database = try await BeckonServer.openDatabase(configuration, logger: quiet)
        let clock = SystemClock()
        let stores = BeckonServer.Stores(database: database, clock: clock)
        let workspace = try await stores.workspaces.createWorkspace(name: "bench", timeZone: "Asia/Seoul")
        let loadStart = ContinuousClock.now
        for chunk in stride(from: 0, to: users, by: 75) {
            let attributes = (chunk..<min(chunk + 75, users)).map { index -> JSONValue in
                var user: [String: JSONValue] = [
                    "external_id": .string("u\(index)"), "first_name": .string("고객\(index)"), "phone": .string("+8210\(10_000_000 + index)"),
                    "last_viewed_category": .string("c\(index % 200)"),
                ]
                if isPush {
                    let token = String(repeating: "0", count: 48) + String(String(index, radix: 16).suffix(16)).leftPadded(to: 16)
                    user["push_tokens"] = .array([.object(["app_id": .string(workspace.appID), "token": .string(token), "platform": .string("ios")])])
                }
                return .object(user)
            }
            let request = try TrackRequest.parse(.object(["attributes": .array(attributes)]), now: clock.now())
            _ = try await stores.users.track(workspaceID: workspace.id, request: request)
        }
        print(CommandJSON.text(["phase": "load users", "users": .int(users), "seconds": .double(Self.seconds(since: loadStart))]))

        let received = RenderCounter()
        let inFlight = InFlightGauge()
        // Push: an APNs stand-in over TLS and HTTP/2 (a CA made here, trusted like --extra-ca-file);
        // webhook: a plain HTTP/1.1 receiver. Both answer 200 at once.
        let router = Router(context: ConnectionRequestContext.self)
        router.post(isPush ? "/3/device/{token}" : "/hook") { request, context -> Response in
            try await inFlight.measure(context.connection) {
                _ = try await request.body.collect(upTo: 1 << 16)
                _ = received.take()
                return Response(status: .ok)
            }
        }
        // Only the push stand-in speaks TLS: its CA is made (and trusted) for push runs alone.
        let authority = isPush ? try TestCertificateAuthority() : nil
        let caFile = try authority?.writeCertificateFile()
        defer { if let caFile { try? FileManager.default.removeItem(atPath: caFile) } }
        let server = try await BenchLocalServer.start(router, tls: authority, logger: quiet)
        let port = server.port

        var contentConfiguration = ConnectedContentConfiguration()
        contentConfiguration.allowedHosts = try HostAllowlist(parsing: ["127.0.0.1:\(port)"])
        if let caFile { contentConfiguration.extraTrustRoots = try ExtraTrustRoots(pemFile: caFile) }
        let connectedContent = ConnectedContentComponents(
            database: database, secrets: try SecretBox(base64Key: SecretBox.generateKey()), clock: clock, configuration: contentConfiguration,
            logger: quiet)
        var pipelineConfiguration = SendPipelineConfiguration()
        pipelineConfiguration.concurrency = concurrency
        pipelineConfiguration.batchSize = batchSize
        let campaigns = BeckonServer.makeCampaigns(
            database: database, users: stores.users, segments: stores.segments, connectedContent: connectedContent, clock: clock,
            configuration: pipelineConfiguration, webhookConcurrencyPerCampaign: concurrencyPerCampaign, logger: quiet)
        let body = #"{"to": "{{${phone_number}}}", "text": "{{${first_name} | default: '고객'}}님, {{custom_attribute.${last_viewed_category}}} 신상품이 도착했어요"}"#
        let message: JSONValue
        if isPush {
            try await campaigns.push.save(workspaceID: workspace.id, apns: try APNsCredentials.parse(.object([
                "team_id": .string("TEAM123456"), "key_id": .string("KEY1234567"), "private_key": .string(P256.Signing.PrivateKey().pemRepresentation),
                "bundle_id": .string("com.example.bench"), "endpoint": .string("https://127.0.0.1:\(port)"),
            ])))
            message = .object(["push": .object([
                "title": .string("{{${first_name} | default: '고객'}}님"), "body": .string("{{custom_attribute.${last_viewed_category}}} 신상품이 도착했어요"),
                "deep_link": .string("shop://c/{{custom_attribute.${last_viewed_category}}}"), "platforms": .array([.string("ios")]),
            ])])
        } else {
            message = .object(["webhook": .object(["url": .string("http://127.0.0.1:\(port)/hook"), "body": .string(body)])])
        }
        let campaign = try await campaigns.store.create(workspaceID: workspace.id, body: .object([
            "name": .string("Bench broadcast"), "delivery": .object(["type": .string("api_triggered")]), "messages": message,
        ]))
        _ = try await campaigns.store.launch(workspaceID: workspace.id, id: campaign.id)
        let sendStart = ContinuousClock.now
        sync()
        let deviceWrittenBefore = Self.deviceBytesWritten()
        let writtenBefore = Self.bytesWritten()
        let cpuBefore = Self.cpuSeconds()
        // Peak memory of the send alone: the kernel's high-water mark starts again here.
        let peakReset = (try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)) != nil
        BenchLatency.shared.reset()
        try await campaigns.queue.enqueue(NewDispatch(
            id: DispatchID.random(), workspaceID: workspace.id, campaignID: campaign.id, kind: .apiTriggered, definition: campaign.definition,
            triggerProperties: .object([:]), recipients: nil, scheduledAt: BrazeTime.epochMilliseconds(clock.now())))
        do {
            try await campaigns.pipeline.drain()
        } catch {
            try? await connectedContent.service.shutdown()
            try? await server.stop()
            throw error
        }
        let seconds = Self.seconds(since: sendStart)
        let written = Self.bytesWritten() - writtenBefore
        sync()
        let deviceWritten = Self.deviceBytesWritten() - deviceWrittenBefore
        let cpu = Self.cpuSeconds() - cpuBefore
        let counts = try await campaigns.queue.messageCounts(campaignID: campaign.id)
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let processPeakMB = (Double(usage.ru_maxrss) / 1024).rounded()
        var figures = LiquidObject([
            ("phase", "send"), ("channel", .string(channel)), ("users", .int(users)),
            // Requests at once on one connection (HTTP/2 streams for push), and the connections used.
            ("most_in_flight_per_connection", .int(inFlight.mostPerConnection)), ("connections", .int(inFlight.connections)),
            ("delivered", .int(counts["delivered"] ?? 0)), ("received", .int(received.count)),
            ("seconds", .double(seconds)), ("messages_per_second", .double((Double(received.count) / seconds).rounded())),
            // The send's peak (loading the users comes before it); the process's peak beside it.
            ("peak_rss_mb", .double(peakReset ? Self.peakResidentMB() ?? processPeakMB : processPeakMB)),
            ("process_peak_rss_mb", .double(processPeakMB)),
            // Both cores busy is 2 × seconds.
            ("cpu_seconds", .double((cpu * 100).rounded() / 100)),
            ("database", .string(databaseURL == nil ? "sqlite" : "postgres")),
            // This process's writes (SQLite's WAL and checkpoints); PostgreSQL's server writes are its own process's.
            ("disk_bytes_per_message", .int(written / max(1, received.count))),
            // Everything the machine's disks took during the send (after `sync`): PostgreSQL's
            // server processes too, and anything else running.
            ("device_bytes_per_message", .int(deviceWritten / max(1, received.count))),
        ])
        if isPush, let latency = BenchLatency.shared.percentiles([0.5, 0.99]) {
            // beckon_push_provider_seconds: each APNs request's round trip as the client saw it.
            figures["provider_latency_p50_ms"] = .double(latency[0])
            figures["provider_latency_p99_ms"] = .double(latency[1])
        }
        try await connectedContent.service.shutdown()
        try await server.stop()
        try await database.close()
        if !keepData { try? FileManager.default.removeItem(atPath: dataDirectory) }
        return figures
    }

    /// `write_bytes` of this process from `/proc/self/io`: bytes it caused to reach the disk.
    static func bytesWritten() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/io", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("write_bytes:") {
            return Int(line.dropFirst("write_bytes:".count).trimmingCharacters(in: .whitespaces)) ?? 0
        }
        return 0
    }

    /// Bytes written to the machine's block devices so far (`/sys/block/*/stat`, sectors of 512 bytes).
    static func deviceBytesWritten() -> Int {
        let devices = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/block")) ?? []
        return devices.reduce(0) { total, device in
            guard let text = try? String(contentsOfFile: "/sys/block/\(device)/stat", encoding: .utf8) else { return total }
            let fields = text.split(separator: " ")
            return total + (fields.count > 6 ? (Int(fields[6]) ?? 0) * 512 : 0)
        }
    }

    /// `VmHWM` of `/proc/self/status`: the peak resident memory since the last reset, in MB.
    static func peakResidentMB() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kilobytes = line.dropFirst("VmHWM:".count).trimmingCharacters(in: .whitespaces).split(separator: " ").first.flatMap { Double($0) }
            return kilobytes.map { ($0 / 1024).rounded() }
        }
        return nil
    }

    /// User and system CPU time of this process so far.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1_000_000 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        (BenchLiquidCommand.seconds(ContinuousClock.now - start) * 100).rounded() / 100
    }
}

extension String {
    /// The string with leading zeros up to `width` characters.
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

/// `beckon bench push`: the webhook campaign and then the iOS push campaign (APNs stand-in over TLS
/// and HTTP/2) to the same number of users in one run, each on a fresh database, and the push
/// path's throughput as a share of the webhook path's.
struct BenchPushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Send a personalized webhook campaign, then an iOS push campaign over TLS/HTTP/2, to N users each; prints JSON lines and the ratio.")

    @Option(help: "Users in each audience (one iOS token each for push).") var users = 100_000
    @Option(help: "Messages rendered and sent at once (both runs).") var concurrency = 256
    @Option(name: .customLong("database"), help: "postgres://… to run against PostgreSQL (an empty database) instead of SQLite.")
    var databaseURL: String?

    func run() async throws {
        var results: [String: LiquidObject] = [:]
        for channel in ["webhook", "push"] {
            var arguments = ["--users", "\(users)", "--concurrency", "\(concurrency)", "--channel", channel]
            if let databaseURL { arguments += ["--database", databaseURL] }
            let figures = try await BenchCampaignCommand.parse(arguments).measure()
            print(CommandJSON.text(.object(figures)))
            results[channel] = figures
        }
        guard case .double(let webhook) = results["webhook"]?["messages_per_second"], case .double(let push) = results["push"]?["messages_per_second"],
            webhook > 0
        else { return }
        print(CommandJSON.text([
            "phase": "compare", "push_per_second": .double(push), "webhook_per_second": .double(webhook),
            "push_to_webhook": .double((push / webhook * 100).rounded() / 100), "goal": 0.9,
        ]))
    }
}
