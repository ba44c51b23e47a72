import BeckonOutboundHTTP
import Foundation
import NIOCore
import NIOPosix
import NIOConcurrencyHelpers
import NIOSSL

/// A reply of an SMTP server: the code and its text lines (RFC 5321 §4.2).
public struct SMTPReply: Sendable, Equatable, CustomStringConvertible {
    public let code: Int
    public let lines: [String]

    public var isPositive: Bool { (200..<400).contains(code) }
    public var isTransient: Bool { (400..<500).contains(code) }
    public var description: String { "\(code) \(lines.joined(separator: " / "))" }
}

/// What went wrong talking to an SMTP server: the step, and the server's reply when it gave one.
public struct SMTPError: Error, Sendable, CustomStringConvertible {
    public enum Step: String, Sendable { case connect, greeting, ehlo, starttls, auth, mail, rcpt, data, rset }
    public let step: Step
    public let reply: SMTPReply?
    public let detail: String

    public var description: String {
        if let reply { return "SMTP \(step.rawValue): \(reply)" }
        return "SMTP \(step.rawValue): \(detail)"
    }
}

/// How to reach an SMTP server: `starttls` (upgrade after EHLO; refused when the server does not
/// offer it), implicit `tls`, or `none` (plain; AUTH is never sent then).
public struct SMTPServer: Sendable {
    public enum Security: String, Sendable { case starttls, tls, none }
    public let host: String
    public let port: Int
    public let security: Security
    public let username: String?
    public let password: String?

    public init(host: String, port: Int, security: Security, username: String?, password: String?) {
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
    }
}

/// One SMTP session on SwiftNIO: greeting, EHLO, STARTTLS or implicit TLS, AUTH PLAIN or LOGIN
/// only over TLS, then any number of messages (RSET between them), QUIT. Not shared between tasks.
public final class SMTPConnection: @unchecked Sendable {
    private let channel: any Channel
    private let lines: LineQueue
    private let timeout: TimeAmount
    public private(set) var capabilities: [String] = []

    private init(channel: any Channel, lines: LineQueue, timeout: TimeAmount) {
        self.channel = channel
        self.lines = lines
        self.timeout = timeout
    }

    /// Connects, reads the greeting, says EHLO as `heloName`, upgrades to TLS and authenticates as configured.
    public static func open(
        _ server: SMTPServer, heloName: String, trustRoots: ExtraTrustRoots, timeoutSeconds: Int64 = 30,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> SMTPConnection {
        let lines = LineQueue()
        let tls = try trustRoots.clientTLSConfiguration()
        let context = try NIOSSLContext(configuration: tls)
        let implicit = server.security == .tls
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.seconds(timeoutSeconds))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if implicit {
                            try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: Self.sniName(server.host)))
                        }
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(CRLFLineDecoder()))
                        try channel.pipeline.syncOperations.addHandler(LineCollector(queue: lines))
                    }
                }
                .connect(host: server.host, port: server.port).get()
        } catch {
            throw SMTPError(step: .connect, reply: nil, detail: "cannot connect to \(server.host):\(server.port): \(error)")
        }
        let connection = SMTPConnection(channel: channel, lines: lines, timeout: .seconds(timeoutSeconds))
        do {
            let greeting = try await connection.reply()
            guard greeting.code == 220 else { throw SMTPError(step: .greeting, reply: greeting, detail: "") }
            try await connection.ehlo(heloName)
            if server.security == .starttls {
                guard connection.capabilities.contains("STARTTLS") else {
                    throw SMTPError(step: .starttls, reply: nil, detail: "the server does not offer STARTTLS; use security \"tls\" or fix the server")
                }
                let ready = try await connection.command("STARTTLS")
                guard ready.code == 220 else { throw SMTPError(step: .starttls, reply: ready, detail: "") }
                try await channel.eventLoop.submit {
                    try channel.pipeline.syncOperations.addHandler(
                        try NIOSSLClientHandler(context: context, serverHostname: Self.sniName(server.host)), position: .first)
                }.get()
                // Everything learned before TLS is forgotten (RFC 3207 §4.2).
                try await connection.ehlo(heloName)
            }
            if let username = server.username, let password = server.password {
                guard server.security != .none else {
                    throw SMTPError(step: .auth, reply: nil, detail: "credentials are only sent over TLS")
                }
                try await connection.authenticate(username: username, password: password)
            }
        } catch {
            try? await channel.close()
            throw error
        }
        return connection
    }

    /// Sends one message: MAIL FROM (the envelope sender, a bounce address), RCPT TO, DATA with
    /// the message dot-stuffed. Throws `SMTPError` with the step and reply on any refusal.
    public func send(from envelopeSender: String, to recipient: String, message: String) async throws -> SMTPReply {
        let mail = try await command("MAIL FROM:<\(envelopeSender)>" + (capabilities.contains("8BITMIME") ? " BODY=8BITMIME" : ""))
        guard mail.code == 250 else { throw SMTPError(step: .mail, reply: mail, detail: "") }
        let rcpt = try await command("RCPT TO:<\(recipient)>")
        guard rcpt.code == 250 || rcpt.code == 251 else { throw SMTPError(step: .rcpt, reply: rcpt, detail: "") }
        let data = try await command("DATA")
        guard data.code == 354 else { throw SMTPError(step: .data, reply: data, detail: "") }
        try await write(Self.dotStuffed(message) + ".\r\n")
        let accepted = try await reply()
        guard accepted.code == 250 else { throw SMTPError(step: .data, reply: accepted, detail: "") }
        return accepted
    }

    /// Clears the transaction so the connection can carry the next message.
    public func reset() async throws {
        let reply = try await command("RSET")
        guard reply.code == 250 else { throw SMTPError(step: .rset, reply: reply, detail: "") }
    }

    /// QUIT and close.
    public func close() async {
        _ = try? await command("QUIT")
        try? await channel.close()
    }

    /// Whether the connection can still be used.
    public var isActive: Bool { channel.isActive }

    // MARK: Protocol

    private func ehlo(_ name: String) async throws {
        let reply = try await command("EHLO \(name)")
        guard reply.code == 250 else { throw SMTPError(step: .ehlo, reply: reply, detail: "") }
        capabilities = reply.lines.dropFirst().map { $0.uppercased() }
    }

    private func authenticate(username: String, password: String) async throws {
        let offered = capabilities.first { $0.hasPrefix("AUTH") }?.split(separator: " ").dropFirst().map(String.init) ?? []
        if offered.contains("PLAIN") || offered.isEmpty {
            let token = Data(([0] + Array(username.utf8) + [0] + Array(password.utf8))).base64EncodedString()
            let reply = try await command("AUTH PLAIN \(token)")
            guard reply.code == 235 else { throw SMTPError(step: .auth, reply: reply, detail: "") }
        } else if offered.contains("LOGIN") {
            var reply = try await command("AUTH LOGIN")
            guard reply.code == 334 else { throw SMTPError(step: .auth, reply: reply, detail: "") }
            reply = try await command(Data(username.utf8).base64EncodedString())
            guard reply.code == 334 else { throw SMTPError(step: .auth, reply: reply, detail: "") }
            reply = try await command(Data(password.utf8).base64EncodedString())
            guard reply.code == 235 else { throw SMTPError(step: .auth, reply: reply, detail: "") }
        } else {
            throw SMTPError(step: .auth, reply: nil, detail: "the server offers AUTH \(offered.joined(separator: " ")); Beckon speaks PLAIN and LOGIN")
        }
    }

    private func command(_ line: String) async throws -> SMTPReply {
        try await write(line + "\r\n")
        return try await reply()
    }

    /// Queues `text`; a write that fails (TLS refused, connection gone) shows as the reply that
    /// never comes (closed, or the timeout), so nothing waits on a write that cannot finish.
    private func write(_ text: String) async throws {
        guard channel.isActive else { throw SMTPError(step: .data, reply: nil, detail: "the connection is closed") }
        channel.writeAndFlush(channel.allocator.buffer(string: text), promise: nil)
    }

    /// Reads lines until the last line of a reply (`NNN text`; continuation lines are `NNN-text`).
    private func reply() async throws -> SMTPReply {
        var texts: [String] = []
        while true {
            guard let line = try await lines.next(timeout: timeout, eventLoop: channel.eventLoop) else {
                throw SMTPError(step: .data, reply: nil, detail: "the server closed the connection")
            }
            let bytes = Array(line.utf8)
            guard bytes.count >= 3, let code = Int(String(line.prefix(3))) else {
                throw SMTPError(step: .data, reply: nil, detail: "the server sent '\(line.prefix(80))', not an SMTP reply")
            }
            texts.append(bytes.count > 4 ? String(line.dropFirst(4)) : "")
            if bytes.count == 3 || bytes[3] == UInt8(ascii: " ") { return SMTPReply(code: code, lines: texts) }
        }
    }

    /// Line ends made CRLF; a line starting with "." gets another; ends with CRLF (RFC 5321 §4.5.2).
    static func dotStuffed(_ message: String) -> String {
        let normalized = message.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        var lines = normalized.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasPrefix(".") ? "." + $0 : String($0) }
        if lines.last == "" { lines.removeLast() }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// SNI is a host name, never an IP address.
    static func sniName(_ host: String) -> String? {
        host.allSatisfy { $0.isNumber || $0 == "." || $0 == ":" } ? nil : host
    }
}

/// Splits the byte stream into CRLF-terminated lines (without the CRLF).
struct CRLFLineDecoder: ByteToMessageDecoder {
    typealias InboundOut = String

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let index = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > 8_192 { throw SMTPError(step: .data, reply: nil, detail: "a reply line over 8 KB") }
            return .needMoreData
        }
        let length = index - buffer.readerIndex + 1
        var line = buffer.readString(length: length) ?? ""
        line.removeLast()
        if line.hasSuffix("\r") { line.removeLast() }
        context.fireChannelRead(wrapInboundOut(line))
        return .continue
    }
}

/// Hands decoded lines to the session.
final class LineCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = String
    let queue: LineQueue

    init(queue: LineQueue) { self.queue = queue }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        queue.push(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        queue.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        queue.finish()
        context.close(promise: nil)
    }
}

/// Lines received and not yet read, and who waits for the next one.
final class LineQueue: @unchecked Sendable {
    private let lock = NIOLock()
    private var lines: [String] = []
    private var finished = false
    private var waiter: CheckedContinuation<String?, Never>?

    func push(_ line: String) {
        let resume: CheckedContinuation<String?, Never>? = lock.withLock {
            if let waiter {
                self.waiter = nil
                return waiter
            }
            lines.append(line)
            return nil
        }
        resume?.resume(returning: line)
    }

    func finish() {
        let resume: CheckedContinuation<String?, Never>? = lock.withLock {
            finished = true
            let waiter = self.waiter
            self.waiter = nil
            return waiter
        }
        resume?.resume(returning: nil)
    }

    /// The next line, nil when the connection closed; throws after `timeout`.
    func next(timeout: TimeAmount, eventLoop: any EventLoop) async throws -> String? {
        let timer = eventLoop.scheduleTask(in: timeout) { self.finish() }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            let ready: (String?, Bool) = lock.withLock {
                if !lines.isEmpty { return (lines.removeFirst(), true) }
                if finished { return (nil, true) }
                waiter = continuation
                return (nil, false)
            }
            if ready.1 { continuation.resume(returning: ready.0) }
        }
    }
}
