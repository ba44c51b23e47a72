import ArgumentParser
import BeckonCore
import BeckonServer
import BeckonStorage
import Foundation
import Logging

/// `beckon admin …`: workspaces, API keys and segmentable event properties.
struct AdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin",
        abstract: "Manage workspaces, API keys and segmentable event properties; test push credentials.",
        subcommands: [
            CreateWorkspace.self, ListWorkspaces.self, CreateAPIKey.self, ListAPIKeys.self, RevokeAPIKey.self,
            MarkSegmentable.self, UnmarkSegmentable.self, ListSegmentable.self, PushTest.self,
        ])

    /// Opens the database the options name, runs `body` with the stores and closes it.
    static func withStores<T>(_ options: DatabaseOptions, _ body: (BeckonServer.Stores) async throws -> T) async throws -> T {
        var configuration = ServerConfiguration()
        try options.apply(to: &configuration)
        var logger = CommandLogging.makeLogger()
        logger.logLevel = .warning
        let database = try await BeckonServer.openDatabase(configuration, logger: logger)
        let stores = BeckonServer.Stores(database: database, clock: SystemClock())
        do {
            let result = try await body(stores)
            try await database.close()
            return result
        } catch let error as AdminError {
            try? await database.close()
            throw ValidationError(error.description)
        } catch {
            try? await database.close()
            throw error
        }
    }

    struct CreateWorkspace: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create-workspace", abstract: "Create a workspace.")
        @Argument(help: "The workspace name.") var name: String
        @Option(name: .customLong("time-zone"), help: "The workspace's IANA time zone (daily reports, quiet hours).")
        var timeZone = "UTC"
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let workspace = try await AdminCommand.withStores(database) { try await $0.workspaces.createWorkspace(name: name, timeZone: timeZone) }
            print("workspace \(workspace.id) '\(workspace.name)' created; SDK app id: \(workspace.appID)")
        }
    }

    struct ListWorkspaces: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list-workspaces", abstract: "List workspaces.")
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let list = try await AdminCommand.withStores(database) { try await $0.workspaces.workspaces() }
            for workspace in list {
                print("\(workspace.id)\t\(workspace.name)\tapp_id=\(workspace.appID)\ttime_zone=\(workspace.timeZone)")
            }
        }
    }

    struct CreateAPIKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create-api-key", abstract: "Create a REST API key; the key is printed once.")
        @Option(help: "Workspace name or id.") var workspace: String
        @Option(help: "Comma-separated Braze permission names (users.track,segments.data_series,…) or 'all'.")
        var permissions: String
        @Option(help: "A name to recognise the key by.") var name = "api key"
        @Option(name: .customLong("ip-allowlist"), help: "Comma-separated IPs or CIDR blocks allowed to use the key.")
        var ipAllowlist = ""
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let (record, key) = try await AdminCommand.withStores(database) { stores in
                let target = try await stores.workspaces.workspace(workspace)
                return try await stores.workspaces.createAPIKey(
                    workspaceID: target.id, name: name, permissions: permissions.split(separator: ",").map(String.init),
                    ipAllowlist: ipAllowlist.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            }
            print(key)
            FileHandle.standardError.write(Data("key \(record.id) '\(record.name)' created with \(record.permissions.count) permissions; store it now, it is not shown again\n".utf8))
        }
    }

    struct ListAPIKeys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list-api-keys", abstract: "List a workspace's API keys.")
        @Option(help: "Workspace name or id.") var workspace: String
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let keys = try await AdminCommand.withStores(database) { stores in
                try await stores.workspaces.apiKeys(workspaceID: try await stores.workspaces.workspace(workspace).id)
            }
            for key in keys {
                let state = key.revokedAt == nil ? "active" : "revoked \(BrazeTime.format(epochMilliseconds: key.revokedAt ?? 0))"
                let used = key.lastUsedAt.map { BrazeTime.format(epochMilliseconds: $0) } ?? "never"
                print("\(key.id)\t\(key.name)\t\(key.hint)…\t\(state)\tcreated \(BrazeTime.format(epochMilliseconds: key.createdAt))\tlast used \(used)\tips=\(key.ipAllowlist.isEmpty ? "any" : key.ipAllowlist.joined(separator: ","))\t\(key.permissions.sorted().joined(separator: ","))")
            }
        }
    }

    struct RevokeAPIKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "revoke-api-key", abstract: "Revoke an API key by id.")
        @Argument(help: "The key id (see list-api-keys).") var id: Int64
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            try await AdminCommand.withStores(database) { try await $0.workspaces.revokeAPIKey(id: id) }
            print("key \(id) revoked")
        }
    }

    struct MarkSegmentable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "mark-segmentable",
            abstract: "Count an event property's values per user per day, so segments filter on it from aggregates.")
        @Option(help: "Workspace name or id.") var workspace: String
        @Option(help: "The custom event name.") var event: String
        @Option(help: "The property name (dotted for nested properties).") var property: String
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            try await AdminCommand.withStores(database) { stores in
                let target = try await stores.workspaces.workspace(workspace)
                try await stores.users.markSegmentable(workspaceID: target.id, eventName: event, property: property)
            }
            print("'\(event)'.'\(property)' is segmentable from now on (events ingested before are not counted)")
        }
    }

    struct UnmarkSegmentable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "unmark-segmentable", abstract: "Stop counting an event property's values and drop its aggregates.")
        @Option(help: "Workspace name or id.") var workspace: String
        @Option(help: "The custom event name.") var event: String
        @Option(help: "The property name.") var property: String
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            try await AdminCommand.withStores(database) { stores in
                let target = try await stores.workspaces.workspace(workspace)
                try await stores.users.unmarkSegmentable(workspaceID: target.id, eventName: event, property: property)
            }
            print("'\(event)'.'\(property)' is no longer segmentable")
        }
    }

    struct ListSegmentable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list-segmentable", abstract: "List segmentable event properties.")
        @Option(help: "Workspace name or id.") var workspace: String
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let properties = try await AdminCommand.withStores(database) { stores in
                try await stores.users.segmentableProperties(workspaceID: try await stores.workspaces.workspace(workspace).id)
            }
            for event in properties.keys.sorted() {
                for property in properties[event] ?? [] { print("\(event)\t\(property)") }
            }
        }
    }
}
