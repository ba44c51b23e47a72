import Foundation

/// A `{% connected_content %}` call as rendered: what the fetcher is asked to do.
public struct ConnectedContentRequest: Sendable, Hashable {
    public var url: String
    /// `GET` or `POST`.
    public var method: String
    /// Header names and values in the order written (Liquid already rendered).
    public var headers: [[String]]
    public var body: String?
    /// `:content_type`: sets both Content-Type and Accept.
    public var contentType: String?
    /// `:basic_auth NAME`: a credential the fetcher looks up in its store.
    public var basicAuthCredential: String?
    /// `:cache_max_age SECONDS`.
    public var cacheMaxAge: Int?
    public var noCache: Bool
    public var retry: Bool

    public init(
        url: String, method: String = "GET", headers: [[String]] = [], body: String? = nil, contentType: String? = nil,
        basicAuthCredential: String? = nil, cacheMaxAge: Int? = nil, noCache: Bool = false, retry: Bool = false
    ) {
        self.url = url
        self.method = method
        self.headers = headers
        self.body = body
        self.contentType = contentType
        self.basicAuthCredential = basicAuthCredential
        self.cacheMaxAge = cacheMaxAge
        self.noCache = noCache
        self.retry = retry
    }
}

/// What the remote answered; the body is parsed as JSON once, so cached responses are not
/// parsed again by every render that uses them.
public struct ConnectedContentResponse: Sendable, Hashable {
    public let statusCode: Int
    public let body: [UInt8]
    public let contentType: String?
    /// The body as JSON, or `nil` when it is not JSON.
    public let json: LiquidValue?
    /// What `:save` assigns (Braze's rules): a 2xx JSON object with `__http_status_code__`
    /// added, other 2xx JSON as is, `nil` for anything else.
    public let savedValue: LiquidValue

    public init(statusCode: Int, body: [UInt8], contentType: String? = nil) {
        self.statusCode = statusCode
        self.body = body
        self.contentType = contentType
        let json = try? LiquidValue(json: Data(body))
        self.json = json
        switch json {
        case .object(var object)? where (200..<300).contains(statusCode):
            object["__http_status_code__"] = .int(statusCode)
            savedValue = .object(object)
        case let value? where (200..<300).contains(statusCode):
            savedValue = value
        default:
            savedValue = .nil
        }
    }
}

/// Performs Connected Content calls; Beckon's HTTP implementation adds caching, limits and network safety.
public protocol ConnectedContentFetcher: Sendable {
    func fetch(_ request: ConnectedContentRequest) async throws -> ConnectedContentResponse
}

/// The default fetcher: refuses every call, so a template never reaches the network by accident.
public struct RefusingConnectedContentFetcher: ConnectedContentFetcher {
    public init() {}

    public func fetch(_ request: ConnectedContentRequest) async throws -> ConnectedContentResponse {
        throw ConnectedContentRefused(url: request.url)
    }
}

/// The call was refused because no network fetcher is configured.
public struct ConnectedContentRefused: Error, Sendable, CustomStringConvertible {
    public let url: String
    public var description: String { "connected_content is disabled here (no network access): \(url)" }
}

/// A parsed `{% connected_content URL :option … %}` tag; its URL, headers and body are Liquid.
struct ConnectedContentCall: Sendable {
    let url: Template
    let method: String
    let headers: [(String, Template)]
    let body: Template?
    let contentType: String?
    let basicAuth: String?
    let cacheMaxAge: Int?
    let noCache: Bool
    let retry: Bool
    let save: String?
    let line: Int

    static let options: Set<String> = ["method", "headers", "body", "content_type", "basic_auth", "cache_max_age", "cache", "no_cache", "retry", "save"]

    static func parse(_ markup: String, line: Int) throws -> ConnectedContentCall {
        let text = markup.trimmingSpaces
        var pieces: [(String, String)] = []
        var current = ("url", "")
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if character == ":", index == text.startIndex || text[text.index(before: index)].isWhitespace {
                let nameStart = text.index(after: index)
                let nameEnd = text[nameStart...].firstIndex { !($0.isLetter || $0 == "_") } ?? text.endIndex
                let name = String(text[nameStart..<nameEnd])
                if options.contains(name) {
                    pieces.append((current.0, current.1.trimmingSpaces))
                    current = (name, "")
                    index = nameEnd
                    continue
                }
            }
            current.1.append(character)
            index = text.index(after: index)
        }
        pieces.append((current.0, current.1.trimmingSpaces))
        guard let url = pieces.first?.1, !url.isEmpty else {
            throw LiquidSyntaxError("connected_content needs a URL", line: line, column: 1)
        }
        var method = "GET"
        var headers: [(String, Template)] = []
        var body: Template?
        var contentType: String?
        var basicAuth: String?
        var cacheMaxAge: Int?
        var noCache = false
        var retry = false
        var save: String?
        func template(_ source: String) throws -> Template {
            do { return try Template.parse(source) } catch let error as LiquidSyntaxError {
                throw LiquidSyntaxError("in connected_content: \(error.message)", line: line, column: 1)
            }
        }
        for (name, value) in pieces.dropFirst() {
            switch name {
            case "method":
                method = value.uppercased()
                guard method == "GET" || method == "POST" else {
                    throw LiquidSyntaxError("connected_content :method must be get or post, got '\(value)'", line: line, column: 1)
                }
            case "headers":
                headers = try parseHeaders(value, line: line).map { ($0.0, try template($0.1)) }
            case "body": body = try template(value)
            case "content_type": contentType = value
            case "basic_auth": basicAuth = value
            case "cache_max_age", "cache":
                guard let seconds = Int(value), seconds >= 0 else {
                    throw LiquidSyntaxError("connected_content :cache_max_age must be a number of seconds, got '\(value)'", line: line, column: 1)
                }
                cacheMaxAge = seconds
            case "no_cache": noCache = true
            case "retry": retry = true
            case "save":
                guard !value.isEmpty, value.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                    throw LiquidSyntaxError("connected_content :save needs a variable name", line: line, column: 1)
                }
                save = value
            default: break
            }
        }
        return ConnectedContentCall(
            url: try template(url), method: method, headers: headers, body: body, contentType: contentType, basicAuth: basicAuth,
            cacheMaxAge: cacheMaxAge, noCache: noCache, retry: retry, save: save, line: line)
    }

    /// `{ "Name": "value {{liquid}}", … }`: pairs of quoted strings (Liquid kept for rendering).
    static func parseHeaders(_ text: String, line: Int) throws -> [(String, String)] {
        let trimmed = text.trimmingSpaces
        guard trimmed.hasPrefix("{"), trimmed.hasSuffix("}") else {
            throw LiquidSyntaxError("connected_content :headers must be a JSON object", line: line, column: 1)
        }
        var strings: [String] = []
        var index = trimmed.index(after: trimmed.startIndex)
        while index < trimmed.endIndex {
            if trimmed[index] == "\"" {
                var value = ""
                var cursor = trimmed.index(after: index)
                while cursor < trimmed.endIndex, trimmed[cursor] != "\"" {
                    if trimmed[cursor] == "\\", trimmed.index(after: cursor) < trimmed.endIndex { cursor = trimmed.index(after: cursor) }
                    value.append(trimmed[cursor])
                    cursor = trimmed.index(after: cursor)
                }
                strings.append(value)
                index = cursor < trimmed.endIndex ? trimmed.index(after: cursor) : cursor
            } else {
                index = trimmed.index(after: index)
            }
        }
        guard strings.count % 2 == 0 else {
            throw LiquidSyntaxError("connected_content :headers must pair each name with a value", line: line, column: 1)
        }
        return stride(from: 0, to: strings.count, by: 2).map { (strings[$0], strings[$0 + 1]) }
    }
}

extension Renderer {
    /// Renders a sub-template (URL, header, body) in the current scopes and returns its text.
    func renderInline(_ template: Template) async throws -> String {
        let saved = output
        output = ""
        try await render(template.nodes)
        let text = output
        output = saved
        return text
    }

    func connectedContent(_ call: ConnectedContentCall) async throws {
        var headers: [[String]] = []
        for (name, value) in call.headers { headers.append([name, try await renderInline(value)]) }
        var body: String?
        if let template = call.body { body = try await renderInline(template) }
        if let raw = body, call.contentType?.lowercased().hasPrefix("application/json") == true, !raw.hasPrefix("{"), !raw.hasPrefix("["), raw.contains("=") {
            var object = LiquidObject()
            for pair in raw.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                object[String(parts[0])] = .string(parts.count > 1 ? String(parts[1]) : "")
            }
            body = BrazeFilters.json(.object(object))
        }
        let request = ConnectedContentRequest(
            url: try await renderInline(call.url).trimmingSpaces, method: call.method, headers: headers, body: body,
            contentType: call.contentType, basicAuthCredential: call.basicAuth, cacheMaxAge: call.cacheMaxAge, noCache: call.noCache,
            retry: call.retry)
        let variable = call.save ?? "connected"
        let response: ConnectedContentResponse
        do {
            response = try await environment.fetcher.fetch(request)
        } catch let error as MessageAborted {
            throw error
        } catch {
            assign(variable, .nil)
            return
        }
        assign(variable, response.savedValue)
        if response.json == nil, (200..<300).contains(response.statusCode), call.save == nil {
            try write(String(decoding: response.body, as: UTF8.self))
        }
    }
}
