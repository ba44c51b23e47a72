import BeckonAPI
import BeckonCore
import BeckonTestSupport
import Foundation
import Hummingbird
import Testing

/// `POST /liquid/preview` through the router.
@Suite("Liquid preview")
struct LiquidPreviewTests {
    @Test("renders for a stored user, an inline user, aborts and syntax errors", arguments: TestDatabases.all())
    func preview(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            _ = try await api.post("/users/track", #"{"attributes": [{"external_id": "u1", "first_name": "지민", "last_view_category": "A0030"}]}"#)
            let stored = try await api.post("/liquid/preview", """
                {"template": "{{${first_name}}}님, {{custom_attribute.${last_view_category} | default: 'A0010'}} 신상품! {{event_properties.${price} | number_with_delimiter}}원",
                 "external_id": "u1", "context": {"event_properties": {"price": 129000}}}
                """)
            #expect(stored.status == .ok)
            #expect(stored.json["output"] == .string("지민님, A0030 신상품! 129,000원"))
            let inline = try await api.post("/liquid/preview", #"{"template": "{{${first_name} | default: '고객'}}", "user": {}}"#)
            #expect(inline.json["output"] == .string("고객"))
            let aborted = try await api.post("/liquid/preview", #"{"template": "{% abort_message('품절') %}", "user": {}}"#)
            #expect(aborted.json["aborted"] == .bool(true))
            #expect(aborted.json["abort_reason"] == .string("품절"))
            let broken = try await api.post("/liquid/preview", "{\"template\": \"line\\n{% if x %}\"}")
            #expect(broken.status == .badRequest)
            #expect(broken.json["errors"]?.arrayValue?.first?["line"] == .int(2))
            let missing = try await api.post("/liquid/preview", #"{"template": "x", "external_id": "nobody"}"#)
            #expect(missing.status == .notFound)
        }
    }
}
