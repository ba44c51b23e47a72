import BeckonTestSupport
import BeckonPostgres
import BeckonStorage
import Testing

@Suite("PostgreSQL URL")
struct PostgresURLTests {
    @Test func parsesAFullURL() throws {
        let url = try PostgresURL("postgres://beckon:s%40cret@db.example.com:6543/beckon_prod")
        #expect(url == PostgresURL(host: "db.example.com", port: 6543, username: "beckon", password: "s@cret", database: "beckon_prod"))
        #expect(url.description == "postgres://beckon:***@db.example.com:6543/beckon_prod")
    }

    @Test func defaultsThePortAndAcceptsPostgresqlAndIPv6() throws {
        let url = try PostgresURL("postgresql://me@localhost/app")
        #expect(url == PostgresURL(host: "localhost", port: 5432, username: "me", password: nil, database: "app"))
        let v6 = try PostgresURL("postgres://me@[::1]:5433/app?sslmode=disable")
        #expect(v6 == PostgresURL(host: "::1", port: 5433, username: "me", database: "app"))
    }

    @Test(arguments: [
        ("mysql://u@h/db", "unsupported scheme"),
        ("u@h/db", "missing scheme"),
        ("postgres://h:5432/db", "missing user name"),
        ("postgres://u@h:5432", "missing database name"),
        ("postgres://u@h:5432/", "missing database name"),
        ("postgres://u@:5432/db", "missing host"),
        ("postgres://u@h:99999/db", "invalid port '99999'"),
        ("postgres://u@h:abc/db", "invalid port 'abc'"),
        ("postgres://u@h/db?sslmode=require", "sslmode=require"),
        ("postgres://u@h/db?pool=3", "unsupported URL parameter 'pool'"),
    ])
    func rejectsBadURLs(url: String, reason: String) {
        let error = #expect(throws: PostgresURLError.self) { try PostgresURL(url) }
        #expect(error?.description.contains(reason) == true, "\(error?.description ?? "no error")")
    }

    @Test func storageRejectsABadURL() {
        #expect(throws: PostgresURLError.self) { try PostgresStorage(url: "postgres://nobody@localhost:0/db") }
    }

    @Test func connectingToANonListeningPortFailsClearly() async {
        // Port 1 on loopback: nothing listens there, so the connection is refused at once.
        let error = await #expect(throws: SQLError.self) {
            _ = try await PostgresStorage.connect(url: "postgres://beckon@127.0.0.1:1/none")
        }
        #expect(error?.message.contains("cannot connect to postgres://beckon@127.0.0.1:1/none") == true)
    }
}

/// Behaviour particular to the PostgreSQL driver; runs only where PostgreSQL is available.
@Suite("PostgreSQL storage")
struct PostgresStorageTests {
    @Test("numeric results decode to integers when integral, doubles otherwise", arguments: TestDatabases.postgresOnly())
    func numericDecoding(kind: TestDatabaseKind) async throws {
        try await kind.withDatabase { db in
            let row = try await db.read { c in
                try c.first("""
                    SELECT 0::numeric, 12345678901234::numeric, -9223372036854775808::numeric, 100000000::numeric,
                           1.5::numeric, -0.25::numeric, 1e30::numeric, 2.000::numeric, 0.0001::numeric,
                           SUM(x) FROM (VALUES (9223372036854775807::bigint), (1::bigint)) AS t(x)
                    """)?.values
            }
            #expect(row == [
                .integer(0), .integer(12_345_678_901_234), .integer(Int64.min), .integer(100_000_000),
                .real(1.5), .real(-0.25), .real(1e30), .integer(2), .real(0.0001),
                .real(9_223_372_036_854_775_808.0),
            ])
        }
    }

    @Test("other column types decode by their type", arguments: TestDatabases.postgresOnly())
    func otherTypes(kind: TestDatabaseKind) async throws {
        try await kind.withDatabase { db in
            let row = try await db.read { c in
                try c.first("""
                    SELECT 7::int2, 8::int4, 1.5::float4, true, false, 'abc'::varchar, 'x'::char(3), 'n'::name,
                           '{"a": 1}'::json, '{"a": 1}'::jsonb, '\\x00ff'::bytea, NULL::int8, 'pg_class'::regclass::oid,
                           '00000000-0000-0000-0000-000000000001'::uuid
                    """)?.values
            }
            #expect(row == [
                .integer(7), .integer(8), .real(1.5), .integer(1), .integer(0), .text("abc"), .text("x  "), .text("n"),
                .text("{\"a\": 1}"), .text("{\"a\": 1}"), .blob([0, 255]), .null, .integer(1259),
                .text("00000000-0000-0000-0000-000000000001"),
            ])
        }
    }

    @Test("a transaction whose failed statement was swallowed does not pretend to commit", arguments: TestDatabases.postgresOnly())
    func swallowedFailureDoesNotCommit(kind: TestDatabaseKind) async throws {
        try await kind.withDatabase { db in
            try await db.write { c in try c.execute("CREATE TABLE t (id BIGINT PRIMARY KEY)") }
            await #expect(throws: SQLError.self) {
                try await db.write { c in
                    try c.execute("INSERT INTO t (id) VALUES (?)", [.integer(1)])
                    _ = try? c.execute("INSERT INTO t (id) VALUES (?)", [.integer(1)])
                }
            }
            #expect(try await db.read { c in try c.first("SELECT COUNT(*) FROM t")?[0] } == .integer(0))
        }
    }

    @Test("read transactions are read-only", arguments: TestDatabases.postgresOnly())
    func readIsReadOnly(kind: TestDatabaseKind) async throws {
        try await kind.withDatabase { db in
            try await db.write { c in try c.execute("CREATE TABLE t (id BIGINT)") }
            let error = await #expect(throws: SQLError.self) {
                try await db.read { c in try c.execute("INSERT INTO t (id) VALUES (1)") }
            }
            #expect(error?.postgresSQLState == "25006")
        }
    }

    @Test("statements outside a transaction commit one by one", arguments: TestDatabases.postgresOnly())
    func withoutTransaction(kind: TestDatabaseKind) async throws {
        let database = try await kind.make()
        let storage = try #require(database.database as? PostgresStorage)
        try await storage.withoutTransaction { c in
            try c.execute("CREATE TABLE t (id BIGINT)")
            try c.execute("INSERT INTO t (id) VALUES (?)", [.integer(1)])
            // VACUUM refuses to run inside a transaction block.
            try c.execute("VACUUM t")
        }
        #expect(try await storage.read { c in try c.first("SELECT COUNT(*) FROM t")?[0] } == .integer(1))
        try await database.cleanup()
        await #expect(throws: SQLError.self) { try await storage.read { c in try c.first("SELECT 1") } }
    }

    @Test("many small writes reuse pooled connections", arguments: TestDatabases.postgresOnly())
    func manySmallWrites(kind: TestDatabaseKind) async throws {
        try await kind.withDatabase { db in
            try await db.write { c in try c.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)") }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        for n in 0..<50 {
                            let id = Int64(worker * 1000 + n)
                            try await db.write { c in try c.execute("INSERT INTO t (id, v) VALUES (?, ?)", [.integer(id), .text("\(id)")]) }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let backends = try await db.read { c in
                try c.first("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()")?[0].int
            }
            #expect((backends ?? 99) <= 4)
            #expect(try await db.read { c in try c.first("SELECT COUNT(*) FROM t")?[0] } == .integer(400))
        }
    }
}
