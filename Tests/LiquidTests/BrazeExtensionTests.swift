import Foundation
import Liquid
import Testing

/// A fetcher answering from a table, recording what it was asked.
final class TableFetcher: ConnectedContentFetcher, @unchecked Sendable {
    let answers: [String: ConnectedContentResponse]
    private let lock = NSLock()
    private var seen: [ConnectedContentRequest] = []

    init(_ answers: [String: ConnectedContentResponse]) { self.answers = answers }

    var requests: [ConnectedContentRequest] { lock.withLock { seen } }

    func fetch(_ request: ConnectedContentRequest) async throws -> ConnectedContentResponse {
        lock.withLock { seen.append(request) }
        guard let answer = answers[request.url] else { throw URLError(.cannotConnectToHost) }
        return answer
    }
}

/// Braze's Liquid extensions, with Korean text.
@Suite("Braze Liquid extensions")
struct BrazeExtensionTests {
    static let user: String = """
        {"user": {"first_name": "지민", "last_name": "김", "email": "jimin@example.kr", "external_id": "u-1", "phone": "+821012345678",
                  "home_city": "서울", "country": "KR", "language": "ko", "time_zone": "Asia/Seoul", "dob": "1995-03-01", "gender": "F",
                  "custom_attributes": {"last_view_category": "A0010", "tier": "gold", "address": {"city": "부산", "zip": "48058"},
                                        "pets": [{"name": "나비", "type": "cat"}], "points": 1234567}},
         "event_properties": {"product_name": "캐시미어 코트", "price": 129000},
         "canvas_entry_properties": {"coupon": "WELCOME10"},
         "api_trigger_properties": {"store": "강남점"},
         "campaign": {"name": "봄 세일", "api_id": "cmp-1", "dispatch_id": "d-9"}}
        """

    static func render(
        _ source: String, data: String = user, blocks: [String: String] = [:], fetcher: (any ConnectedContentFetcher)? = nil,
        strict: Bool = false
    ) async throws -> String {
        let template = try Template.parse(source, options: Template.ParseOptions(strict: strict))
        var environment = RenderEnvironment()
        environment.contentBlocks = blocks
        if let fetcher { environment.fetcher = fetcher }
        environment.now = Date(timeIntervalSince1970: 1_751_295_600)
        return try await template.render(BrazeContext.make(from: try LiquidValue(json: Data(data.utf8))), environment: environment)
    }

    @Test("standard attributes are written ${name}", arguments: [
        ("{{${first_name}}}님", "지민님"), ("{{ ${last_name} }}", "김"), ("{{${email_address}}}", "jimin@example.kr"),
        ("{{${user_id}}}", "u-1"), ("{{${city}}}", "서울"), ("{{${language}}}/{{${time_zone}}}", "ko/Asia/Seoul"),
        ("{{${phone_number}}}", "+821012345678"), ("{{${date_of_birth}}}", "1995-03-01"), ("{{${most_recent_locale} | default: 'ko_KR'}}", "ko_KR"),
    ])
    func standardAttributes(template: String, expected: String) async throws {
        #expect(try await Self.render(template) == expected)
    }

    @Test("custom attributes, nested paths and the other personalization objects")
    func personalizationObjects() async throws {
        #expect(try await Self.render("{{custom_attribute.${tier}}}") == "gold")
        #expect(try await Self.render("{{custom_attribute.${address}.city}}") == "부산")
        #expect(try await Self.render("{{custom_attribute.${pets}[0].name}}") == "나비")
        #expect(try await Self.render("{{event_properties.${product_name}}} {{event_properties.${price} | number_with_delimiter}}원") == "캐시미어 코트 129,000원")
        #expect(try await Self.render("{{canvas_entry_properties.${coupon}}}") == "WELCOME10")
        #expect(try await Self.render("{{api_trigger_properties.${store}}}") == "강남점")
        #expect(try await Self.render("{{campaign.${name}}}/{{campaign.${api_id}}}") == "봄 세일/cmp-1")
        #expect(try await Self.render("[{{custom_attribute.${missing}}}]") == "[]")
    }

    @Test("{{ }} written inside tags stands for its expression, filters included")
    func nestedOutputInTags() async throws {
        #expect(try await Self.render("{% assign code = {{custom_attribute.${last_view_category} | default: 'A0020'}} %}{{code}}") == "A0010")
        #expect(try await Self.render("{% assign code = {{custom_attribute.${nothing} | default: 'A0020'}} %}{{code}}") == "A0020")
        #expect(try await Self.render("{% if {{custom_attribute.${tier}}} == 'gold' %}VIP{% endif %}") == "VIP")
    }

    @Test("content blocks render their own Liquid in the message's context")
    func contentBlocks() async throws {
        let text = try await Self.render("{{content_blocks.${greeting}}} 오늘의 추천", blocks: ["greeting": "{{${first_name}}}님, 안녕하세요!"])
        #expect(text == "지민님, 안녕하세요! 오늘의 추천")
    }

    @Test("abort_message stops the message and carries its reason")
    func abort() async throws {
        await #expect(throws: MessageAborted(reason: "재고 없음")) {
            _ = try await Self.render("앞{% abort_message('재고 없음') %}뒤")
        }
        await #expect(throws: MessageAborted(reason: nil)) {
            _ = try await Self.render("{% if true %}{% abort_message() %}{% endif %}")
        }
    }

    @Test("Braze filters", arguments: [
        ("{{ 1234567 | number_with_delimiter }}", "1,234,567"), ("{{ -1234567.5 | number_with_delimiter }}", "-1,234,567.5"),
        ("{{ 145 | money }}", "145.00"), ("{{ 'he said \"hi\"' | json_escape }}", "he said \\\"hi\\\""),
        ("{{ 'hey<&>hi' | url_param_escape }}", "hey%3C%26%3Ehi"), ("{{ 'hey<>hi' | url_escape }}", "hey%3C%3Ehi"),
        ("{{ 'google search' | url_encode }}", "google+search"), ("{{ 'abc' | md5 }}", "900150983cd24fb0d6963f7d28e17f72"),
        ("{{ 'abc' | sha1 }}", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("{{ 'abc' | sha2 }}", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("{{ 'msg' | hmac_sha256_hex: 'key' }}", "2d93cbc1be167bcb1637a4a23cbff01a7878f0c50ee833954ea5221bb1b8c628"),
        ("{% capture j %}{\"a\": {\"b\": [1, 2]}}{% endcapture %}{{ j | json_parse | as_json_string }}", "{\"a\":{\"b\":[1,2]}}"),
        ("{% assign k = 'tier' %}{{ custom_attribute | property_accessor: k }}", "gold"),
    ])
    func filters(template: String, expected: String) async throws {
        #expect(try await Self.render(template) == expected)
    }

    @Test("connected_content: JSON objects are saved with the status, arrays too, text is printed, failures leave nil")
    func connectedContent() async throws {
        let fetcher = TableFetcher([
            "https://api.example/obj?u=u-1": ConnectedContentResponse(statusCode: 200, body: Array(#"{"name": "코트"}"#.utf8)),
            "https://api.example/list": ConnectedContentResponse(statusCode: 200, body: Array(#"[{"n": 1}, {"n": 2}]"#.utf8)),
            "https://api.example/text": ConnectedContentResponse(statusCode: 200, body: Array("안녕".utf8)),
            "https://api.example/missing": ConnectedContentResponse(statusCode: 404, body: Array(#"{"error": "no"}"#.utf8)),
        ])
        let object = try await Self.render(
            "{% connected_content https://api.example/obj?u={{${user_id}}} :save r %}{{r.name}} {{r.__http_status_code__}}", fetcher: fetcher)
        #expect(object == "코트 200")
        #expect(try await Self.render("{% connected_content https://api.example/list :save r %}{{r[1].n}} {{r.__http_status_code__}}", fetcher: fetcher) == "2 ")
        #expect(try await Self.render("[{% connected_content https://api.example/text %}]", fetcher: fetcher) == "[안녕]")
        #expect(try await Self.render("{% connected_content https://api.example/missing :save r %}[{{r}}]", fetcher: fetcher) == "[]")
        #expect(try await Self.render("{% connected_content https://down.example :save r %}{% if r == nil %}down{% endif %}", fetcher: fetcher) == "down")
        _ = try await Self.render("""
            {% connected_content https://api.example/obj?u={{${user_id}}} :method post :headers {"X-Key": "k-{{${user_id}}}"} :body a=1&b={{${first_name}}} :content_type application/json :basic_auth shop :cache_max_age 900 :retry :save r %}
            """, fetcher: fetcher)
        let request = try #require(fetcher.requests.last)
        #expect(request.method == "POST")
        #expect(request.headers == [["X-Key", "k-u-1"]])
        #expect(request.body == #"{"a":"1","b":"지민"}"#)
        #expect(request.basicAuthCredential == "shop")
        #expect(request.cacheMaxAge == 900)
        #expect(request.retry)
    }

    @Test("the default fetcher refuses the network")
    func refusingFetcher() async throws {
        #expect(try await Self.render("{% connected_content https://api.example/obj :save r %}[{{r}}]") == "[]")
    }

    @Test("case study: social proof formats a segment size or aborts under the threshold")
    func socialProof() async throws {
        let template = """
            {% connected_content https://beckon.local/segments/data_series?segment_id=seg_1&length=1 :headers {"Authorization": "Bearer key"} :save result %}
            {%- assign viewers = result.data[0].size | default: 0 -%}
            {%- if viewers < 1000 -%}{% abort_message('viewers below threshold') %}{%- endif -%}
            지난 24시간 동안 {{ viewers | number_with_delimiter }}명이 {{custom_attribute.${last_view_category} | default: '인기'}} 브랜드 베스트를 봤어요!
            """
        let popular = TableFetcher(["https://beckon.local/segments/data_series?segment_id=seg_1&length=1": ConnectedContentResponse(
            statusCode: 200, body: Array(#"{"message": "success", "data": [{"time": "2025-06-30", "size": 12345}]}"#.utf8))])
        #expect(try await Self.render(template, fetcher: popular) == "지난 24시간 동안 12,345명이 A0010 브랜드 베스트를 봤어요!")
        let quiet = TableFetcher(["https://beckon.local/segments/data_series?segment_id=seg_1&length=1": ConnectedContentResponse(
            statusCode: 200, body: Array(#"{"message": "success", "data": [{"time": "2025-06-30", "size": 12}]}"#.utf8))])
        await #expect(throws: MessageAborted(reason: "viewers below threshold")) {
            _ = try await Self.render(template, fetcher: quiet)
        }
    }

    @Test("case study: best seller per category builds a KakaoTalk JSON body, with and without the attribute")
    func bestSeller() async throws {
        let template = """
            {%- assign category = {{custom_attribute.${last_view_category} | default: 'A0010'}} -%}
            {%- connected_content https://shop.example/best?category={{category}}&user={{${user_id}}} :cache_max_age 3600 :save best -%}
            {%- assign project = best.projects[0] -%}
            {%- assign body = '{"template_code": "best_seller", "receiver": "' | append: ${phone_number} | append: '", "name": "' -%}
            {%- assign body = body | append: ${first_name} | default: '서포터' -%}
            {%- assign greeting = ${first_name} | default: '서포터' -%}
            {"template_code":"best_seller","receiver":"{{${phone_number} | json_escape}}","message":"{{greeting | json_escape}}님, 지금 가장 인기 있는 {{project.title | json_escape}}을 확인해 보세요!","link":"https://shop.example/p/{{project.id}}"}
            """
        let fetcher = TableFetcher([
            "https://shop.example/best?category=A0010&user=u-1": ConnectedContentResponse(
                statusCode: 200, body: Array(#"{"projects": [{"id": 77, "title": "캐시미어 \"울\" 코트"}]}"#.utf8)),
            "https://shop.example/best?category=A0010&user=u-2": ConnectedContentResponse(
                statusCode: 200, body: Array(#"{"projects": [{"id": 5, "title": "데일리 니트"}]}"#.utf8)),
        ])
        let withAttribute = try await Self.render(template, fetcher: fetcher)
        #expect(withAttribute == #"{"template_code":"best_seller","receiver":"+821012345678","message":"지민님, 지금 가장 인기 있는 캐시미어 \"울\" 코트을 확인해 보세요!","link":"https://shop.example/p/77"}"#)
        let anonymous = #"{"user": {"external_id": "u-2", "phone": "+821099998888", "custom_attributes": {}}}"#
        let withoutAttribute = try await Self.render(template, data: anonymous, fetcher: fetcher)
        #expect(withoutAttribute == #"{"template_code":"best_seller","receiver":"+821099998888","message":"서포터님, 지금 가장 인기 있는 데일리 니트을 확인해 보세요!","link":"https://shop.example/p/5"}"#)
        #expect(try JSONSerialization.jsonObject(with: Data(withoutAttribute.utf8)) is [String: Any], "the body is valid JSON")
    }

    @Test("syntax errors name the line and what is missing")
    func syntaxErrors() throws {
        #expect(throws: LiquidSyntaxError("'endif' expected to close 'if' opened on line 3", line: 3, column: 1)) {
            _ = try Template.parse("첫 줄\n둘째 줄\n{% if true %}\n열린 채로")
        }
        #expect {
            _ = try Template.parse("\n{% bogus %}")
        } throws: { error in
            (error as? LiquidSyntaxError).map { $0.line == 2 && $0.message.contains("Unknown tag 'bogus'") } ?? false
        }
    }

    @Test("Korean text counts characters as Ruby does")
    func koreanText() async throws {
        #expect(try await Self.render("{{ '안녕하세요 반갑습니다' | truncate: 7 }}") == "안녕하세...")
        #expect(try await Self.render("{{ '안녕하세요' | size }}") == "5")
        #expect(try await Self.render("{{ '안녕하세요' | slice: 1, 2 }}") == "녕하")
        #expect(try await Self.render("{{ '👍🏽' | size }}") == "2")
    }
}
