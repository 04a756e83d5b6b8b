import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

extension Scenarios {
    /// `--metrics-port` through the built binary: Prometheus's text at /metrics while the run goes, counters that
    /// move, 404 elsewhere, and a port in use refused before the run starts.
    @Suite(.serialized)
    struct MetricsEndpointTests {
        /// The body of `GET url`, or nil when nothing answers.
        static func get(_ url: String) async -> (status: Int, body: String)? {
            guard let (data, response) = try? await URLSession.shared.data(from: URL(string: url)!),
                  let http = response as? HTTPURLResponse else { return nil }
            return (http.statusCode, String(decoding: data, as: UTF8.self))
        }

        /// The value of metric `name` (a line `name value`) in Prometheus's text.
        static func value(_ name: String, in text: String) -> Double? {
            text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
        }

        @Test func metricsMoveWhileTheRunGoes() async throws {
            try await withRedis { server in
                let port = try EmbeddedRedis.freePort()
                let url = "http://127.0.0.1:\(port)/metrics"
                let seen = Shared<[Double]>([])
                let notFound = Shared(0)
                let result = try await runExpiryBench(["--redis", tcpURL(server), "--keys", "30000", "--rate", "5000", "--consumers", "4", "--work", "0",
                                                       "--progress", "none", "--metrics-port", String(port)], limit: .seconds(60)) { _ in
                    _ = await waitUntil(.seconds(10)) { await Self.get(url) != nil }
                    for _ in 0..<3 {
                        if let page = await Self.get(url), page.status == 200,
                           let processed = Self.value("expiry_bench_keys_processed_total", in: page.body) {
                            seen.update { $0.append(processed) }
                            #expect(page.body.contains("# TYPE expiry_bench_deadline_to_commit_seconds histogram"))
                            #expect(Self.value("expiry_bench_keys_generated_total", in: page.body) != nil)
                            #expect(page.body.contains("expiry_bench_backlog_unexpired_keys"))
                            #expect(page.body.contains("expiry_bench_chaos_crashes_total"))
                        }
                        try? await Task.sleep(for: .milliseconds(1200))
                    }
                    let status = (await Self.get("http://127.0.0.1:\(port)/"))?.status ?? 0
                    notFound.update { $0 = status }
                }
                #expect(result.status == 0, "\(describe(result))")
                #expect(result.stdout.contains("Metrics: http://127.0.0.1:\(port)/metrics"), "\(describe(result))")
                let values = seen.value
                #expect(values.count >= 2, "metrics read: \(values)")
                #expect(values == values.sorted() && (values.last ?? 0) > (values.first ?? 0), "processed did not move: \(values)")
                #expect(notFound.value == 404)
            }
        }

        @Test func aPortInUseIsRefusedBeforeTheRun() async throws {
            try await withRedis { server in
                // The test's redis-server holds its port.
                let result = try await runExpiryBench(["--redis", tcpURL(server), "--keys", "100", "--progress", "none",
                                                       "--metrics-port", String(server.port)], limit: .seconds(30))
                #expect(result.status == 64, "\(describe(result))")
                #expect(result.stderr.contains("--metrics-port \(server.port): cannot listen"), "\(describe(result))")
                let control = try await connect(server, name: "itest-observer")
                defer { control.close() }
                #expect(try await control.send("DBSIZE") == .integer(0))
            }
        }
    }
}
