// swift-tools-version:6.1
// Benchmarks that do not belong in the product: a separate package so the main build never
// pays for them. Build: swift build -c release --package-path Benchmarks --scratch-path Benchmarks/.build
import PackageDescription

let package = Package(
    name: "beckon-benchmarks",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ingest-ceiling", targets: ["ingest-ceiling"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
    ],
    targets: [
        .executableTarget(
            name: "ingest-ceiling",
            dependencies: [.product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        ),
    ]
)
