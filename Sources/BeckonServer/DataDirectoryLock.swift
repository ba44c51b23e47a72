import BeckonStorage
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An exclusive lock on the data folder held while `beckon serve` runs on SQLite: SQLite is one
/// node (its send queue keeps claims in memory), so a second server on the same folder is refused
/// instead of sending the same messages. Released when the process exits, however it exits.
public final class DataDirectoryLock: Sendable {
    private let descriptor: Int32

    /// Takes the lock on `serve.lock` in `directory`, or throws naming the folder.
    public init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = (directory as NSString).appendingPathComponent("serve.lock")
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw AdminError("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw AdminError(
                "another beckon serve is using the data folder \(directory); with SQLite one server serves one folder (use PostgreSQL for several nodes)")
        }
        self.descriptor = descriptor
    }

    deinit {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
