import ArgumentParser

/// `beckon bench …`: in-process benchmarks whose numbers go to BENCHMARKS.md.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks (results are printed as JSON).",
        subcommands: [BenchLiquidCommand.self, BenchSegmentsCommand.self, BenchConnectedContentCommand.self, BenchCampaignCommand.self, BenchPushCommand.self])
}
