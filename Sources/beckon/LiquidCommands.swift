import ArgumentParser
import BeckonConnectedContent
import BeckonCore
import BeckonOutboundHTTP
import BeckonMessaging
import BeckonStorage
import Foundation
import Liquid

/// `beckon liquid …`: Liquid tools.
struct LiquidCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "liquid", abstract: "Render Liquid templates the way Beckon renders messages.", subcommands: [LiquidRenderCommand.self])
}

/// The template and data files every Liquid command reads.
struct LiquidInputOptions: ParsableArguments {
    @Option(help: "The Liquid template file.") var template: String
    @Option(help: "JSON data: {\"user\": {…, \"custom_attributes\": {…}}, \"event_properties\": {…}, \"canvas_entry_properties\": {…}, \"api_trigger_properties\": {…}, \"campaign\": {…}, \"content_blocks\": {\"name\": \"liquid\"}}.")
    var data: String
    @Option(help: "Folder of partials for render/include: one NAME.liquid file per partial.") var partials: String?
    @Flag(help: "Strict parsing and rendering (Braze renders lax).") var strict = false
    @Option(
        name: .customLong("allow-host"),
        help: "HOST or HOST:PORT that connected_content may call beyond public addresses on ports 80/443 (repeatable; a host without a port allows every port).")
    var allowHosts: [String] = []
    @Option(name: .customLong("timeout-ms"), help: "Connected Content timeout in milliseconds.") var timeoutMilliseconds = 2_000

    /// Reads the files and runs `body` with live Connected Content (closed afterwards).
    func withInput<T: Sendable>(
        _ body: (_ source: String, _ context: LiquidObject, _ environment: RenderEnvironment, _ service: ConnectedContentService) async throws -> T
    ) async throws -> T {
        var (source, context, environment) = try load()
        var configuration = ConnectedContentConfiguration()
        do {
            configuration.allowedHosts = try HostAllowlist(parsing: allowHosts)
        } catch {
            throw ValidationError("--allow-host: \(error.description)")
        }
        guard ConnectedContentSettings.timeoutRange.contains(timeoutMilliseconds) else {
            throw ValidationError("--timeout-ms must be \(ConnectedContentSettings.timeoutRange.lowerBound) to \(ConnectedContentSettings.timeoutRange.upperBound)")
        }
        configuration.defaultSettings.timeoutMilliseconds = timeoutMilliseconds
        let service = ConnectedContentService(configuration: configuration, clock: SystemClock(), logger: CommandLogging.makeLogger())
        environment.fetcher = service.fetcher(for: ConnectedContentContext(workspaceID: 0, channel: "cli"))
        do {
            let result = try await body(source, context, environment, service)
            try await service.shutdown()
            return result
        } catch {
            try? await service.shutdown()
            throw error
        }
    }

    /// Reads the files; errors name the file and the problem.
    func load() throws -> (source: String, context: LiquidObject, environment: RenderEnvironment) {
        guard let source = try? String(contentsOfFile: template, encoding: .utf8) else {
            throw ValidationError("cannot read the template file '\(template)' (missing, unreadable or not UTF-8)")
        }
        guard let bytes = FileManager.default.contents(atPath: data) else { throw ValidationError("cannot read the data file '\(data)'") }
        let json: JSONValue
        do {
            json = try JSONValue.parse(Array(bytes))
        } catch {
            throw ValidationError("the data file '\(data)' is not valid JSON: \(error)")
        }
        guard var members = json.objectValue else { throw ValidationError("the data file '\(data)' must hold a JSON object") }
        // The same context a send renders with: `user` is the profile, the rest is passed as is.
        let user = members.removeValue(forKey: "user")
        let context = RenderContext(user: user, extra: members)
        guard case .object(let object) = LiquidValue(json) else { throw ValidationError("the data file '\(data)' must hold a JSON object") }
        var environment = RenderEnvironment()
        environment.strict = strict
        if case .object(let blocks) = object["content_blocks"] {
            for name in blocks.keys { environment.contentBlocks[name] = blocks[name].text }
        }
        if let partials {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: partials, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ValidationError("--partials '\(partials)' is not a folder")
            }
            environment.partials = DirectoryPartials(folder: partials)
        }
        return (source, context.liquid, environment)
    }
}

/// Partials read from `NAME.liquid` files in one folder (names cannot leave the folder).
struct DirectoryPartials: PartialSource {
    let folder: String

    func partial(named name: String) -> String? {
        guard !name.isEmpty, !name.contains(".."), !name.hasPrefix("/") else { return nil }
        return try? String(contentsOfFile: (folder as NSString).appendingPathComponent(name + ".liquid"), encoding: .utf8)
    }
}

/// `beckon liquid render`: prints the output byte-exact; exit 1 on errors, 3 when the message aborts.
struct LiquidRenderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "render", abstract: "Render a template with JSON data; exit 3 when it calls abort_message.")

    @OptionGroup var input: LiquidInputOptions

    func run() async throws {
        let strict = input.strict
        let exitCode: Int32 = try await input.withInput { source, context, environment, _ in
            do {
                let template = try Template.parse(source, options: Template.ParseOptions(strict: strict))
                let output = try await template.render(context, environment: environment)
                FileHandle.standardOutput.write(Data(output.utf8))
                return 0
            } catch let aborted as MessageAborted {
                FileHandle.standardError.write(Data("message aborted: \(aborted.reason ?? "{% abort_message %} called")\n".utf8))
                return 3
            } catch {
                FileHandle.standardError.write(Data("\(error)\n".utf8))
                return 1
            }
        }
        if exitCode != 0 { throw ExitCode(exitCode) }
    }
}

/// `beckon bench liquid`: parse once, render N times, print renders per second.
struct BenchLiquidCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "liquid", abstract: "Parse a template once and render it N times in-process; prints JSON.")

    @OptionGroup var input: LiquidInputOptions
    @Option(help: "How many renders to time.") var iterations = 100_000

    func run() async throws {
        guard iterations >= 1 else { throw ValidationError("--iterations must be at least 1") }
        let options = Template.ParseOptions(strict: input.strict)
        let iterations = iterations
        let result: LiquidValue = try await input.withInput { source, context, environment, service in
            let parseRuns = 200
            let parseStart = ContinuousClock.now
            var template = try Template.parse(source, options: options)
            for _ in 1..<parseRuns { template = try Template.parse(source, options: options) }
            let parseMicroseconds = Self.seconds(ContinuousClock.now - parseStart) * 1_000_000 / Double(parseRuns)
            _ = try await template.render(context, environment: environment)
            let start = ContinuousClock.now
            for _ in 0..<iterations { _ = try await template.render(context, environment: environment) }
            let elapsed = Self.seconds(ContinuousClock.now - start)
            return [
                "renders_per_second": .double((Double(iterations) / elapsed).rounded()),
                "parse_microseconds": .double((parseMicroseconds * 10).rounded() / 10), "iterations": .int(iterations),
                "connected_content_requests": .int(service.statistics.requests),
            ]
        }
        print(CommandJSON.text(result))
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

/// One-line JSON for command output.
enum CommandJSON {
    static func text(_ value: LiquidValue) -> String {
        guard case .object(let object) = value else { return value.text }
        return "{" + object.keys.map { key in
            let item = object[key]
            let rendered: String
            switch item {
            case .string(let text): rendered = "\"\(text)\""
            case .double(let number): rendered = number == number.rounded() ? String(Int(number)) : String(number)
            default: rendered = item.text
            }
            return "\"\(key)\": \(rendered)"
        }.joined(separator: ", ") + "}"
    }
}
