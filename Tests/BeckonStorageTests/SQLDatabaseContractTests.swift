import BeckonTestSupport
import BeckonPostgres
import BeckonStorage
import Testing

/// What every `SQLDatabase` backend must do the same way: the stores are written once against it.
@Suite("SQLDatabase contract")
struct SQLDatabaseContractTests {
    private struct Boom: Error {}

    private static func createTable(_ db: any SQLDatabase) async throws {
        try await db.write { c in
            try c.execute("""
                CREATE TABLE items (
                    id INTEGER PRIMARY KEY,
                    i BIGINT,
                    r DOUBLE PRECISION,
                    s TEXT,
                    b \(c.dialect.blob)
                )
                """)
        }
    }

    private static func count(_ db: any SQLDatabase, _ table: String = "items") async throws -> Int64? {
        try await db.read { c in try c.first("SELECT COUNT(*) FROM \(table)")?[0].int }
    }

    @Test("every value kind round-trips, NULL included", arguments: TestDatabases.all())
    func valuesRoundTrip(kind: TestDatabaseKind) async throws {
        try await kind.withDatabase { db in
            try await Self.createTable(db)
            let rows: [[SQLValue]] = [
                [.integer(1), .integer(Int64.max), .real(3.25), .text("안녕하세요, 세계 🌍"), .blob([0, 1, 127, 128, 255, 0])],
                [.integer(2), .integer(Int64.min), .real(-0.1), .text("it's a 'quote' ? and \"double\""), .blob([42])],
                [.integer(3), .integer(0), .real(1e300), .text(""), .blob([0])],
                [.integer(4), .null, .null, .null, .null],
                [.integer(5), .integer(-1), .real(-2.5e-300), .text("한국어 텍스트\nnew line\ttab"), .blob(Array(0...255))],
            ]
            try await db.write { c in
                for row in rows {
                    try c.execute("INSERT INTO items (id, i, r, s, b) VALUES (?, ?, ?, ?, ?)", row)
                }
            }
            let read = try await db.read { c in
                try c.query("SELECT id, i, r, s, b FROM items ORDER BY id", []).map(\.values)
            }
            #expect(read == rows)

            // Values bound to a query come back as bound; integers compare with INTEGER columns.
            let selected = try await db.read { c in
                try c.first("SELECT ?, ?, ?, ?", [.integer(Int64.max), .real(0.5), .text("가나다"), .blob([1, 2])])?.values
            }
            #expect(selected == [.integer(Int64.max), .real(0.5), .text("가나다"), .blob([1, 2])])
            let byInteger = try await db.read { c in
                try c.query("SELECT id FROM items WHERE id = ? OR i = ? ORDER BY id", [.integer(3), .integer(-1)]).map { $0[0] }
            }
            #expect(byInteger == [.integer(3), .integer(5)])
            let nulls = try await db.read { c in
                try c.query("SELECT id FROM items WHERE s IS NULL AND b IS NULL", []).map { $0[0] }
            }
            #expect(nulls == [.integer(4)])
        }
    }

    @Test("NULL binds into every column type and with a typed comparison", arguments: TestDatabases.all())
    func nullBinds(kind: TestDatabaseKind) async throws {
        try await kind.withDatabase { db in
            try await Self.createTable(db)
            let updated = try await db.write { c in
                try c.execute("INSERT INTO items (id, i, r, s, b) VALUES (?, ?, ?, ?, ?)", [.integer(1), .integer(5), .real(1), .text("x"), .blob([1])])
                try c.execute("UPDATE items SET i = ?, r = ?, s = ?, b = ? WHERE id = ?", [.null, .null, .null, .null, .integer(1)])
                return try c.first("SELECT i, r, s, b FROM items WHERE id = ?", [.integer(1)])?.values
            }
            #expect(updated == [.null, .null, .null, .null])
            let coalesced = try await db.read { c in
                try c.first("SELECT COALESCE(i, ?) FROM items WHERE id = ?", [.integer(7), .integer(1)])?[0]
            }
            #expect(coalesced == .integer(7))
        }
    }

    @Test("aggregates read back as integers", arguments: TestDatabases.all())
    func aggregates(kind: TestDatabaseKind) async throws {
        try await kind.withDatabase { db in
            try await Self.createTable(db)
            let result = try await db.write { c in
                for id in 1...3 {
                    try c.execute("INSERT INTO items (id, i) VALUES (?, ?)", [.integer(Int64(id)), .integer(Int64(id) * 1_000_000_000_000)])
                }
                return try c.first("SELECT COUNT(*), SUM(i), MAX(i), SUM(id) FROM items")?.values
            }
            #expect(result == [.integer(3), .integer(6_000_000_000_000), .integer(3_000_000_000_000), .integer(6)])
        }
    }

    @Test("? inside string literals and comments is not a placeholder", arguments: TestDatabases.all())
    func placeholdersInLiterals(kind: TestDatabaseKind) async throws {
        try await kind.withDatabase { db in
            let values = try await db.read { c in
                try c.first(
                    "SELECT 'what?', ?, '?''?' /* ? */, ? -- trailing ?\n",
                    [.integer(1), .text("x")]
                )?.values
            }
            #expect(values == [.text("what?"), .integer(1), .text("?'?"), .text("x")])
        }
    }

    @Test("a body that throws rolls the whole transaction back", arguments: TestDatabases.all())
    func rollbackOnThrow(kind: TestDatabaseKind) async throws {
        try await kind.withDatabase { db in
            try await Self.createTable(db)
            try await db.write { c in try c.execute("INSERT INTO items (id) VALUES (?)", [.integer(1)]) }
            await #expect(throws: Boom.self) {
                try await db.write { c in
                    try c.execute("INSERT INTO items (id) VALUES (?)", [.integer(2)])
                    try c.execute("UPDATE items SET s = ? WHERE id = ?", [.text("changed"), .integer(1)])
                    throw Boom()
                }
            }
            let rows = try await db.read { c in try c.query("SELECT id, s FROM items", []).map(\.values) }
            #expect(rows == [[.integer(1), .null]])
            // The connection is usable again afterwards.
            try await db.write { c in try c.execute("INSERT INTO items (id) VALUES (?)", [.integer(3)]) }
            #expect(try await Self.count(db) == 2)
        }
    }

    @Test("rolling back to a savepoint keeps the outer transaction", arguments: TestDatabases.all())
    func savepoints(kind: TestDatabaseKind) async throws {
        try await kind.withDatabase { db in
            try await Self.createTable(db)
            try await db.write { c in
                try c.execute("INSERT INTO items (id) VALUES (?)", [.integer(1)])
                try c.execute("SAVEPOINT s1")
                try c.execute("INSERT INTO items (id) VALUES (?)", [.integer(2)])
                try c.execute("ROLLBACK TO SAVEPOINT s1")
                try c.execute("RELEASE SAVEPOINT s1")

                // A failed statement inside a savepoint does not doom the transaction.
                try c.execute("SAVEPOINT s2")
                do {
                    try c.execute("INSERT INTO items (id) VALUES (?)", [.integer(1)])
                    Issue.record("a duplicate primary key must fail")
                } catch {
                    try c.execute("ROLLBACK TO SAVEPOINT s2")
                }
                try c.execute("RELEASE SAVEPOINT s2")

                try c.execute("SAVEPOINT s3")
                try c.execute("INSERT INTO items (id) VALUES (?)", [.integer(3)])
                try c.execute("RELEASE SAVEPOINT s3")
            }
            let ids = try await db.read { c in try c.query("SELECT id FROM items ORDER BY id", []).map { $0[0] } }
            #expect(ids == [.integer(1), .integer(3)])
        }
    }

    @Test("a unique violation is an SQLError naming the statement", arguments: TestDatabases.all())
    func uniqueViolation(kind: TestDatabaseKind) async throws {
        try await kind.withDatabase { db in
            try await Self.createTable(db)
            try await db.write { c in try c.execute("CREATE UNIQUE INDEX items_s ON items (s)") }
            try await db.write { c in try c.execute("INSERT INTO items (id, s) VALUES (?, ?)", [.integer(1), .text("secret@example.com")]) }
            let insert = "INSERT INTO items (id, s) VALUES (?, ?)"
            let error = await #expect(throws: SQLError.self) {
                try await db.write { c in try c.execute(insert, [.integer(2), .text("secret@example.com")]) }
            }
            #expect(error?.sql == insert)
            #expect(error?.description.contains("secret@example.com") == false)
            if kind == .postgres {
                #expect(error?.postgresSQLState == "23505")
                #expect(error?.isPostgresUniqueViolation == true)
            }
            #expect(try await Self.count(db) == 1)
        }
    }

    @Test("a syntax error is an SQLError with the server's message", arguments: TestDatabases.all())
    func syntaxError(kind: TestDatabaseKind) async throws {
        try await kind.withDatabase { db in
            let error = await #expect(throws: SQLError.self) {
                try await db.read { c in try c.query("SELEKT 1", []) }
            }
            #expect(error?.sql == "SELEKT 1")
            #expect(error?.message.lowercased().contains("syntax") == true)
        }
    }

    @Test("concurrent writes from 50 tasks all land", arguments: TestDatabases.all())
    func concurrentWrites(kind: TestDatabaseKind) async throws {
        try await kind.withDatabase { db in
            try await Self.createTable(db)
            try await db.write { c in
                try c.execute("CREATE TABLE counter (id INTEGER PRIMARY KEY, n BIGINT NOT NULL)")
                try c.execute("INSERT INTO counter (id, n) VALUES (1, 0)")
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for task in 0..<50 {
                    group.addTask {
                        try await db.write { c in
                            try c.execute("INSERT INTO items (id, s) VALUES (?, ?)", [.integer(Int64(task)), .text("task \(task)")])
                            try c.execute("UPDATE counter SET n = n + 1 WHERE id = 1")
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await Self.count(db) == 50)
            #expect(try await db.read { c in try c.first("SELECT n FROM counter")?[0] } == .integer(50))
        }
    }

    @Test("read sees data committed by earlier writes", arguments: TestDatabases.all())
    func readSeesCommitted(kind: TestDatabaseKind) async throws {
        try await kind.withDatabase { db in
            try await Self.createTable(db)
            #expect(try await Self.count(db) == 0)
            for id in 1...3 {
                try await db.write { c in try c.execute("INSERT INTO items (id, s) VALUES (?, ?)", [.integer(Int64(id)), .text("v\(id)")]) }
                #expect(try await Self.count(db) == Int64(id))
            }
            let texts = try await db.read { c in try c.query("SELECT s FROM items ORDER BY id", []).map { $0[0].string } }
            #expect(texts == ["v1", "v2", "v3"])
        }
    }

    @Test("a write returns the body's value", arguments: TestDatabases.all())
    func writeReturnsValue(kind: TestDatabaseKind) async throws {
        try await kind.withDatabase { db in
            try await Self.createTable(db)
            let inserted = try await db.write { c -> [SQLValue] in
                try c.execute("INSERT INTO items (id, i) VALUES (?, ?)", [.integer(10), .integer(20)])
                return try c.query("SELECT id, i FROM items", []).first?.values ?? []
            }
            #expect(inserted == [.integer(10), .integer(20)])
            #expect(db.dialect.kind.rawValue == kind.rawValue)
        }
    }
}
