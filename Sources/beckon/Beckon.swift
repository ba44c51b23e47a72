import ArgumentParser

/// The `beckon` command line: the server, administration, demo data, Liquid tools and benchmarks.
@main
struct Beckon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "beckon",
        abstract: "Beckon: a self-hosted, Braze-compatible customer engagement platform.",
        subcommands: [ServeCommand.self, AdminCommand.self, DemoCommand.self, LiquidCommand.self, BenchCommand.self]
    )
}
