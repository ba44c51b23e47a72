import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

/// What the local test API received: hits per path and the last request's details per path.
final class ReceivedRequests: Sendable {
    private let hits = Mutex<[String: Int]>([:])

    func count(_ path: String) -> Int { hits.withLock { $0[path, default: 0] } }
    var total: Int { hits.withLock { $0.values.reduce(0, +) } }

    fileprivate func record(_ path: String) -> Int {
        hits.withLock { counts in
            counts[path, default: 0] += 1
            return counts[path, default: 0]
        }
    }
}

/// The local API Connected Content calls in tests: JSON, arrays, text, slow, oversize, errors,
/// redirects, header and body echoes, and a best-seller endpoint per category.
enum TestReceiver {
    static func router(_ received: ReceivedRequests) -> Router<BasicRequestContext> {
        let router = Router()
        @Sendable func json(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
            Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        router.get("/json") { _, _ in
            _ = received.record("/json")
            return json(#"{"name": "Jucy Judy", "items": [1, 2]}"#)
        }
        router.get("/array") { _, _ in
            _ = received.record("/array")
            return json("[1, 2, 3]")
        }
        router.get("/text") { _, _ in
            _ = received.record("/text")
            return Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "hello world")))
        }
        router.get("/slow") { _, _ in
            _ = received.record("/slow")
            try await Task.sleep(for: .seconds(3))
            return json(#"{"late": true}"#)
        }
        router.get("/big") { _, _ in
            _ = received.record("/big")
            return json("[" + String(repeating: "\"0123456789\",", count: 200_000) + "0]")
        }
        router.get("/error") { _, _ in
            _ = received.record("/error")
            return json(#"{"error": "boom"}"#, status: .internalServerError)
        }
        router.get("/flaky") { _, _ in
            let hit = received.record("/flaky")
            return hit < 3 ? json(#"{"error": "busy"}"#, status: .serviceUnavailable) : json(#"{"ok": true}"#)
        }
        router.get("/missing") { _, _ in
            _ = received.record("/missing")
            return Response(status: .notFound)
        }
        router.get("/redirect") { _, _ in
            _ = received.record("/redirect")
            return Response(status: .found, headers: [.location: "/json"])
        }
        router.get("/headers") { request, _ in
            _ = received.record("/headers")
            let object: [String: String] = [
                "authorization": request.headers[.authorization] ?? "", "accept": request.headers[.accept] ?? "",
                "content_type": request.headers[.contentType] ?? "", "user_agent": request.headers[.userAgent] ?? "",
                "x_shop": request.headers[HTTPField.Name("X-Shop")!] ?? "", "query": request.uri.query ?? "",
                "q": request.uri.queryParameters["q"].map(String.init) ?? "",
            ]
            return json(String(decoding: try JSONEncoder().encode(object), as: UTF8.self))
        }
        router.post("/echo") { request, _ in
            _ = received.record("/echo")
            let body = try await request.body.collect(upTo: 1 << 20)
            let object = ["body": String(buffer: body), "content_type": request.headers[.contentType] ?? ""]
            return json(String(decoding: try JSONEncoder().encode(object), as: UTF8.self))
        }
        router.get("/best") { request, _ in
            let category = request.uri.queryParameters["category"].map(String.init) ?? ""
            _ = received.record("/best")
            _ = received.record("/best/\(category)")
            try await Task.sleep(for: .milliseconds(100))
            if category == "empty" { return json(#"{"projects": []}"#) }
            return json(#"""
                {"category": "\#(category)", "projects": [{"title": "Best of \#(category)", "url": "https://shop.example/p/\#(category)-1",
                 "category_name": "\#(category == "all" ? "전체" : category)"}, {"title": "Second", "url": "https://shop.example/p/2"}]}
                """#)
        }
        return router
    }
}
