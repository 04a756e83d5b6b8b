import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline

extension Scenarios {
    /// The built binary as a user drives it: Ctrl-C in the middle of a run, `--keep` then `inspect` and `cleanup`,
    /// the files written beside the report, and the report's charts with and without colour.
    @Suite(.serialized)
    struct SignalAndToolsTests {
        /// A run that lasts a little over a second (rate-limited), so that the per-second series has a sample.
        func oneSecondRun(_ server: EmbeddedRedis, _ extra: [String] = []) -> [String] {
            ["--redis", tcpURL(server), "--keys", "3000", "--rate", "2000", "--consumers", "4", "--work", "1ms",
             "--progress", "none", "--timeout", "5s", "--stall-timeout", "10s", "--max-duration", "30s"] + extra
        }

        static let chartTitles = ["Throughput (keys/s) over time", "Latency, deadline → commit"]

        // MARK: - SIGINT

        @Test func sigintMidRunExits130CleansUpAndRestoresTheSetting() async throws {
            try await withRedis { server in
                let control = try await connect(server, name: "itest-observer")
                defer { control.close() }
                try await control.send("SET", "user:keep-me", "mine")
                try await control.send("CONFIG", "SET", "notify-keyspace-events", "Kg")
                let settingBefore = try await notifyKeyspaceEvents(control)
                let runID = "sigint1"
                let sawConsumer = Shared(false)
                let result = try await runExpiryBench(
                    ["--redis", tcpURL(server), "--keys", "200000", "--consumers", "4", "--work", "1ms", "--run-id", runID,
                     "--progress", "none", "--timeout", "5s", "--stall-timeout", "20s"], limit: .seconds(60)
                ) { process in
                    // Interrupt once the consumers are connected (the run is under way), half a second later.
                    let found = await waitUntil(.seconds(20)) {
                        ((try? await clientIDs(named: "expiry-bench:\(runID):consumer-0", on: control)) ?? []).isEmpty == false
                    }
                    sawConsumer.update { $0 = found }
                    try? await Task.sleep(for: .milliseconds(500))
                    kill(process.processIdentifier, SIGINT)
                }
                #expect(sawConsumer.value, "the run never connected its consumers")
                #expect(result.status == 130, "\(describe(result))")
                #expect(result.stdout.contains("Verdict: interrupted"), "stdout: \(result.stdout)")
                #expect(result.stdout.contains("Final statistics"), "no partial report: \(result.stdout)")
                // Everything the run wrote is gone, the user's key stays, and the setting is the user's again.
                #expect(try await scanKeys(control, match: "expiry-bench:\(runID):*") == [])
                #expect(try await control.send("GET", "user:keep-me") == .bulk("mine"))
                #expect(try await control.send("DBSIZE") == .integer(1))
                #expect(try await notifyKeyspaceEvents(control) == settingBefore)
                #expect(settingBefore.contains("K") && settingBefore.contains("g") && !settingBefore.contains("x"))
            }
        }

        // MARK: - inspect and cleanup

        /// The cleanup command a kept run prints names its server (never the password, which it says how to give):
        /// pasted as printed, it removes that run, on that server.
        @Test func thePrintedCleanupCommandActsOnTheRunServer() async throws {
            let password = "Cl34nup-S3cret"
            try await withRedis(extraArguments: ["--requirepass", password]) { server in
                let control = try await connect(server, name: "itest-observer")
                defer { control.close() }
                let run = try await runExpiryBench(oneSecondRun(server, ["--keep", "--run-id", "kept12"]), environment: ["REDIS_PASSWORD": password])
                #expect(run.status == 0, "\(describe(run))")
                let line = try #require(run.stdout.split(whereSeparator: \.isNewline).first { $0.contains("remove them with: ") }, "\(run.stdout)")
                let command = String(line[line.range(of: "remove them with: ")!.upperBound...])
                #expect(command.hasPrefix("expiry-bench cleanup --run-id kept12 --redis \(tcpURL(server)) (with the password given as for the run"), "\(command)")
                #expect(!run.combined.contains(password))
                #expect(try await !scanKeys(control, match: "expiry-bench:kept12:*").isEmpty)
                let words = command.prefix { $0 != "(" }.split(separator: " ").dropFirst().map(String.init)
                let cleanup = try await runExpiryBench(words, environment: ["REDIS_PASSWORD": password], limit: .seconds(20))
                #expect(cleanup.status == 0, "\(describe(cleanup))")
                #expect(try await scanKeys(control, match: "expiry-bench:*") == [])
                #expect(try await notifyKeyspaceEvents(control) == "")
            }
        }

        @Test func keptRunIsInspectedListedAndCleanedUp() async throws {
            try await withRedis { server in
                let control = try await connect(server, name: "itest-observer")
                defer { control.close() }
                let url = tcpURL(server)
                try await control.send("SET", "user:profile", "ada")
                // Another run's key under the same namespace: cleanup of one run must leave it alone.
                try await control.send("SET", "expiry-bench:other:k:1", "theirs")

                let run = try await runExpiryBench(["--redis", url, "--keys", "3000", "--consumers", "4", "--work", "1ms", "--keep",
                                                    "--run-id", "kept7", "--progress", "none", "--timeout", "5s", "--stall-timeout", "10s"])
                #expect(run.status == 0, "\(describe(run))")
                #expect(run.stdout.contains("expiry-bench cleanup --run-id kept7"), "stdout: \(run.stdout)")
                let kept = try await scanKeys(control, match: "expiry-bench:kept7:*")
                #expect(kept.contains("expiry-bench:kept7:stream"), "kept: \(kept)")

                let inspect = try await runExpiryBench(["inspect", "--redis", url, "--run-id", "kept7"], limit: .seconds(20))
                #expect(inspect.status == 0, "\(describe(inspect))")
                #expect(inspect.stdout.contains("expiry-bench:kept7:stream"), "stdout: \(inspect.stdout)")
                #expect(inspect.stdout.contains("group workers"), "stdout: \(inspect.stdout)")
                #expect(inspect.stdout.contains("consumer-0") && inspect.stdout.contains("consumer-3"), "stdout: \(inspect.stdout)")
                #expect(inspect.stdout.contains("processed 3000"), "stdout: \(inspect.stdout)")

                let list = try await runExpiryBench(["inspect", "--redis", url, "--list"], limit: .seconds(20))
                #expect(list.status == 0, "\(describe(list))")
                #expect(list.stdout.contains("kept7"), "stdout: \(list.stdout)")

                let missing = try await runExpiryBench(["inspect", "--redis", url, "--run-id", "nope"], limit: .seconds(20))
                #expect(missing.status == 64, "\(describe(missing))")
                #expect(missing.stderr.contains("nope"), "stderr: \(missing.stderr)")

                let cleanup = try await runExpiryBench(["cleanup", "--redis", url, "--run-id", "kept7"], limit: .seconds(20))
                #expect(cleanup.status == 0, "\(describe(cleanup))")
                // (Not an exact count: lease keys and commit records carry short TTLs and may expire meanwhile.)
                #expect(cleanup.stdout.contains("Removed ") && cleanup.stdout.contains("kept7"), "stdout: \(cleanup.stdout)")
                #expect(try await scanKeys(control, match: "expiry-bench:kept7:*") == [])
                #expect(try await control.send("GET", "user:profile") == .bulk("ada"))
                #expect(try await control.send("GET", "expiry-bench:other:k:1") == .bulk("theirs"))
                #expect(try await control.send("DBSIZE") == .integer(2))

                // The run is gone from the list too.
                let after = try await runExpiryBench(["inspect", "--redis", url, "--list"], limit: .seconds(20))
                #expect(after.status == 0, "\(describe(after))")
                #expect(!after.stdout.contains("kept7"), "stdout: \(after.stdout)")
            }
        }

        /// A run id belongs to one run: of two drivers started at the same instant with one --run-id, one runs and
        /// the other exits 64 touching nothing of it; a second driver and `cleanup` are refused while the run goes.
        @Test func runIDBelongsToOneRun() async throws {
            try await withRedis { server in
                let url = tcpURL(server)
                func driver(_ id: String, keys: String = "2000", rate: String = "0") async throws -> ProgramResult {
                    try await runExpiryBench(["--redis", url, "--keys", keys, "--rate", rate, "--consumers", "4", "--work", "1ms", "--run-id", id,
                                              "--progress", "none", "--timeout", "5s", "--stall-timeout", "10s"], limit: .seconds(60))
                }
                for attempt in 0..<5 {
                    async let first = driver("twin\(attempt)")
                    async let second = driver("twin\(attempt)")
                    let results = try await [first, second]
                    let statuses = results.map(\.status).sorted()
                    #expect(statuses == [0, 64], "attempt \(attempt): \(results.map(describe))")
                    if let winner = results.first(where: { $0.status == 0 }) { #expect(winner.stdout.contains("Verdict: exactly-once")) }
                    if let loser = results.first(where: { $0.status == 64 }) {
                        #expect(loser.stderr.contains("still running") || loser.stderr.contains("claimed by another driver"), "\(describe(loser))")
                        #expect(!loser.stderr.contains("cleanup"), "a live run is not 'kept': \(describe(loser))")
                    }
                }
                // While a run goes: a second driver and cleanup are refused, and say it is still running.
                async let long = driver("live1", keys: "6000", rate: "1500")
                try await Task.sleep(for: .seconds(2))
                let twin = try await driver("live1")
                #expect(twin.status == 64 && twin.stderr.contains("still running"), "\(describe(twin))")
                let cleanup = try await runExpiryBench(["cleanup", "--redis", url, "--run-id", "live1"], limit: .seconds(20))
                #expect(cleanup.status == 64 && cleanup.stderr.contains("still running") && cleanup.stderr.contains("--force"), "\(describe(cleanup))")
                let ran = try await long
                #expect(ran.status == 0, "the live run was disturbed: \(describe(ran))")
                let control = try await connect(server, name: "itest-observer")
                defer { control.close() }
                #expect(try await control.send("DBSIZE") == .integer(0))
            }
        }

        // MARK: - Files and charts

        @Test func csvAndHdrLogAreWrittenAndThePlainReportHasChartsWithoutColour() async throws {
            try await withRedis { server in
                let csv = temporaryPath("series.csv")
                let hlog = temporaryPath("latency.hlog")
                let json = temporaryPath("report.json")
                defer {
                    for path in [csv, hlog, json] { try? FileManager.default.removeItem(atPath: path) }
                }
                let result = try await runExpiryBench(oneSecondRun(server, ["--csv", csv, "--hdr-log", hlog, "--json", json]))
                #expect(result.status == 0, "\(describe(result))")
                let report = try readJSONReport(json)

                // The per-second series: the documented header, then one numeric line per second of the run.
                let lines = try String(contentsOfFile: csv, encoding: .utf8).split(whereSeparator: \.isNewline).map(String.init)
                #expect(lines.first == "elapsed_s,processed,rate_keys_per_s,unexpired,pending,stream_length,p99_ms", "csv: \(lines)")
                #expect(lines.count >= 2, "no data line in the CSV: \(lines)")
                for line in lines.dropFirst() {
                    let fields = line.split(separator: ",", omittingEmptySubsequences: false)
                    #expect(fields.count == 7, "line: \(line)")
                    #expect(fields.allSatisfy { Double($0) != nil }, "a non-numeric field in: \(line)")
                }
                if let last = lines.last?.split(separator: ","), last.count == 7, let processed = Int(last[1]) {
                    #expect(processed > 0 && processed <= 3000, "processed in the last sample: \(processed)")
                }

                // The latency histogram: HdrHistogram's interval log (README: `.hlog`, V2 compressed encoding), one
                // interval a second: in order, covering the run, their largest maximum the report's.
                let log = try String(contentsOfFile: hlog, encoding: .utf8)
                let logLines = log.split(whereSeparator: \.isNewline).map(String.init)
                #expect(logLines.first == "#[Histogram log format version 1.3]", "hlog: \(log.prefix(300))")
                #expect(logLines.contains { $0.hasPrefix("#[StartTime: ") }, "hlog: \(log.prefix(300))")
                #expect(logLines.contains("\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""),
                        "hlog: \(log.prefix(400))")
                let intervals = logLines.filter { !$0.hasPrefix("#") && !$0.hasPrefix("\"") }
                #expect(intervals.count >= 2, "one interval a second over a run of more than a second: \(intervals)")
                var starts: [Double] = [], lengths: [Double] = [], maxima: [Double] = []
                for interval in intervals {
                    let fields = interval.split(separator: ",").map(String.init)
                    try #require(fields.count == 4, "interval line: \(interval)")
                    starts.append(try #require(Double(fields[0])))
                    lengths.append(try #require(Double(fields[1])))
                    maxima.append(try #require(Double(fields[2])))
                    let bytes = try #require(Data(base64Encoded: fields[3]).map { [UInt8]($0) }, "the histogram is not base64")
                    try #require(bytes.count > 10, "histogram of \(bytes.count) bytes")
                    let cookie = bytes[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                    let length32 = bytes[4..<8].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                    #expect(cookie == 0x1c84_9314, "not HdrHistogram's V2 compressed encoding: cookie \(String(cookie, radix: 16))")
                    #expect(Int(length32) == bytes.count - 8, "compressed length \(length32), \(bytes.count - 8) bytes follow")
                    #expect(bytes[8] == 0x78, "not a zlib stream")
                }
                let duration = try #require((report["duration_sec"] as? NSNumber)?.doubleValue)
                let reportMax = try #require(((report["latency_ms"] as? [String: Any])?["max"] as? NSNumber)?.doubleValue)
                #expect(starts.first == 0 && starts == starts.sorted(), "interval starts: \(starts)")
                #expect(lengths.dropLast().allSatisfy { abs($0 - 1) < 0.1 }, "intervals of a second: \(lengths)")
                #expect(lengths.reduce(0, +) >= duration - 0.05, "the intervals (\(lengths.reduce(0, +)) s) cover the run (\(duration) s)")
                #expect(abs((maxima.max() ?? 0) - reportMax) < 0.011, "largest Interval_Max \(maxima.max() ?? 0) ms, report max \(reportMax) ms")

                // stdout is a file here, not a terminal: the charts are drawn, without colour.
                for title in Self.chartTitles { #expect(result.stdout.contains(title), "no '\(title)' in: \(result.stdout)") }
                #expect(!result.stdout.contains("\u{1B}["), "an escape sequence in a report written to a file")
            }
        }

        @Test func noColorLeavesTheChartsUncoloured() async throws {
            try await withRedis { server in
                // Not a terminal, with NO_COLOR.
                let plain = try await runExpiryBench(oneSecondRun(server), environment: ["NO_COLOR": "1"])
                #expect(plain.status == 0, "\(describe(plain))")
                for title in Self.chartTitles { #expect(plain.stdout.contains(title), "no '\(title)' in: \(plain.stdout)") }
                #expect(!plain.stdout.contains("\u{1B}["))

                // On a terminal the charts are coloured...
                let coloured = try await runExpiryBenchOnTerminal(oneSecondRun(server))
                #expect(coloured.status == 0, "\(describe(coloured))")
                for title in Self.chartTitles { #expect(coloured.stdout.contains(title), "no '\(title)' in: \(coloured.stdout)") }
                #expect(coloured.stdout.contains("\u{1B}[36m"), "no colour on a terminal: \(coloured.stdout.debugDescription)")

                // ... except with NO_COLOR set.
                let terminalNoColour = try await runExpiryBenchOnTerminal(oneSecondRun(server), environment: ["NO_COLOR": "1"])
                #expect(terminalNoColour.status == 0, "\(describe(terminalNoColour))")
                for title in Self.chartTitles { #expect(terminalNoColour.stdout.contains(title), "no '\(title)' in: \(terminalNoColour.stdout)") }
                #expect(!terminalNoColour.stdout.contains("\u{1B}["), "colour despite NO_COLOR: \(terminalNoColour.stdout.debugDescription)")
            }
        }
    }
}
