// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "expiry-bench",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "expiry-bench", targets: ["expiry-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        // A TLS session beneath hiredis (which has none in 0.14): OpenSSL on one end of a socket pair.
        .target(
            name: "CTLSTunnel",
            linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]
        ),
        // The Redis client: hiredis behind one file, connections on their own threads, subscriptions, cluster
        // routing, replies, errors and retries. It knows nothing of runs, keys or reports.
        .target(
            name: "RedisClient",
            dependencies: [
                "CHiredis",
                "CTLSTunnel",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The expiry pipeline: generator, bridge, sweeper, consumers, trimmers, leases and the run's counters, on
        // the client. It knows the run's keys and settings, not how a run is configured, supervised or reported.
        .target(
            name: "ExpiryPipeline",
            dependencies: [
                "RedisClient",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The run on top of the pipeline: configuration, server set-up, supervision, verification, report, metrics.
        .target(
            name: "ExpiryBenchCore",
            dependencies: [
                "ExpiryPipeline",
                "RedisClient",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "expiry-bench",
            dependencies: [
                "ExpiryBenchCore",
                "ExpiryPipeline",
                "RedisClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // What the tests use and the product does not ship: faults on the tests' private servers.
        .target(
            name: "TestSupport",
            dependencies: ["ExpiryBenchCore"],
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "ExpiryBenchCoreTests",
            dependencies: [
                "ExpiryBenchCore", "ExpiryPipeline", "RedisClient",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "IntegrationTests",
            // The end-to-end tests run the built `expiry-bench` binary, so it must be built first.
            dependencies: ["ExpiryBenchCore", "ExpiryPipeline", "RedisClient", "TestSupport", "expiry-bench"]
        ),
    ]
)
