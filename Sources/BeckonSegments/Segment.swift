import BeckonCore

/// A saved segment: a named filter over a workspace's users.
public struct Segment: Sendable, Hashable {
    public let id: String
    public let workspaceID: Int64
    public var name: String
    /// The marketer's own description (Braze's `text_description`).
    public var description: String
    public var tags: [String]
    /// The filter as written (JSON), and parsed.
    public var filterJSON: JSONValue
    public var filter: SegmentFilter
    public let createdAt: Int64
    public var updatedAt: Int64
}

/// A problem with a segment request: not found, invalid filter, still referenced …
public struct SegmentError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable { case notFound, invalid, conflict }
    public let kind: Kind
    public let description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}
