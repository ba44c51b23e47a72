import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The real `beckon` binary as a user runs it: first start, the admin key, and durability across `kill -9`.
@Suite("beckon serve (process)", .serialized)
struct ServerProcessTests {
    /// The `beckon` executable built next to the test bundle.
    static var binary: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("beckon")
    }

    /// A running `beckon serve` on a free port over `dataDirectory`.
    final class Server: @unchecked Sendable {
        private(set) var process = Process()
        private(set) var port: Int
        private(set) var output = Pipe()
        private let launch: (Int) throws -> (Process, Pipe)

        init(dataDirectory: URL, adminKey: String?, extraEnvironment: [String: String] = [:], arguments: [String] = []) throws {
            launch = { port in
                let process = Process()
                let output = Pipe()
                process.executableURL = ServerProcessTests.binary
                process.arguments = ["serve", "--data-dir", dataDirectory.path, "--port", String(port)] + arguments
                var environment = ProcessInfo.processInfo.environment
                environment["BECKON_ADMIN_KEY"] = adminKey
                environment["DATABASE_URL"] = nil
                environment["BECKON_LOG_LEVEL"] = "warning"
                environment.merge(extraEnvironment) { _, new in new }
                process.environment = environment
                process.standardOutput = output
                process.standardError = output
                try process.run()
                return (process, output)
            }
            port = Int.random(in: 20_000...60_000)
            (process, output) = try launch(port)
        }

        /// Waits until `/health` answers (up to a minute: test processes start side by side on a
        /// busy machine); a process that exited is reported with its output at once, except that a
        /// port another test took is given up for a new one.
        func waitUntilReady() async throws {
            var relaunches = 0
            for _ in 0..<1_200 {
                if let (status, _) = try? await request("GET", "/health", key: nil, body: nil), status == 200 { return }
                if !process.isRunning {
                    let text = printed
                    guard text.contains("Address already in use"), relaunches < 5 else {
                        throw ServerError("beckon serve exited (status \(process.terminationStatus)) before it was ready on port \(port): \(text)")
                    }
                    relaunches += 1
                    port = Int.random(in: 20_000...60_000)
                    (process, output) = try launch(port)
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            throw ServerError("beckon serve did not become ready on port \(port) within a minute")
        }

        func request(_ method: String, _ path: String, key: String?, body: String?) async throws -> (Int, String) {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
            request.httpMethod = method
            if let key { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
            if let body {
                request.setValue("application/json", forHTTPHeaderField: "Content-Type")
                request.httpBody = Data(body.utf8)
            }
            let (data, response) = try await URLSession.shared.data(for: request)
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
        }

        func kill9() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }

        func terminate() {
            guard process.isRunning else { return }
            process.terminate()
            process.waitUntilExit()
        }

        var printed: String { String(decoding: output.fileHandleForReading.availableData, as: UTF8.self) }
    }

    struct ServerError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("beckon-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test("first start creates a workspace and writes BECKON_ADMIN_KEY to a 0600 file; SIGTERM stops it cleanly")
    func firstStart() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary.path), "build the beckon product first")
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = "test-admin-key-0123456789"
        let server = try Server(dataDirectory: directory, adminKey: key)
        try await server.waitUntilReady()
        let keyFile = directory.appendingPathComponent("admin-api-key")
        #expect(try String(contentsOf: keyFile, encoding: .utf8) == key + "\n")
        let permissions = try FileManager.default.attributesOfItem(atPath: keyFile.path)[.posixPermissions] as? Int
        #expect(permissions == 0o600)
        let (status, _) = try await server.request("POST", "/users/track", key: key, body: #"{"attributes": [{"external_id": "u1"}]}"#)
        #expect(status == 201)
        server.terminate()
        #expect(server.process.terminationStatus == 0, "graceful shutdown exits 0")
    }

    @Test("BECKON_ALLOW_HOSTS and the own URL reach the allowlist; the secret key file is 0600; liquid render --allow-host calls live APIs")
    func connectedContentWiring() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = "test-admin-key-0123456789"
        let server = try Server(dataDirectory: directory, adminKey: key, extraEnvironment: ["BECKON_ALLOW_HOSTS": "rank.internal:9000, 10.0.0.7"])
        defer { server.terminate() }
        try await server.waitUntilReady()
        let (status, settings) = try await server.request("GET", "/beckon/v1/connected_content/settings", key: key, body: nil)
        #expect(status == 200)
        #expect(settings.contains(#""server_allowed_hosts":["rank.internal:9000","10.0.0.7","127.0.0.1:\#(server.port)"]"#), "\(settings)")
        let secretFile = directory.appendingPathComponent("secret-key")
        #expect(try FileManager.default.attributesOfItem(atPath: secretFile.path)[.posixPermissions] as? Int == 0o600)
        let (created, _) = try await server.request(
            "POST", "/beckon/v1/connected_content/credentials", key: key, body: #"{"name": "shop", "token": "t0ken"}"#)
        #expect(created == 201)

        let template = directory.appendingPathComponent("health.liquid")
        try "[{% connected_content http://127.0.0.1:\(server.port)/health :save h %}{{h.status}}]".write(to: template, atomically: true, encoding: .utf8)
        let data = directory.appendingPathComponent("data.json")
        try "{}".write(to: data, atomically: true, encoding: .utf8)
        func render(_ extra: [String]) throws -> String {
            let process = Process()
            process.executableURL = Self.binary
            process.arguments = ["liquid", "render", "--template", template.path, "--data", data.path] + extra
            let output = Pipe()
            process.standardOutput = output
            process.standardError = Pipe()
            try process.run()
            process.waitUntilExit()
            return String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        }
        #expect(try render(["--allow-host", "127.0.0.1"]) == "[ok]")
        #expect(try render([]) == "[]", "a non-standard port on loopback needs --allow-host")
    }

    @Test("every write acknowledged with 2xx survives kill -9")
    func durableAcrossKill() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = "durability-key-0123456789"
        let server = try Server(dataDirectory: directory, adminKey: key)
        try await server.waitUntilReady()
        let acknowledged = try await withThrowingTaskGroup(of: Int.self) { group in
            for request in 0..<40 {
                group.addTask {
                    let events = (0..<75).map { index in
                        #"{"external_id": "u\#(request)", "name": "tick", "time": "2025-06-30T10:00:00Z", "properties": {"i": \#(index)}}"#
                    }
                    let (status, _) = try await server.request(
                        "POST", "/users/track", key: key, body: #"{"events": [\#(events.joined(separator: ","))]}"#)
                    return status == 201 ? 75 : 0
                }
            }
            return try await group.reduce(0, +)
        }
        server.kill9()
        #expect(acknowledged == 3000)

        let restarted = try Server(dataDirectory: directory, adminKey: nil)
        defer { restarted.terminate() }
        try await restarted.waitUntilReady()
        var counted = 0
        for request in 0..<40 {
            let (_, body) = try await restarted.request(
                "POST", "/users/export/ids", key: key, body: #"{"external_ids": ["u\#(request)"], "fields_to_export": ["custom_events"]}"#)
            if let range = body.range(of: #""count":"#) {
                counted += Int(body[range.upperBound...].prefix { $0.isNumber }) ?? 0
            }
        }
        #expect(counted == acknowledged, "events acknowledged before the kill are all there")
    }
}
