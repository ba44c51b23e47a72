// swift-tools-version:6.1
import PackageDescription

/// One set of Swift settings for every target: Swift 6 mode, explicit existentials,
/// imports visible only where they are written.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "beckon",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "beckon", targets: ["beckon"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: ["FullFoundation"]),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        // Test support only: the CA and certificates of local TLS provider stand-ins.
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
    ],
    targets: [
        // The template language: Foundation only.
        .target(name: "Liquid", swiftSettings: swiftSettings),

        // Domain values and their validation.
        .target(
            name: "BeckonCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto"), .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),

        // Store contracts, the SQL dialect, migrations, the one SQL store implementation.
        .target(
            name: "BeckonStorage",
            dependencies: [
                "BeckonCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BeckonSQLite",
            dependencies: ["BeckonStorage", "BeckonCore", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BeckonPostgres",
            dependencies: [
                "BeckonStorage", "BeckonCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Segment filters compiled to SQL, membership, daily size snapshots.
        .target(
            name: "BeckonSegments",
            dependencies: [
                "BeckonCore", "BeckonStorage",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The one outbound HTTP client: network policy (SSRF guard), allowlists, pooling, URL encoding and redaction.
        .target(
            name: "BeckonOutboundHTTP",
            dependencies: [
                "BeckonCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // SMTP sessions on SwiftNIO: STARTTLS or implicit TLS, AUTH after TLS, many messages per connection.
        .target(
            name: "BeckonSMTP",
            dependencies: [
                "BeckonOutboundHTTP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // Connected Content: fetch with cache, single-flight, limits, per-host pacing, credentials, failure log.
        .target(
            name: "BeckonConnectedContent",
            dependencies: [
                "BeckonCore", "BeckonStorage", "BeckonOutboundHTTP", "Liquid",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // One adapter per channel behind `MessageChannel`, with one outcome model.
        .target(
            name: "BeckonChannels",
            dependencies: [
                "BeckonCore", "BeckonOutboundHTTP", "Liquid",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // Campaigns (journeys next): dispatches, scheduler, trigger outbox, eligibility, variants,
        // the render context, the durable delivery queue with leases, and the workers.
        .target(
            name: "BeckonMessaging",
            dependencies: [
                "BeckonCore", "BeckonStorage", "BeckonSegments", "BeckonConnectedContent", "BeckonChannels", "Liquid",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BeckonAPI",
            dependencies: [
                "BeckonCore", "BeckonStorage", "BeckonSegments", "BeckonConnectedContent", "BeckonMessaging", "BeckonChannels", "Liquid",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BeckonServer",
            dependencies: [
                "BeckonCore", "BeckonStorage", "BeckonSQLite", "BeckonPostgres", "BeckonSegments", "BeckonAPI",
                "BeckonConnectedContent", "BeckonMessaging", "BeckonChannels", "BeckonOutboundHTTP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "beckon",
            dependencies: [
                "BeckonServer", "BeckonCore", "BeckonStorage", "BeckonSegments", "BeckonConnectedContent", "BeckonMessaging", "BeckonChannels",
                "BeckonOutboundHTTP", "Liquid",
                // Benchmarks only: the CA and TLS of the local provider stand-ins.
                "BeckonTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdHTTP2", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        // Test helpers shared by the test targets: real databases to run against.
        .target(
            name: "BeckonTestSupport",
            dependencies: [
                "BeckonStorage", "BeckonSQLite", "BeckonPostgres", "BeckonChannels", "BeckonCore",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdHTTP2", package: "hummingbird"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        .testTarget(
            name: "LiquidTests",
            dependencies: ["Liquid"],
            resources: [.copy("Resources")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BeckonSMTPTests",
            dependencies: [
                "BeckonSMTP", "BeckonChannels", "BeckonCore", "BeckonOutboundHTTP", "BeckonTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BeckonChannelsTests",
            dependencies: [
                "BeckonChannels", "BeckonCore", "BeckonTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BeckonCoreTests",
            dependencies: ["BeckonCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BeckonStorageTests",
            dependencies: [
                "BeckonCore", "BeckonStorage", "BeckonSQLite", "BeckonPostgres", "BeckonTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BeckonAPITests",
            dependencies: [
                "BeckonAPI", "BeckonServer", "BeckonConnectedContent", "BeckonMessaging", "BeckonChannels", "BeckonOutboundHTTP", "Liquid",
                "BeckonCore", "BeckonStorage", "BeckonSegments", "BeckonTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BeckonConnectedContentTests",
            dependencies: [
                "BeckonConnectedContent", "BeckonOutboundHTTP", "BeckonCore", "BeckonStorage", "BeckonTestSupport", "Liquid",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BeckonSegmentsTests",
            dependencies: [
                "BeckonCore", "BeckonStorage", "BeckonSegments", "BeckonTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BeckonServerTests",
            dependencies: [
                "beckon", "BeckonServer", "BeckonCore", "BeckonStorage", "BeckonTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
