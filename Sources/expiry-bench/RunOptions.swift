import ArgumentParser
import ExpiryBenchCore
import Foundation
import ExpiryPipeline
import RedisClient

/// The defaults of every option, declared once, in `RunConfiguration`.
let runDefaults = RunConfiguration()

/// Where the server is and how to reach it; shared by `run`, `inspect` and `cleanup`.
struct ServerOptions: ParsableArguments {
    @Option(name: .customLong("redis"), help: ArgumentHelp(
        "The server: redis://[user:password@]host:port[/db], rediss://... for TLS, redis-sentinel://host[:port],...[/db]#name for a primary behind Sentinel, unix:///path/to/socket[?db=N], or 'spawn' for a private redis-server (run and capacity only). For a run, with the default (exactly redis://127.0.0.1:6379), a private server is started when nothing listens there; the other commands exit 69.",
        valueName: "url"))
    var redis: String = "redis://127.0.0.1:6379"

    @Option(name: .customLong("password-file"), help: ArgumentHelp("Read the password from the first line of this file when --redis has none. Otherwise REDIS_PASSWORD is used, if set.", valueName: "path"))
    var passwordFile: String?

    @Option(help: ArgumentHelp("How long connecting or one call to Redis may take, and how long Redis may stay unreachable, before the run gives up.", valueName: "duration"))
    var timeout = DurationArgument(runDefaults.timeout)

    @Flag(help: "Reach the server over TLS (as a rediss:// URL does); its certificate is verified against the CA and the host name.")
    var tls = false
    @Option(help: ArgumentHelp("The CA certificates (PEM) to verify the server's certificate with; default: the system's.", valueName: "file"))
    var cacert: String?
    @Option(help: ArgumentHelp("A client certificate (PEM), for servers with tls-auth-clients.", valueName: "file"))
    var cert: String?
    @Option(help: ArgumentHelp("The client certificate's private key (PEM).", valueName: "file"))
    var key: String?
    @Option(help: ArgumentHelp("The server name sent in the TLS handshake and checked against its certificate; default: the URL's host.", valueName: "name"))
    var sni: String?
    @Flag(help: "Do not verify the server's certificate (TLS still encrypts, but anyone in between can read it). Never in production.")
    var insecure = false

    /// Called once, by the parser: the one place to warn about --insecure.
    func validate() throws {
        if insecure, case .url(let endpoint, _) = try resolved() {
            FileHandle.standardError.write(Data("expiry-bench: warning: --insecure: the server's certificate is not verified, so anyone between here and \(endpoint.addressDescription) can read and change the traffic; give --cacert FILE instead outside a test\n".utf8))
        }
    }

    func resolved() throws -> RunConfiguration.Server {
        if redis == "spawn" {
            if tls || tlsOptionsGiven { throw ValidationError("--redis spawn starts a plain server: TLS options apply to a --redis URL") }
            return .spawn
        }
        var endpoint: RedisEndpoint
        do {
            endpoint = try RedisEndpoint(url: redis)
        } catch {
            throw ValidationError("--redis: \(error.description)")
        }
        try applyTLS(to: &endpoint)
        if endpoint.password == nil {
            if let passwordFile {
                guard let text = try? String(contentsOfFile: passwordFile, encoding: .utf8) else {
                    throw ValidationError("--password-file: cannot read \(passwordFile)")
                }
                endpoint.password = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
            } else if let password = ProcessInfo.processInfo.environment["REDIS_PASSWORD"], !password.isEmpty {
                endpoint.password = password
            }
        }
        return .url(endpoint, spawnIfAbsent: redis == "redis://127.0.0.1:6379" && endpoint.tls == nil)
    }

    private var tlsOptionsGiven: Bool { cacert != nil || cert != nil || key != nil || sni != nil || insecure }

    /// `--tls` and its options onto the endpoint; TLS options without TLS are refused rather than ignored (a user
    /// who gave --cacert expects their password not to cross the network in the clear).
    private func applyTLS(to endpoint: inout RedisEndpoint) throws {
        if tls || tlsOptionsGiven, case .unix = endpoint.address {
            throw ValidationError("TLS options apply to a TCP server (redis:// or rediss://), not to a unix socket")
        }
        if tls, endpoint.tls == nil { endpoint.tls = TLSSettings() }
        guard var settings = endpoint.tls else {
            if tlsOptionsGiven { throw ValidationError("--cacert, --cert, --key, --sni and --insecure need TLS: use a rediss:// URL or add --tls") }
            return
        }
        if (cert == nil) != (key == nil) { throw ValidationError("--cert and --key go together: give the client certificate and its private key") }
        for (flag, path) in [("--cacert", cacert), ("--cert", cert), ("--key", key)] {
            if let path, !FileManager.default.isReadableFile(atPath: path) { throw ValidationError("\(flag): cannot read \(path)") }
        }
        settings.caFile = cacert
        settings.certificateFile = cert
        settings.keyFile = key
        settings.serverName = sni
        settings.insecure = insecure
        if insecure, cacert != nil { throw ValidationError("--insecure skips verification: --cacert would be ignored; give one of them") }
        endpoint.tls = settings
    }
}

/// What the run generates and how consumers work on it.
struct WorkloadOptions: ParsableArguments {
    @Option(help: "Keys to generate (default \(runDefaults.keys); with --duration or staged --rate, they decide).") var keys: Int?
    @Option(help: "Consumers in the group, each on its own connection.") var consumers: Int = runDefaults.consumers
    @Option(help: ArgumentHelp("Time to live of each key: its deadline (a duration: 250ms, 2s, 1m).", valueName: "duration"))
    var ttl = DurationArgument(runDefaults.ttl)
    @Option(help: ArgumentHelp("Simulated work per key (an async sleep): 5ms, 1s...; 0 for none.", valueName: "duration"))
    var work = DurationArgument(runDefaults.work)
    @Option(name: .customLong("lock-ttl"), help: ArgumentHelp("Time to live of a consumer's per-key lock (a duration: 500ms, 2s).", valueName: "duration"))
    var lockTTL = DurationArgument(runDefaults.lockTTL)
    @Option(help: ArgumentHelp("Keys generated per second, open loop; 0 for as fast as the pipeline takes them. Or stages, each a rate held for a duration: 2000:10s,8000:10s,12000:10s (the run then generates their keys, and reports each stage).", valueName: "keys/s | rate:duration,..."))
    var rate: String = "0"
    @Option(help: ArgumentHelp("Generate at --rate for this long instead of a number of keys (--rate × duration keys), then drain and verify.", valueName: "duration"))
    var duration: DurationArgument?
    @Option(help: "Entries a consumer reads at once at most (default: as many as fit in half the lock TTL, at most 256; 256 with --work 0).")
    var batch: Int?
    @Option(help: "Keys of a batch a consumer works on at once.") var concurrency: Int = runDefaults.concurrency
    @Option(name: .customLong("commit-every"), help: ArgumentHelp("Commit a batch's finished keys this often while the rest is still being worked on.", valueName: "duration"))
    var commitEvery = DurationArgument(runDefaults.commitEvery)
    @Option(name: .customLong("max-outstanding"), help: "Keys generated but not yet processed, at most, before the generator waits (0: automatic).")
    var maxOutstanding: Int = runDefaults.maxOutstanding
    @Option(name: .customLong("background-keys"), help: "Keys with a 1 h TTL written under the run's namespace first, to reproduce a real cache's expiry lag.")
    var backgroundKeys: Int = runDefaults.backgroundKeys

    func validate() throws {
        let parsed: (rate: Int, stages: [RateSchedule.Stage])
        do { parsed = try RateSchedule.parse(rate) } catch { throw ValidationError(error.description) }
        if duration != nil, !parsed.stages.isEmpty { throw ValidationError("--duration and a staged --rate both set the run's length: give one (the stages last \(DurationText.format(parsed.stages.reduce(.zero) { $0 + $1.duration })))") }
        if duration != nil, parsed.rate <= 0 { throw ValidationError("--duration needs --rate N (keys/s): the run generates N × duration keys") }
        if let duration, duration.duration <= .zero { throw ValidationError("--duration must be longer than 0") }
        if keys != nil, duration != nil || !parsed.stages.isEmpty { throw ValidationError("--keys cannot be given with --duration or a staged --rate: they decide how many keys the run generates") }
    }

    func apply(to configuration: inout RunConfiguration) {
        let parsed = (try? RateSchedule.parse(rate)) ?? (rate: 0, stages: [])
        configuration.rate = parsed.rate
        configuration.stages = parsed.stages
        if !parsed.stages.isEmpty {
            configuration.keys = RateSchedule(stages: parsed.stages).keys
        } else if let duration {
            configuration.keys = Int((Double(parsed.rate) * duration.duration.seconds).rounded())
        } else {
            configuration.keys = keys ?? runDefaults.keys
        }
        configuration.consumers = consumers
        configuration.ttl = ttl.duration
        configuration.work = work.duration
        configuration.lockTTL = lockTTL.duration
        configuration.batch = batch
        configuration.concurrency = concurrency
        configuration.commitEvery = commitEvery.duration
        configuration.maxOutstanding = maxOutstanding
        configuration.backgroundKeys = backgroundKeys
    }
}

/// How the pipeline protects keys, and the faults it can be made to survive.
struct ReliabilityOptions: ParsableArguments {
    @Option(help: "The deadline sweeper: on makes Redis expire keys that its own expiry has not reached by their deadline + --grace (so their expired events carry them), and rescues keys whose event was lost; off trusts Redis's expiry and notifications alone.")
    var sweeper: Switch = runDefaults.sweeper ? .on : .off
    @Option(help: ArgumentHelp("How long past its deadline a key may wait for Redis to expire it before the sweeper touches it (which makes Redis expire it and raise its event).", valueName: "duration"))
    var grace = DurationArgument(runDefaults.grace)
    @Option(name: .customLong("rescue-after"), help: ArgumentHelp("How long after the sweeper's touch a key whose expired event never came (a lost notification) waits before the sweeper publishes it itself.", valueName: "duration"))
    var rescueAfter = DurationArgument(runDefaults.rescueAfter)
    @Option(name: .customLong("probe-window"), help: ArgumentHelp("How long after its deadline a probe key's expired event may come before the probe counts as missing (Redis's own expiry lag).", valueName: "duration"))
    var probeWindow = DurationArgument(runDefaults.probeWindow)
    @Option(name: .customLong("fail-rate"), help: "Probability that a key's simulated work fails; a failed key is redelivered, and dead-lettered after --max-deliveries.")
    var failRate: Double = runDefaults.failRate
    @Option(name: .customLong("max-deliveries"), help: "Deliveries after which a failing key goes to the dead-letter stream.")
    var maxDeliveries: Int = runDefaults.maxDeliveries
    @Option(help: ArgumentHelp("Inject faults while the run goes, repeatable or comma-separated: consumers (what --chaos alone means: consumer crashes and stalls past the lock TTL, subscriber disconnections, every 0.2 to 1 s) or failover (one failover at a random moment, when 20 to 50 % of the keys are generated: asked of the sentinels of a redis-sentinel:// URL, or of a replica in a cluster).", valueName: "faults"))
    var chaos: [ChaosArgument] = []
    @Option(name: .customLong("wait-replicas"), help: "Every write of the pipeline (generated keys, publishes, commits) counts as done only once this many replicas of its primary hold it (WAIT), and is tried again otherwise: a failover to a replica then loses nothing. 0: Redis's asynchronous replication.")
    var waitReplicas: Int = runDefaults.waitReplicas

    func apply(to configuration: inout RunConfiguration) {
        configuration.sweeper = sweeper == .on
        configuration.grace = grace.duration
        configuration.rescueAfter = rescueAfter.duration
        configuration.probeWindow = probeWindow.duration
        configuration.failRate = failRate
        configuration.maxDeliveries = maxDeliveries
        configuration.chaos = chaos.contains { $0.faults.contains(.consumers) }
        configuration.chaosFailover = chaos.contains { $0.faults.contains(.failover) }
        configuration.waitReplicas = waitReplicas
    }
}

/// The run's identity, its limits, and what it leaves behind.
struct RunControlOptions: ParsableArguments {
    @Option(help: "Prefix of every key of the run: <namespace>:<run id>:...") var namespace: String = runDefaults.namespace
    @Option(name: .customLong("run-id"), help: "The run's id (default: a new one). Consumer processes join the run with the same id.") var runID: String?
    @Option(help: ArgumentHelp("What this process does: all (everything), driver (generator, bridge, sweeper, report and verdict; --consumers 0 for none of its own), or consumer (consumers that join the run --run-id from any machine and leave when it is over).", valueName: "role"))
    var role = RoleArgument(runDefaults.role)
    @Option(help: "Shards of the run, each with its own stream, due index and processed set (default: 1 on a single server, 3 per primary in a cluster).")
    var shards: Int?
    @Option(name: .customLong("join-timeout"), help: ArgumentHelp("How long a consumer process waits for its run to start.", valueName: "duration"))
    var joinTimeout = DurationArgument(runDefaults.joinTimeout)
    @Flag(help: "Keep the run's keys at the end (for inspect); they are removed otherwise.") var keep = false
    @Flag(help: "Go on even if the run may not fit under the server's maxmemory.") var force = false
    @Option(name: .customLong("late-after"), help: ArgumentHelp("A key committed more than this after its deadline counts as late (missed its deadline).", valueName: "duration"))
    var lateAfter = DurationArgument(runDefaults.lateAfter)
    @Option(name: .customLong("max-duration"), help: ArgumentHelp("End the run with a failed verdict if it is still going after this long (0: no limit).", valueName: "duration"))
    var maxDuration = DurationArgument(runDefaults.maxDuration)
    @Option(name: .customLong("stall-timeout"), help: ArgumentHelp("End with a failed verdict when nothing progresses for this long.", valueName: "duration"))
    var stallTimeout = DurationArgument(runDefaults.stallTimeout)
    @Option(name: .customLong("threshold"), help: ArgumentHelp("A pass/fail criterion checked at the end, repeatable: p50, p90, p99, p999 or max (deadline → commit) below a duration ('p99<250ms', 'max<=2s'), or lost, duplicates or late as a count or a percentage of the keys ('lost==0', 'late<1%'). A run that verifies but fails one exits 99.", valueName: "expr"))
    var thresholds: [String] = []
    @Flag(name: .customLong("abort-on-fail"), help: "Check the latency thresholds every second while the run goes, and stop the run (exit 99) as soon as one fails.")
    var abortOnFail = false

    func validate() throws {
        for text in thresholds {
            do { _ = try Threshold(parsing: text) } catch { throw ValidationError(error.description) }
        }
        if abortOnFail && thresholds.isEmpty { throw ValidationError("--abort-on-fail needs at least one --threshold") }
    }

    func apply(to configuration: inout RunConfiguration) {
        configuration.thresholds = thresholds.compactMap { try? Threshold(parsing: $0) }
        configuration.abortOnFail = abortOnFail
        configuration.namespace = namespace
        configuration.runID = runID
        configuration.role = role.value
        configuration.shards = shards
        configuration.joinTimeout = joinTimeout.duration
        configuration.keep = keep
        configuration.force = force
        configuration.lateAfter = lateAfter.duration
        configuration.maxDuration = maxDuration.duration
        configuration.stallTimeout = stallTimeout.duration
    }
}

/// `--role all|driver|consumer`.
typealias RoleArgument = CaseArgument<RunConfiguration.Role>

enum Switch: String, ExpressibleByArgument, CaseIterable {
    case on, off
}

/// What the run writes besides the terminal report.
struct OutputOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Write the report as JSON to this file.", valueName: "path")) var json: String?
    @Option(help: ArgumentHelp("Write the per-second series (processed, rate, unexpired, pending, stream length, p99) as CSV to this file.", valueName: "path"))
    var csv: String?
    @Option(name: .customLong("hdr-log"), help: ArgumentHelp("Write the latency histogram (µs) in HdrHistogram's interval log format (.hlog) to this file, for HdrHistogram's tools.", valueName: "path"))
    var hdrLog: String?
    @Option(name: .customLong("metrics-port"), help: ArgumentHelp("Serve the run's figures as Prometheus metrics at http://<metrics-host>:<port>/metrics while it runs (rate, processed, backlog, latency histogram, faults); off by default.", valueName: "port"))
    var metricsPort: Int?
    @Option(name: .customLong("metrics-host"), help: ArgumentHelp("The address --metrics-port listens on: 127.0.0.1 for this machine only, 0.0.0.0 for every interface.", valueName: "address"))
    var metricsHost: String = "127.0.0.1"
    @Option(help: "Live progress: auto (one updating line on a terminal, plain lines otherwise), plain, or none.")
    var progress: RunConfiguration.Progress = runDefaults.progress
    @Option(name: .customLong("log-level"), help: "Diagnostics on stderr: trace, debug, info, notice, warning, error or critical.")
    var logLevel: LogLevelArgument = LogLevelArgument(.warning)

    /// Output files are checked before the run, not after minutes of it.
    func validate() throws {
        for (flag, path) in [("--json", json), ("--csv", csv), ("--hdr-log", hdrLog)] {
            try Self.checkWritable(path, flag: flag)
        }
        if let metricsPort, !(1...65535).contains(metricsPort) { throw ValidationError("--metrics-port must be between 1 and 65535 (got \(metricsPort))") }
    }

    /// Throws a `ValidationError` naming `flag` when a file cannot be written at `path` (nil: nothing to check).
    static func checkWritable(_ path: String?, flag: String) throws {
        guard let path else { return }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw ValidationError("\(flag): \(path) is a directory; give a file name")
        }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("\(flag): the directory \(directory) does not exist")
        }
        guard FileManager.default.isWritableFile(atPath: directory) else {
            throw ValidationError("\(flag): the directory \(directory) is not writable")
        }
    }
}
