import BeckonAPI
import BeckonCore
import BeckonMessaging
import BeckonStorage
import BeckonTestSupport
import Foundation
import HTTPTypes
import Testing
import _CryptoExtras

@Suite("Email sending settings and DNS records")
struct EmailSettingsTests {
    static let rsaPEM = (try? _RSA.Signing.PrivateKey(keySize: .bits2048).pemRepresentation) ?? ""
    /// A 768-bit key (too short for DKIM), made with openssl for this test.
    static let shortRSA = """
        -----BEGIN PRIVATE KEY-----
        MIIB5QIBADANBgkqhkiG9w0BAQEFAASCAc8wggHLAgEAAmEAsctDICqFBjQrfMxj
        OOpTwGv285TJ7b+s2h5jhUU4gj1ZmFahgJ0V70NjBKDwUjHVNklgQGo1j8r9PTN6
        FkE4kxOVloJEjgpj9bXx6dopFst1XbxGA8WwtouD83ay3crXAgMBAAECYQCinClU
        rg7kUarEhZrqX0ciYpyGw7q7++b3x3t2VI0OcVYUgodLvmBlaNiTTy79vhygDrh+
        ZO08mFwCdWrNMorn3sbuaxhV6FRQQXhjv+EkmSEs3AGDAgP8HqqQ88biVYECMQDm
        nNkydaISnyEupgIsn1iQAjZy65FN8SaBoaOA8BwD0GhLsjtjeEBYU0FWQeKKshEC
        MQDFXd8iMYyzQG0Ee/PCNuELNami2p0Jh77PIMqwW3u9mnxysayZ92jTMq3vkvrn
        xmcCMCtQKEce6urecmgFjAD/iK27jKh28BqYgWf1iPUNo+VffkdBWYAsNMGiGXJu
        +3KbUQIxALyxh8BIQS2rXc8Ytq8rCrNN5dY2TkcrSgj7X+2GOWLHzU1Wgx9cxBKP
        dG4FRu7K5wIwP4w8pi7KblMIyqSRixAjH1gjv0uUx+iraGv0BaKGBhvhU38dSvkI
        p0D6sYLx0Eat
        -----END PRIVATE KEY-----
        """

    static func body(_ overrides: [String: JSONValue] = [:], smtp: [String: JSONValue] = [:], dkim: [String: JSONValue]? = nil) -> String {
        var server: [String: JSONValue] = [
            "host": .string("smtp.example.com"), "port": .int(587), "security": .string("starttls"), "username": .string("beckon"),
            "password": .string("smtp-secret-1"),
        ]
        for (key, value) in smtp { server[key] = value }
        var object: [String: JSONValue] = [
            "smtp": .object(server), "from_address": .string("news@mail.example.com"), "from_name": .string("비컨 쇼핑"),
            "reply_to": .string("help@example.com"), "bounce_domain": .string("bounce.example.com"),
            "dkim": .object(dkim ?? ["domain": .string("mail.example.com"), "selector": .string("bk2026"), "private_key": .string(rsaPEM)]),
        ]
        for (key, value) in overrides { object[key] = value }
        return JSONValue.object(object).serialized()
    }

    @Test("settings are stored with secrets sealed (never returned), a PUT without the password keeps it, a DKIM key can be made, the DNS records are exact", arguments: TestDatabases.all())
    func settings(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            #expect(try await api.get("/beckon/v1/email/settings").json["settings"] == .null)
            let stored = try await api.put("/beckon/v1/email/settings", Self.body())
            #expect(stored.status == .ok, "\(stored.text)")
            #expect(!stored.text.contains("smtp-secret-1") && !stored.text.contains("PRIVATE KEY"), "secrets are never returned")
            #expect(stored.json["settings"]?["smtp"]?["password_set"] == .bool(true) && stored.json["warnings"] == .array([]))
            let shown = try await api.get("/beckon/v1/email/settings")
            #expect(shown.json["settings"]?["dkim"]?["dns_record"]?.stringValue?.hasPrefix("v=DKIM1; k=rsa; p=MII") == true)

            // The password and key stay when a PUT does not repeat them (same user, same selector).
            var noSecrets = Self.body(smtp: ["password": .null], dkim: ["domain": .string("mail.example.com"), "selector": .string("bk2026")])
            noSecrets = noSecrets.replacingOccurrences(of: #""from_name":"비컨 쇼핑""#, with: #""from_name":"Beckon""#)
            let kept = try await api.put("/beckon/v1/email/settings", noSecrets)
            #expect(kept.status == .ok && kept.json["settings"]?["smtp"]?["password_set"] == .bool(true), "\(kept.text)")
            #expect(kept.json["settings"]?["dkim"]?["dns_record"] == shown.json["settings"]?["dkim"]?["dns_record"])

            let dns = try await api.get("/beckon/v1/email/dns")
            let records = try #require(dns.json["records"]?.arrayValue)
            #expect(records.map { $0["purpose"] } == [.string("dkim"), .string("spf"), .string("dmarc")])
            #expect(records[0]["name"] == .string("bk2026._domainkey.mail.example.com"))
            #expect(records[0]["strings"]?.arrayValue?.allSatisfy { ($0.stringValue?.utf8.count ?? 999) <= 255 } == true)
            #expect(records[0]["strings"]?.arrayValue?.compactMap(\.stringValue).joined() == records[0]["value"]?.stringValue)
            #expect(records[1]["name"] == .string("bounce.example.com") && records[1]["value"] == .string("v=spf1 a:smtp.example.com ~all"))
            #expect(records[2]["name"] == .string("_dmarc.mail.example.com")
                && records[2]["value"] == .string("v=DMARC1; p=none; rua=mailto:dmarc@mail.example.com; adkim=r; aspf=r"))

            let made = try await api.post("/beckon/v1/email/dkim", #"{"algorithm": "ed25519-sha256", "selector": "bked"}"#)
            #expect(made.status == .created, "\(made.text)")
            #expect(made.json["settings"]?["dkim"]?["dns_record"]?.stringValue?.hasPrefix("v=DKIM1; k=ed25519; p=") == true)
            #expect(made.json["settings"]?["dkim"]?["selector"] == .string("bked") && made.json["settings"]?["dkim"]?["domain"] == .string("mail.example.com"))
            #expect(!made.text.contains("PRIVATE KEY"))

            let unaligned = try await api.put("/beckon/v1/email/settings", Self.body(dkim: ["domain": .string("other.example.net"), "selector": .string("s1"), "private_key": .string(Self.rsaPEM)]))
            #expect(unaligned.status == .ok && unaligned.text.contains("does not align with the From domain mail.example.com"), "\(unaligned.text)")
        }
    }

    @Test("bad email settings: each problem names its field and nothing is stored", arguments: TestDatabases.all())
    func badInput(kind: TestDatabaseKind) async throws {
        try await APIHarness.run(kind) { api in
            let bad = try await api.put("/beckon/v1/email/settings", Self.body(
                ["from_address": .string("news"), "from_name": .string("Beckon\r\nBcc: x@example.com")], smtp: ["security": .string("ssl"), "port": .int(0)],
                dkim: ["domain": .string("mail"), "selector": .string("bad selector"), "private_key": .string("hello")]))
            #expect(bad.status == .badRequest)
            for expected in [
                "smtp.security: must be starttls, tls or none", "smtp.port: must be 1 to 65535", "from_address: 'news' is not an email address",
                "from_name: must be one line", "dkim.domain: must be the signing domain", "dkim.selector: must be a DNS label",
                "dkim.private_key: is not an RSA private key in PEM",
            ] {
                #expect(bad.text.contains(expected), "\(expected) in \(bad.text)")
            }
            let short = try await api.put("/beckon/v1/email/settings", Self.body(dkim: ["domain": .string("mail.example.com"), "selector": .string("s1"), "private_key": .string(Self.shortRSA)]))
            #expect(short.text.contains("dkim.private_key: the RSA key has fewer than 1024 bits"), "\(short.text)")
            let plain = try await api.put("/beckon/v1/email/settings", Self.body(smtp: ["security": .string("none")]))
            #expect(plain.text.contains("smtp.security: AUTH is only sent after TLS"), "\(plain.text)")
            let wrongType = try await api.put("/beckon/v1/email/settings", Self.body(dkim: ["domain": .string("mail.example.com"), "selector": .string("s1"), "private_key": .string(Self.rsaPEM), "algorithm": .string("ed25519-sha256")]))
            #expect(wrongType.text.contains("dkim.private_key: is not an Ed25519 private key"), "\(wrongType.text)")
            #expect(try await api.get("/beckon/v1/email/settings").json["settings"] == .null, "nothing half-stored")
            #expect(try await api.post("/beckon/v1/email/dkim", "{}").status == .badRequest, "a key needs the settings first")
            #expect(try await api.get("/beckon/v1/email/dns").status == .notFound)
        }
    }
}
