import BeckonCore
import BeckonServer
import BeckonStorage
import BeckonTestSupport
import Foundation
import Testing

/// The demo dataset goes through ingestion and looks like the shop it claims to be.
@Suite("Demo dataset")
struct DemoLoaderTests {
    @Test("loads Korean fashion shop users, behaviour and push states", arguments: TestDatabases.all())
    func loads(kind: TestDatabaseKind) async throws {
        try await kind.withDatabase { database in
            try await Migrator.migrate(database)
            let clock = FixedClock(BrazeTime.parse("2025-06-30T15:00:00Z")!)
            let stores = BeckonServer.Stores(database: database, clock: clock)
            let workspace = try await stores.workspaces.createWorkspace(name: "demo", timeZone: "Asia/Seoul")
            let report = try await DemoLoader(users: stores.users, clock: clock).load(workspaceID: workspace.id, users: 120)
            #expect(report.contains("loaded 120 users"))
            let (users, seoul, events, purchases, provisional, brands) = try await database.read { connection in
                (try connection.first("SELECT COUNT(*) FROM users", [])?[0].int ?? 0,
                 try connection.first("SELECT COUNT(*) FROM users WHERE time_zone = 'Asia/Seoul' AND country = 'KR'", [])?[0].int ?? 0,
                 try connection.first("SELECT COUNT(*) FROM events", [])?[0].int ?? 0,
                 try connection.first("SELECT COUNT(*) FROM purchases WHERE currency = 'KRW'", [])?[0].int ?? 0,
                 try connection.first("SELECT COUNT(*) FROM push_tokens WHERE authorization_state = 'provisional'", [])?[0].int ?? 0,
                 try connection.first("SELECT COUNT(DISTINCT value) FROM event_property_daily WHERE property = 'brand'", [])?[0].int ?? 0)
            }
            #expect(users == 120)
            #expect(seoul == 120)
            #expect(events > 500)
            #expect(purchases > 0)
            #expect(provisional > 0, "some iOS users are provisionally authorized")
            #expect(brands > 5, "product views by brand are counted per value")
            var query = ExportQuery()
            query.externalIDs = ["user-0000001"]
            let user = try #require(try await stores.users.export(workspaceID: workspace.id, query: query).users.first)
            #expect(user["first_name"]?.stringValue?.unicodeScalars.allSatisfy { (0xAC00...0xD7A3).contains($0.value) } == true)
        }
    }
}
