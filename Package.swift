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
    ],
    targets: [
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        .target(
            name: "ExpiryBenchCore",
            dependencies: [
                "CHiredis",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(
            name: "expiry-bench",
            dependencies: [
                "ExpiryBenchCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "ExpiryBenchCoreTests",
            dependencies: ["ExpiryBenchCore"]
        ),
        .testTarget(
            name: "IntegrationTests",
            // The end-to-end tests run the built `expiry-bench` binary, so it must be built first.
            dependencies: ["ExpiryBenchCore", "expiry-bench"]
        ),
    ]
)
