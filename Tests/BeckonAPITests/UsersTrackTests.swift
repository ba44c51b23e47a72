import BeckonAPI
import BeckonCore
import BeckonStorage
import BeckonTestSupport
import Foundation
import Hummingbird
import Testing

/// `/users/track` through the router: Braze's shapes, partial success, and every kind of bad input.
@Suite("POST /users/track")
struct UsersTrackTests {
    @Test("a valid request answers 201 with the counters of the arrays sent", arguments: TestDatabases.all())
    func success(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            let reply = try await api.post("/users/track", """
                {"attributes": [{"external_id": "u1", "first_name": "지민", "email": "jimin@example.kr"}],
                 "events": [{"external_id": "u1", "name": "product_viewed", "time": "2025-06-30T10:00:00Z",
                             "properties": {"brand": "Jucy Judy", "item": {"sizes": ["S", "M"]}}}]}
                """)
            #expect(reply.status == .created)
            #expect(reply.json == .object(["message": .string("success"), "attributes_processed": .int(1), "events_processed": .int(1)]))
            let user = try #require(try await api.export("u1"))
            #expect(user["first_name"] == .string("지민"))
            #expect(user["custom_events"]?.arrayValue?.count == 1)
        }
    }

    @Test("email and phone in an object with external_id are attributes, not identifiers", arguments: TestDatabases.all())
    func emailIsAnAttributeBesideExternalID(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            _ = try await api.post("/users/track", #"{"attributes": [{"external_id": "u1", "email": "a@example.kr", "phone": "010-1234-5678"}]}"#)
            _ = try await api.post("/users/track", #"{"attributes": [{"external_id": "u2", "email": "a@example.kr"}]}"#)
            let first = try #require(try await api.export("u1"))
            let second = try #require(try await api.export("u2"))
            #expect(first["phone"] == .string("+821012345678"))
            #expect(second["email"] == .string("a@example.kr"), "a second profile with the same email is its own user")
        }
    }

    @Test("invalid objects are reported by array and index; valid siblings are applied", arguments: TestDatabases.all())
    func partialSuccess(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            let long = String(repeating: "가", count: 256)
            let reply = try await api.post("/users/track", """
                {"attributes": [
                   {"external_id": "ok", "first_name": "좋음"},
                   {"first_name": "no identifier"},
                   {"external_id": "bad-type", "first_name": 5, "last_name": "half"},
                   {"external_id": "bad-sub", "email_subscribe": "yes"},
                   {"external_id": "bad-gender", "gender": "X"},
                   {"external_id": "bad-dob", "dob": "1990-13-45"},
                   {"external_id": "bad-tz", "time_zone": "Mars/Olympus"},
                   {"external_id": "long", "nickname": "\(long)"},
                   {"external_id": "big-array", "tags": [\((0..<101).map { "\"t\($0)\"" }.joined(separator: ","))]},
                   {"external_id": "inf", "score": 1e999}],
                 "events": [
                   {"external_id": "ok", "name": "fine", "time": "2025-06-30T10:00:00Z"},
                   {"external_id": "ok", "name": "", "time": "2025-06-30T10:00:00Z"},
                   {"external_id": "ok", "name": "\(long)", "time": "2025-06-30T10:00:00Z"},
                   {"external_id": "ok", "name": "bad-time", "time": "yesterday"},
                   {"external_id": "ok", "name": "no-time"},
                   {"external_id": "ok", "name": "bad-prop", "time": "2025-06-30T10:00:00Z", "properties": {"$reserved": 1}},
                   {"external_id": "ok", "name": "long-prop", "time": "2025-06-30T10:00:00Z", "properties": {"x": "\(long)"}}],
                 "purchases": [
                   {"external_id": "ok", "product_id": "p", "currency": "KRW", "price": 1000, "quantity": 2, "time": "2025-06-30T10:00:00Z"},
                   {"external_id": "ok", "product_id": "p", "currency": "KRW", "price": 1000, "quantity": -1, "time": "2025-06-30T10:00:00Z"},
                   {"external_id": "ok", "product_id": "p", "currency": "KRW", "price": 1000, "quantity": 1.5, "time": "2025-06-30T10:00:00Z"},
                   {"external_id": "ok", "product_id": "p", "currency": "KRW", "price": 1000, "quantity": 101, "time": "2025-06-30T10:00:00Z"},
                   {"external_id": "ok", "product_id": "p", "currency": "won", "price": 1000, "time": "2025-06-30T10:00:00Z"},
                   {"external_id": "ok", "product_id": "p", "currency": "KRW", "price": "free", "time": "2025-06-30T10:00:00Z"}]}
                """)
            #expect(reply.status == .created)
            #expect(reply.json["attributes_processed"] == .int(1))
            #expect(reply.json["events_processed"] == .int(1))
            #expect(reply.json["purchases_processed"] == .int(1))
            let errors = try #require(reply.json["errors"]?.arrayValue)
            func error(_ array: String, _ index: Int) -> String {
                errors.first { $0["input_array"] == .string(array) && $0["index"] == .int(Int64(index)) }?["type"]?.stringValue ?? "(none)"
            }
            #expect(error("attributes", 1).contains("'external_id'") && error("attributes", 1).contains("required"))
            #expect(error("attributes", 2).contains("'first_name' must be a string, got number"))
            #expect(error("attributes", 3).contains("'email_subscribe' must be one of"))
            #expect(error("attributes", 4).contains("'gender'"))
            #expect(error("attributes", 5).contains("'dob'"))
            #expect(error("attributes", 6).contains("'time_zone'"))
            #expect(error("attributes", 7).contains("'nickname' is longer than 255 characters"))
            #expect(error("attributes", 8).contains("'tags' has 101 elements"))
            #expect(error("attributes", 9).contains("'score' must be a finite number"))
            #expect(error("events", 1).contains("'name' must not be empty"))
            #expect(error("events", 2).contains("'name' is longer than 255"))
            #expect(error("events", 3).contains("'time' is not a valid time"))
            #expect(error("events", 4).contains("'time' is required"))
            #expect(error("events", 5).contains("must not start with '$'"))
            #expect(error("events", 6).contains("'properties.x' is longer than 255"))
            #expect(error("purchases", 1).contains("'quantity' must be a whole number from 1 to 100"))
            #expect(error("purchases", 2).contains("'quantity'"))
            #expect(error("purchases", 3).contains("'quantity'"))
            #expect(error("purchases", 4).contains("'currency'"))
            #expect(error("purchases", 5).contains("'price' must be a number"))
            #expect(errors.count == 20)
            #expect(try await api.export("bad-type") == nil, "a rejected object writes nothing, not even its valid fields")
            let good = try #require(try await api.export("ok"))
            #expect(good["first_name"] == .string("좋음"))
            #expect(good["custom_events"]?.arrayValue?.map { $0["name"] } == [.string("fine")])
        }
    }

    @Test("malformed JSON is a 400 naming where it broke", arguments: TestDatabases.all())
    func malformedJSON(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            let reply = try await api.post("/users/track", "{\"events\": [\n{\"name\": NaN}]}")
            #expect(reply.status == .badRequest)
            #expect(reply.json["message"] == .string("Bad Request"))
            #expect(reply.json["errors"]?.arrayValue?.first?.stringValue?.contains("line 2") == true)
        }
    }

    @Test("a wrong content type is a 415", arguments: TestDatabases.all())
    func wrongContentType(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            let reply = try await api.post("/users/track", #"{"events": []}"#, contentType: "text/plain")
            #expect(reply.status == .unsupportedMediaType)
            #expect(reply.json["errors"]?.arrayValue?.first?.stringValue?.contains("application/json") == true)
        }
    }

    @Test("a body over the size limit is a 413", arguments: TestDatabases.all())
    func bodyTooLarge(kind: TestDatabaseKind) async throws {
        var configuration = APIConfiguration()
        configuration.maxBodyBytes = 1024
        try await APIHarness.run(kind, configuration: configuration) { api in
            let padding = String(repeating: "x", count: 2000)
            let reply = try await api.post("/users/track", #"{"attributes": [{"external_id": "u1", "pad": "\#(padding)"}]}"#)
            #expect(reply.status == .contentTooLarge)
            #expect(reply.json["message"] == .string("Payload Too Large"))
            #expect(try await api.export("u1") == nil)
        }
    }

    @Test("more than 75 objects in an array is Braze's fatal 400 and writes nothing", arguments: TestDatabases.all())
    func tooManyObjects(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            let events = (0..<76).map { _ in #"{"external_id": "u1", "name": "e", "time": "2025-06-30T10:00:00Z"}"# }
            let reply = try await api.post(
                "/users/track",
                #"{"attributes": [{"external_id": "u1", "first_name": "A"}], "events": [\#(events.joined(separator: ","))]}"#)
            #expect(reply.status == .badRequest)
            #expect(reply.json["message"] == .string("Max Input Length Exceeded"))
            #expect(reply.json["errors"]?.arrayValue?.first?.stringValue?.contains("'events' has 76 objects") == true)
            #expect(try await api.export("u1") == nil)
        }
    }

    @Test("a request whose every object is invalid is a 400 listing them", arguments: TestDatabases.all())
    func allInvalid(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            let reply = try await api.post("/users/track", #"{"events": [{"name": "e", "time": "2025-06-30T10:00:00Z"}]}"#)
            #expect(reply.status == .badRequest)
            #expect(reply.json["events_processed"] == .int(0))
            #expect(reply.json["errors"]?.arrayValue?.count == 1)
        }
    }

    @Test("unknown top-level fields and wrong array types are 400s", arguments: TestDatabases.all())
    func badShape(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            let unknown = try await api.post("/users/track", #"{"event": []}"#)
            #expect(unknown.status == .badRequest)
            #expect(unknown.json["errors"]?.arrayValue?.first?.stringValue?.contains("'event' is not a field") == true)
            let wrongType = try await api.post("/users/track", #"{"events": {"name": "e"}}"#)
            #expect(wrongType.status == .badRequest)
            #expect(wrongType.json["errors"]?.arrayValue?.first?.stringValue == "'events' must be an array, got object")
        }
    }
}
