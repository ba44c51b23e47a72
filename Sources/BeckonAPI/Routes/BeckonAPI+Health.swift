import BeckonCore
import BeckonStorage
import HTTPTypes
import Hummingbird
import NIOCore

extension BeckonAPI {
    func addHealthRoutes(to router: Router<BeckonRequestContext>) {
        router.get("/health") { _, _ -> Response in
            do {
                _ = try await database.read { connection in try connection.first("SELECT 1") }
                return JSONResponse.make(.object(["status": .string("ok"), "database": .string(database.dialect.kind.rawValue)]))
            } catch {
                return JSONResponse.make(
                    .object(["status": .string("unavailable"), "error": .string("database: \(error)")]), status: .serviceUnavailable)
            }
        }
        router.get("/metrics") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: await metricsText())))
        }
    }
}
