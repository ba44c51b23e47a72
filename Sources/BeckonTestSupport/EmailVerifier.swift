import BeckonCore
import Foundation

/// The independent email checker of `scripts/test-support/verify_email.py` (dkimpy, Python's
/// `email` package), run with the venv `scripts/test` makes (`BECKON_TEST_PYTHON`).
public enum EmailVerifier {
    /// Why the checker could not run.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// The checker's JSON for `message`: `dkim` (one bool per signature), `subject`, `from`, `to`,
    /// `headers`, `parts`. `records` are the DKIM TXT records by name (a stub resolver).
    public static func verify(_ message: String, records: [String: String]) throws -> JSONValue {
        let environment = ProcessInfo.processInfo.environment
        guard let python = environment["BECKON_TEST_PYTHON"], let support = environment["BECKON_TEST_SUPPORT"] else {
            throw Failure(description: "BECKON_TEST_PYTHON and BECKON_TEST_SUPPORT are not set: run the tests with scripts/test (it makes the verifier venv)")
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("beckon-mail-\(UUID().uuidString).eml")
        try Data(message.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [support + "/verify_email.py", file.path, JSONValue.object(records.mapValues(JSONValue.string)).serialized()]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let problems = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw Failure(description: "verify_email.py failed: \(problems)") }
        return try JSONValue.parse(Array(data))
    }
}
