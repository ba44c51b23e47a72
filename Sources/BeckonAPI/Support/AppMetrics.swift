import Metrics

/// Every metric Beckon's API records, named in one place (Prometheus names, exported at `/metrics`).
enum AppMetrics {
    /// Objects accepted by `/users/track` and the SDK endpoint, by kind (`attributes`, `events`, `purchases`).
    static func ingested(_ kind: String, _ count: Int) {
        guard count > 0 else { return }
        Counter(label: "beckon_ingested_objects_total", dimensions: [("kind", kind)]).increment(by: count)
    }

    /// Objects rejected by validation or because their user does not exist, by kind.
    static func rejected(_ kind: String, _ count: Int) {
        guard count > 0 else { return }
        Counter(label: "beckon_rejected_objects_total", dimensions: [("kind", kind)]).increment(by: count)
    }
}
