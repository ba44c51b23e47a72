import ArgumentParser
import BeckonChannels
import BeckonConnectedContent
import BeckonCore
import BeckonMessaging
import BeckonServer
import BeckonStorage
import Foundation
import Liquid
import Logging

extension AdminCommand {
    /// `beckon admin push-test`: one push to a user's tokens now, each token's outcome printed —
    /// what an engineer runs after pasting keys.
    struct PushTest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "push-test", abstract: "Send one push to a user's tokens now and print each token's outcome.")

        @Option(help: "Workspace name or id.") var workspace: String
        @Option(name: .customLong("external-id"), help: "The user's external id.") var externalID: String
        @Option(help: "The notification title (Liquid).") var title: String
        @Option(help: "The notification body (Liquid).") var body: String
        @Option(name: .customLong("allow-host"), help: "host or host:port a local or test provider endpoint may use (env BECKON_ALLOW_HOSTS).")
        var allowHosts: [String] = []
        @Option(name: .customLong("extra-ca-file"), help: "PEM CA certificates trusted beside the system roots (env BECKON_EXTRA_CA_FILE).")
        var extraCAFile: String?
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            var configuration = ServerConfiguration()
            try database.apply(to: &configuration)
            let environment = ProcessInfo.processInfo.environment
            configuration.allowedHosts = allowHosts + (environment["BECKON_ALLOW_HOSTS"] ?? "").split(separator: ",").map(String.init).filter { !$0.isEmpty }
            configuration.extraCAFile = extraCAFile ?? environment["BECKON_EXTRA_CA_FILE"].flatMap { $0.isEmpty ? nil : $0 }
            var logger = CommandLogging.makeLogger()
            logger.logLevel = .warning
            let clock = SystemClock()
            let db = try await BeckonServer.openDatabase(configuration, logger: logger)
            let stores = BeckonServer.Stores(database: db, clock: clock)
            let connectedContent = try BeckonServer.makeConnectedContent(configuration, database: db, clock: clock, logger: logger)
            let results: [(token: PushDeviceToken, outcome: ChannelOutcome)]
            do {
                let push = PushStore(database: db, box: connectedContent.secrets, clock: clock)
                let channel = PushChannel(
                    outbound: connectedContent.outbound, allowlist: { try await connectedContent.service.workspaceAllowlist($0) }, directory: push,
                    clock: clock)
                let target = try await stores.workspaces.workspace(workspace)
                guard let userID = try await stores.users.userID(workspaceID: target.id, identifier: .externalID(externalID)) else {
                    throw ValidationError("no user with external id '\(externalID)' in workspace '\(target.name)'")
                }
                let message = JSONValue.object(["title": .string(title), "body": .string(body)])
                var problems: [String] = []
                channel.validate(message, path: "push", rules: MessageRules(), problems: &problems)
                guard problems.isEmpty else { throw ValidationError(problems.joined(separator: "\n")) }
                let profile = try await stores.users.profiles(ids: [userID])[userID]
                let context = RenderContext(user: profile, campaign: RenderContext.Campaign(
                    apiID: nil, name: "push-test", dispatchID: nil, sendID: nil, messageID: nil, variantName: "push-test"))
                var renderEnvironment = RenderEnvironment()
                renderEnvironment.now = clock.now()
                let rendered = try await channel.prepare(message, rules: MessageRules()).render(context.liquid, environment: renderEnvironment)
                let messageID = "msg_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
                results = try await channel.sendToEachToken(
                    rendered, to: Recipient(workspaceID: target.id, messageID: messageID, userID: userID, dispatchID: "push-test", variant: "push-test",
                        externalID: externalID))
            } catch {
                try? await connectedContent.service.shutdown()
                try? await db.close()
                throw error
            }
            try? await connectedContent.service.shutdown()
            try await db.close()
            guard !results.isEmpty else {
                print("\(externalID) has no valid push token (authorized or provisional)")
                throw ExitCode(2)
            }
            var failed = false
            for (device, outcome) in results {
                let shown = device.token.count > 24 ? String(device.token.prefix(12)) + "…" + String(device.token.suffix(8)) : device.token
                let text: String
                switch outcome {
                case .accepted: text = "accepted"
                case .invalidAddress(let reason): text = "invalid token, retired: \(reason)"; failed = true
                case .rejected(let reason, _): text = "rejected: \(reason)"; failed = true
                case .retryable(let reason, let after, _): text = "retryable: \(reason)\(after.map { " (retry after \($0) s)" } ?? "")"; failed = true
                case .configError(let reason): text = "configuration error: \(reason)"; failed = true
                }
                print("\(device.platform.rawValue)\t\(device.authorization)\t\(shown)\t\(text)")
            }
            if failed { throw ExitCode(1) }
        }
    }
}
