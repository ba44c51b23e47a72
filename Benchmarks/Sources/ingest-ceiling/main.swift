// The ingestion ceiling: the rows one /users/track event writes in Beckon, written straight into
// SQLite with no HTTP, no JSON parsing, no validation, no id resolution.
//
// Same DDL as Beckon's migration (`events` with its (user_id, name, time) index, `event_daily`
// with its primary key and (workspace_id, name, day) index), same connection settings as
// `SQLiteStorage` (GRDB DatabasePool, WAL, synchronous=NORMAL or FULL, 64 MB cache), the same
// per-transaction merge of the per-user-per-day increments applied as sorted upserts, and the
// same transaction sizes (75 rows = one request per commit; 75 × k = k requests per group commit).
//
//   ingest-ceiling [--rows N] [--batches 75,4800] [--users 100000] [--days 28] [--synchronous NORMAL|FULL]
//
// Prints one JSON object: rows/s for each transaction size, each on a fresh database.
import Foundation
import GRDB

struct Options {
    var rows = 600_000
    var batches = [75, 4_800]
    var users = 100_000
    var days = 28
    var synchronous = "NORMAL"
    var seed: UInt64 = 7

    init(_ arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let flag = iterator.next() {
            guard let value = iterator.next() else { Self.usage("missing value for \(flag)") }
            switch flag {
            case "--rows": rows = Self.number(value, flag)
            case "--batches": batches = value.split(separator: ",").map { Self.number(String($0), flag) }
            case "--users": users = Self.number(value, flag)
            case "--days": days = Self.number(value, flag)
            case "--synchronous": synchronous = value.uppercased()
            case "--seed": seed = UInt64(Self.number(value, flag))
            default: Self.usage("unknown flag \(flag)")
            }
        }
    }

    static func number(_ text: String, _ flag: String) -> Int {
        guard let value = Int(text), value > 0 else { usage("bad value for \(flag): \(text)") }
        return value
    }

    static func usage(_ message: String) -> Never {
        FileHandle.standardError.write(Data("ingest-ceiling: \(message)\nusage: ingest-ceiling [--rows N] [--batches 75,4800] [--users N] [--days N] [--synchronous NORMAL|FULL] [--seed N]\n".utf8))
        exit(2)
    }
}

/// The DDL of `Schema.initial` for the two tables an event writes (SQLite dialect), copied verbatim.
let schema = [
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, workspace_id BIGINT NOT NULL, user_id BIGINT NOT NULL, name TEXT NOT NULL,
        time BIGINT NOT NULL, app_id TEXT, properties TEXT)
    """,
    "CREATE INDEX events_user_name_time ON events (user_id, name, time)",
    """
    CREATE TABLE event_daily (
        user_id BIGINT NOT NULL, name TEXT NOT NULL, day INTEGER NOT NULL, workspace_id BIGINT NOT NULL,
        count BIGINT NOT NULL, first_time BIGINT NOT NULL, last_time BIGINT NOT NULL,
        PRIMARY KEY (user_id, name, day)) WITHOUT ROWID
    """,
    "CREATE INDEX event_daily_name_day ON event_daily (workspace_id, name, day)",
]

/// `AggregateDeltas.apply`'s upsert for `event_daily` (SQLite dialect: MIN/MAX for least/greatest).
let upsertSQL = """
    INSERT INTO event_daily (user_id, name, day, workspace_id, count, first_time, last_time) VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (user_id, name, day) DO UPDATE SET count = event_daily.count + excluded.count,
    first_time = MIN(event_daily.first_time, excluded.first_time), last_time = MAX(event_daily.last_time, excluded.last_time)
    """
let insertSQL = "INSERT INTO events (workspace_id, user_id, name, time, app_id, properties) VALUES (?, ?, ?, ?, ?, ?)"

struct Event {
    let userID: Int64, name: String, time: Int64, properties: String
}

struct DayKey: Hashable, Comparable {
    let userID: Int64, name: String, day: Int64
    static func < (a: Self, b: Self) -> Bool { (a.userID, a.name, a.day) < (b.userID, b.name, b.day) }
}

/// SplitMix64: a small deterministic generator, so every run writes the same rows.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The same event mix as bench/ingest/track.lua: product_viewed/search/added_to_cart over `users`
/// users and the `days` days before 2025-06-29, with brand/product_id/category properties.
func makeEvents(_ options: Options) -> [Event] {
    let brands = ["Jucy Judy", "Kirsh", "Covernat", "Matin Kim", "Emis", "Sculptor"]
    let names = ["product_viewed", "product_viewed", "product_viewed", "search", "added_to_cart"]
    let base: Int64 = 1_748_736_000_000  // 2025-06-01T00:00:00Z
    var rng = SplitMix64(state: options.seed)
    return (0..<options.rows).map { _ in
        let brand = brands.randomElement(using: &rng)!
        let product = Int.random(in: 1...5000, using: &rng)
        let category = Int.random(in: 1...20, using: &rng) * 10
        let categoryText = String(repeating: "0", count: max(0, 4 - String(category).count)) + String(category)
        return Event(
            userID: Int64.random(in: 1...Int64(options.users), using: &rng),
            name: names.randomElement(using: &rng)!,
            time: base + Int64.random(in: 0..<Int64(options.days) * 86_400_000, using: &rng),
            properties: #"{"brand":"\#(brand)","category":"A\#(categoryText)","product_id":"P\#(product)"}"#)
    }
}

func run(batch: Int, events: [Event], options: Options) throws -> [String: Any] {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("beckon-ceiling-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    var configuration = Configuration()
    configuration.busyMode = .timeout(10)
    let synchronous = options.synchronous
    configuration.prepareDatabase { db in
        try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
        try db.execute(sql: "PRAGMA cache_size = -65536")
    }
    let pool = try DatabasePool(path: folder.appendingPathComponent("ceiling.sqlite").path, configuration: configuration)
    try pool.write { db in for statement in schema { try db.execute(sql: statement) } }
    let workspaceID: Int64 = 1
    let appID: String? = nil
    var transactions = 0
    var upserts = 0
    let clock = ContinuousClock()
    let started = clock.now
    var offset = 0
    while offset < events.count {
        let slice = events[offset..<min(offset + batch, events.count)]
        offset += slice.count
        transactions += 1
        upserts += try pool.write { db -> Int in
            let insert = try db.cachedStatement(sql: insertSQL)
            var daily: [DayKey: (count: Int64, first: Int64, last: Int64)] = [:]
            for event in slice {
                insert.setUncheckedArguments([workspaceID, event.userID, event.name, event.time, appID, event.properties])
                try insert.execute()
                let key = DayKey(
                    userID: event.userID, name: event.name,
                    day: event.time >= 0 ? event.time / 86_400_000 : (event.time - 86_399_999) / 86_400_000)
                if let old = daily[key] {
                    daily[key] = (old.count + 1, min(old.first, event.time), max(old.last, event.time))
                } else {
                    daily[key] = (1, event.time, event.time)
                }
            }
            let upsert = try db.cachedStatement(sql: upsertSQL)
            for key in daily.keys.sorted() {
                let value = daily[key]!
                upsert.setUncheckedArguments([key.userID, key.name, key.day, workspaceID, value.count, value.first, value.last])
                try upsert.execute()
            }
            return daily.count
        }
    }
    let elapsed = clock.now - started
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let check = try pool.read { db in
        (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM events") ?? 0,
         try Int.fetchOne(db, sql: "SELECT SUM(count) FROM event_daily") ?? 0)
    }
    precondition(check.0 == events.count && check.1 == events.count, "ceiling wrote \(check) rows, expected \(events.count)")
    try pool.close()
    return [
        "rows_per_transaction": batch, "transactions": transactions, "rows": events.count,
        "event_daily_upserts": upserts, "seconds": (seconds * 1000).rounded() / 1000,
        "rows_per_s": Int((Double(events.count) / seconds).rounded()),
    ]
}

let options = Options(CommandLine.arguments)
let events = makeEvents(options)
var results: [[String: Any]] = []
for batch in options.batches {
    results.append(try run(batch: batch, events: events, options: options))
}
let report: [String: Any] = [
    "sqlite_version": try DatabaseQueue().read { db in try String.fetchOne(db, sql: "SELECT sqlite_version()") ?? "?" },
    "synchronous": options.synchronous, "users": options.users, "results": results,
]
let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
print(String(decoding: json, as: UTF8.self))
