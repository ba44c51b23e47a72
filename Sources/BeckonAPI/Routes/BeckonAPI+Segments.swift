import BeckonCore
import BeckonSegments
import BeckonStorage
import Foundation
import HTTPTypes
import Hummingbird

extension BeckonAPI {
    /// Braze's Segment API (`/segments/list`, `/segments/details`, `/segments/data_series`) and
    /// Beckon's own segment endpoints under `/beckon/v1/segments`.
    func addSegmentRoutes(to router: Router<BeckonRequestContext>) {
        router.get("/segments/list") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: APIPermission.segmentsList)
            let page = try Self.intParameter(request, "page", default: 0, range: 0...1_000_000)
            let direction = request.uri.queryParameters["sort_direction"].map(String.init) ?? "asc"
            guard direction == "asc" || direction == "desc" else {
                throw APIError.badRequest(["'sort_direction' must be 'asc' or 'desc'"])
            }
            let list = try await segments.list(workspaceID: key.workspaceID, page: page, newestFirst: direction == "desc")
            return JSONResponse.make(.object([
                "message": .string("success"),
                "segments": .array(list.map { segment in
                    .object([
                        "id": .string(segment.id), "name": .string(segment.name), "analytics_tracking_enabled": .bool(true),
                        "tags": .array(segment.tags.map(JSONValue.string)),
                    ])
                }),
            ]))
        }
        router.get("/segments/details") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: APIPermission.segmentsDetails)
            let segment = try await withSegmentErrors { try await segments.segment(workspaceID: key.workspaceID, id: try Self.segmentID(request)) }
            return JSONResponse.make(.object([
                "message": .string("success"),
                "created_at": .string(BrazeTime.format(epochMilliseconds: segment.createdAt)),
                "updated_at": .string(BrazeTime.format(epochMilliseconds: segment.updatedAt)),
                "name": .string(segment.name), "description": .string(SegmentDescriber.describe(segment.filter)),
                "text_description": .string(segment.description), "tags": .array(segment.tags.map(JSONValue.string)),
                "teams": .array([]),
            ]))
        }
        router.get("/segments/data_series") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: APIPermission.segmentsDataSeries)
            let id = try Self.segmentID(request)
            let endingAt = try Self.timeParameter(request, "ending_at")
            let startingAt = try Self.timeParameter(request, "starting_at")
            let length: Int
            if request.uri.queryParameters["length"] != nil {
                length = try Self.intParameter(request, "length", default: 1, range: 1...100)
            } else if let startingAt {
                let end = endingAt ?? clock.now()
                length = Int((end.timeIntervalSince(startingAt) / 86_400).rounded(.up)) + 1
                guard (1...100).contains(length) else {
                    throw APIError.badRequest(["'starting_at' to 'ending_at' must span 1 to 100 days"])
                }
            } else {
                throw APIError.badRequest(["'length' is required: a whole number of days from 1 to 100"])
            }
            let points = try await withSegmentErrors {
                try await segments.dataSeries(workspaceID: key.workspaceID, segmentID: id, length: length, endingAt: endingAt)
            }
            return JSONResponse.make(.object([
                "message": .string("success"),
                "data": .array(points.map { .object(["time": .string($0.day), "size": .int($0.size)]) }),
            ]))
        }

        let read = APIPermission.beckonSegmentsRead
        let write = APIPermission.beckonSegmentsWrite
        router.post("/beckon/v1/segments") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: write)
            let fields = try Self.segmentFields(body)
            let segment = try await withSegmentErrors {
                try await segments.create(
                    workspaceID: key.workspaceID, name: fields.name, description: fields.description, tags: fields.tags, filter: fields.filter)
            }
            return JSONResponse.make(.object(["message": .string("success"), "segment_id": .string(segment.id)]), status: .created)
        }
        router.post("/beckon/v1/segments/preview") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: read)
            guard let filterJSON = body["filter"] else { throw APIError.badRequest(["'filter' is required"]) }
            let filter = try await withSegmentErrors { try SegmentFilter.parse(filterJSON) }
            let (size, sample) = try await withSegmentErrors {
                (try await segments.count(workspaceID: key.workspaceID, filter: filter),
                 try await segments.members(workspaceID: key.workspaceID, filter: filter, after: nil, limit: 20).externalIDs)
            }
            return JSONResponse.make(.object([
                "message": .string("success"), "size": .int(size), "sample": .array(sample.map(JSONValue.string)),
                "description": .string(SegmentDescriber.describe(filter)),
            ]))
        }
        router.get("/beckon/v1/segments/{id}") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: read)
            let segment = try await withSegmentErrors {
                try await segments.segment(workspaceID: key.workspaceID, id: try context.parameters.require("id"))
            }
            return JSONResponse.make(Self.segmentJSON(segment))
        }
        router.put("/beckon/v1/segments/{id}") { request, context -> Response in
            let (key, body) = try await authorizedJSON(request, context: context, permission: write)
            let fields = try Self.segmentFields(body)
            let segment = try await withSegmentErrors {
                try await segments.update(
                    workspaceID: key.workspaceID, id: try context.parameters.require("id"), name: fields.name,
                    description: fields.description, tags: fields.tags, filter: fields.filter)
            }
            return JSONResponse.make(Self.segmentJSON(segment))
        }
        router.delete("/beckon/v1/segments/{id}") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: write)
            try await withSegmentErrors { try await segments.delete(workspaceID: key.workspaceID, id: try context.parameters.require("id")) }
            return JSONResponse.make(.object(["message": .string("success")]))
        }
        router.get("/beckon/v1/segments/{id}/members") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: read)
            let limit = try Self.intParameter(request, "limit", default: 1000, range: 1...10_000)
            var cursor: Int64?
            if let text = request.uri.queryParameters["cursor"], !text.isEmpty {
                guard let value = Int64(text), value > 0 else { throw APIError.badRequest(["'cursor' is not a cursor this endpoint returned"]) }
                cursor = value
            }
            let page = try await withSegmentErrors {
                let segment = try await segments.segment(workspaceID: key.workspaceID, id: try context.parameters.require("id"))
                return try await segments.members(workspaceID: key.workspaceID, filter: segment.filter, after: cursor, limit: limit)
            }
            var body: [String: JSONValue] = ["message": .string("success"), "external_ids": .array(page.externalIDs.map(JSONValue.string))]
            if let next = page.nextCursor { body["next_cursor"] = .string(String(next)) }
            return JSONResponse.make(.object(body))
        }
        router.get("/beckon/v1/segments/{id}/contains") { request, context -> Response in
            let key = try await authenticator.authorize(request, context: context, permission: read)
            guard let externalID = request.uri.queryParameters["external_id"].map(String.init), !externalID.isEmpty else {
                throw APIError.badRequest(["'external_id' is required"])
            }
            let member = try await withSegmentErrors {
                let segment = try await segments.segment(workspaceID: key.workspaceID, id: try context.parameters.require("id"))
                return try await segments.contains(workspaceID: key.workspaceID, filter: segment.filter, externalID: externalID)
            }
            return JSONResponse.make(.object(["message": .string("success"), "member": .bool(member)]))
        }
    }

    /// Maps segment errors to Braze-shaped 400/404/409 answers.
    func withSegmentErrors<T>(_ work: () async throws -> T) async throws -> T {
        do {
            return try await work()
        } catch let error as SegmentError {
            switch error.kind {
            case .notFound: throw APIError(.notFound, "Not Found", errors: [error.description])
            case .invalid: throw APIError.badRequest([error.description])
            case .conflict: throw APIError(.conflict, "Conflict", errors: [error.description])
            }
        } catch let error as SegmentFilterError {
            throw APIError.badRequest([error.description])
        }
    }

    static func segmentID(_ request: Request) throws -> String {
        guard let id = request.uri.queryParameters["segment_id"].map(String.init), !id.isEmpty else {
            throw APIError.badRequest(["'segment_id' is required"])
        }
        return id
    }

    static func intParameter(_ request: Request, _ name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = request.uri.queryParameters[Substring(name)] else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw APIError.badRequest(["'\(name)' must be a whole number from \(range.lowerBound) to \(range.upperBound), got '\(text)'"])
        }
        return number
    }

    static func timeParameter(_ request: Request, _ name: String) throws -> Date? {
        guard let text = request.uri.queryParameters[Substring(name)].map(String.init), !text.isEmpty else { return nil }
        guard let date = BrazeTime.parse(text) else { throw APIError.badRequest(["'\(name)' must be an ISO 8601 time, got '\(text)'"]) }
        return date
    }

    static func segmentFields(_ body: JSONValue) throws -> (name: String, description: String, tags: [String], filter: JSONValue) {
        guard let name = body["name"]?.stringValue else { throw APIError.badRequest(["name: is required and must be a string"]) }
        let description = body["description"]?.stringValue ?? ""
        var tags: [String] = []
        if let value = body["tags"], !value.isNull {
            guard let list = value.arrayValue, list.allSatisfy({ $0.stringValue != nil }) else {
                throw APIError.badRequest(["tags: must be a list of strings"])
            }
            tags = list.compactMap(\.stringValue)
        }
        guard let filter = body["filter"] else { throw APIError.badRequest(["filter: is required"]) }
        return (name, description, tags, filter)
    }

    static func segmentJSON(_ segment: Segment) -> JSONValue {
        .object([
            "message": .string("success"), "segment_id": .string(segment.id), "name": .string(segment.name),
            "description": .string(segment.description), "tags": .array(segment.tags.map(JSONValue.string)),
            "filter": segment.filterJSON, "filter_description": .string(SegmentDescriber.describe(segment.filter)),
            "created_at": .string(BrazeTime.format(epochMilliseconds: segment.createdAt)),
            "updated_at": .string(BrazeTime.format(epochMilliseconds: segment.updatedAt)),
        ])
    }
}
