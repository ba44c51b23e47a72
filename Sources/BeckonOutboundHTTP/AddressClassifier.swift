import BeckonCore

/// Names the non-public ranges an IP address falls in, so Connected Content and webhooks never
/// reach the internal network unless an operator allowlists the host.
enum AddressClassifier {
    /// Cloud instance-metadata endpoints: refused even for allowlisted hosts.
    static let metadata = ["169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "168.63.129.16"]

    private static let ranges: [(String, [String])] = [
        ("loopback", ["127.0.0.0/8", "::1/128"]),
        ("unspecified", ["0.0.0.0/8", "::/128"]),
        ("private", ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]),
        ("link-local", ["169.254.0.0/16", "fe80::/10"]),
        ("carrier-grade NAT", ["100.64.0.0/10"]),
        ("reserved", ["192.0.0.0/24", "198.18.0.0/15", "240.0.0.0/4", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"]),
        ("multicast", ["224.0.0.0/4", "ff00::/8"]),
    ]

    /// `nil` for a public address, otherwise what kind of address it is.
    static func restriction(of address: String) -> String? {
        if isMetadata(address) { return "cloud metadata" }
        if let embedded = embeddedIPv4(address) { return restriction(of: embedded) }
        for (name, blocks) in ranges where IPAllowlist.allows(address, entries: blocks) { return name }
        return nil
    }

    static func isMetadata(_ address: String) -> Bool {
        if let embedded = embeddedIPv4(address) { return isMetadata(embedded) }
        return metadata.contains { IPAllowlist.allows(address, entries: [$0]) }
    }

    /// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`) or NAT64 (`64:ff9b::a.b.c.d`) address.
    private static func embeddedIPv4(_ address: String) -> String? {
        guard address.contains(":") else { return nil }
        for prefix in ["::ffff:0:0/96", "64:ff9b::/96"] where IPAllowlist.allows(address, entries: [prefix]) {
            guard let bytes = IPAllowlist.addressBytes(address), bytes.count == 16 else { return nil }
            return bytes[12...].map(String.init).joined(separator: ".")
        }
        return nil
    }
}
