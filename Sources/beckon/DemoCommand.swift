import ArgumentParser
import BeckonCore
import BeckonServer
import BeckonStorage
import Foundation

/// `beckon demo`: loads the Korean fashion shop dataset into a workspace.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo", abstract: "Load a synthetic Korean fashion shop dataset through the ingestion code path.")

    @Option(help: "How many users to create.") var users = 10_000
    @Option(help: "Workspace name or id (default: the first workspace, created when none exists).") var workspace: String?
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        guard users >= 1, users <= 5_000_000 else { throw ValidationError("--users must be 1 to 5,000,000") }
        var configuration = ServerConfiguration()
        try database.apply(to: &configuration)
        configuration.adminKey = ProcessInfo.processInfo.environment["BECKON_ADMIN_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        let report = try await AdminCommand.withStores(database) { stores in
            if let firstStart = try await BeckonServer.provisionIfEmpty(configuration, workspaces: stores.workspaces) {
                print("created workspace '\(firstStart.workspace.name)'; admin API key: \(firstStart.apiKey) (saved to \(firstStart.keyFile))")
            }
            let target: Workspace
            if let workspace {
                target = try await stores.workspaces.workspace(workspace)
            } else if let first = try await stores.workspaces.workspaces().first {
                target = first
            } else {
                throw ValidationError("no workspace to load into")
            }
            return try await DemoLoader(users: stores.users, clock: SystemClock()).load(workspaceID: target.id, users: users) {
                print($0)
            }
        }
        print(report)
    }
}
