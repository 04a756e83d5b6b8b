import ExpiryPipeline
import RedisClient

/// `expiry-bench probe`: how late this server's own `expired` events are, and nothing else.
///
/// Writes a few hundred to a few thousand probe keys with a short TTL, spread over about a second, under a
/// namespace of their own; timestamps each one's `expired` event; waits until every event came or the window
/// passed; then removes the probes still there and puts `notify-keyspace-events` back. Nothing is touched but
/// its own keys, so it is fit for a production server.
package struct ExpiryProbeRun: Sendable {
    package struct Options: Sendable {
        package var keys = 1000
        package var ttl: Duration = .milliseconds(100)
        package var window: Duration = .seconds(10)
        package var namespace = "expiry-bench"
        package var timeout: Duration = .seconds(10)
        package init() {}

        /// Problems with the values, each naming the flag and the accepted range.
        package func problems() -> [String] {
            var found: [String] = []
            if keys < 1 || keys > 100_000 { found.append("--keys must be between 1 and 100000 for a probe (got \(keys))") }
            if ttl < .milliseconds(1) || ttl > .seconds(3600) { found.append("--ttl must be between 1ms and 1h (got \(DurationText.format(ttl)))") }
            if window < .milliseconds(100) || window > .seconds(3600) { found.append("--window must be between 100ms and 1h (got \(DurationText.format(window)))") }
            return found
        }
    }

    /// What the probe found: the JSON the checks read. What is unknown is `null`, never left out.
    package struct Report: Sendable, Encodable, Equatable {
        /// The server's settings that drive its expiry; nil where they could not be read, with the reason.
        package struct Server: Sendable, Encodable, Equatable {
            package var hz: Int?
            package var activeExpireEffort: Int?
            package var keysWithTTL: Int?
            /// Why each setting that is nil could not be read, by its JSON name (`hz`: "CONFIG GET: ERR unknown
            /// command 'CONFIG'").
            package var unknown: [String: String] = [:]
            /// The server as it names itself (`Redis`, `Valkey`) and its own version.
            package var name: String
            package var version: String

            private enum CodingKeys: String, CodingKey { case hz, activeExpireEffort, keysWithTTL, unknown, name, version }

            package func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(hz, forKey: .hz)
                try container.encode(activeExpireEffort, forKey: .activeExpireEffort)
                try container.encode(keysWithTTL, forKey: .keysWithTTL)
                try container.encode(unknown, forKey: .unknown)
                try container.encode(name, forKey: .name)
                try container.encode(version, forKey: .version)
            }

            /// "hz 10", or "hz unknown (why)".
            package func describe(_ value: Int?, as name: String, key: String) -> String {
                value.map { "\(name) \(Format.count($0))" } ?? "\(name) unknown (\(unknown[key] ?? "not read"))"
            }
        }

        package var lag: ExpiryLag
        package var ttlMs: Double
        package var server: Server
        package var redis: String

        private enum CodingKeys: String, CodingKey { case count, missing, unresolved, lagMs, windowMs, ttlMs, server, redis }

        /// `count`, `missing`, `unresolved` and `lag_ms` {`p50` … `max`} from `lag` (`null` where unknown), beside the rest.
        package func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(lag.count, forKey: .count)
            try container.encode(lag.windowWaited ? lag.missing : nil, forKey: .missing)
            try container.encode(lag.unresolved, forKey: .unresolved)
            try container.encode(lag.percentiles, forKey: .lagMs)
            try container.encode(lag.windowMs, forKey: .windowMs)
            try container.encode(ttlMs, forKey: .ttlMs)
            try container.encode(server, forKey: .server)
            try container.encode(redis, forKey: .redis)
        }
    }

    package let options: Options
    package let stop: StopSignal
    package let say: @Sendable (String) -> Void

    package init(options: Options, stop: StopSignal = StopSignal(), say: @escaping @Sendable (String) -> Void) {
        self.options = options
        self.stop = stop
        self.say = say
    }

    /// Probes the server `control` is connected to. Throws `RunError` (exit codes of the run) when it cannot.
    package func execute(on control: RedisConnection) async throws -> Report {
        let endpoint = control.endpoint
        do {
            let facts = try await Preflight.facts(control, endpoint: endpoint)
            if facts.clusterEnabled {
                throw RunError(.configuration, "probe measures one server, and \(endpoint.addressDescription) is a Redis Cluster node whose keys live on several primaries; a full run covers a cluster (expiry-bench --redis \(endpoint.description)).")
            }
            try Preflight.checkWritable(facts, endpoint: endpoint, by: .probe)
            let keyspace = RunKeyspace(namespace: options.namespace, runID: "probe-" + RunKeyspace.newRunID())
            let server = await Self.expirySettings(control, database: endpoint.database, identity: facts.server)
            let notifications = try await NotificationSettings.prepare(control: control, endpoint: endpoint, keyspace: keyspace,
                                                                               recordKey: NotificationShare.standaloneKey, timeout: options.timeout, say: say)
            EmergencyCleanup.shared.register(runID: keyspace.runID, remedy: endpoint.cleanupCommand(runID: keyspace.runID, namespace: keyspace.namespace)) {
                guard let connection = try? await RedisConnection.connect(to: endpoint, name: "expiry-bench:probe-cleanup", timeout: .seconds(1)) else { return }
                defer { connection.close() }
                _ = try? await notifications.release(on: connection)
                _ = try? await RunCleanup.removeKeys(of: keyspace, on: connection)
            }
            defer { EmergencyCleanup.shared.clear() }
            let measured: Result<ExpiryLag, Error>
            do {
                measured = .success(try await measure(on: control, keyspace: keyspace))
            } catch {
                measured = .failure(error)
            }
            do { _ = try await notifications.release(on: control) } catch {
                notifications.share?.close()
                Diagnostics.warn("could not restore notify-keyspace-events to '\(notifications.original ?? "")' on \(endpoint.addressDescription) (\(error)); set it back with: \(notifications.manualRestore(on: endpoint))")
            }
            return Report(lag: try measured.get(), ttlMs: Double(options.ttl.milliseconds), server: server, redis: endpoint.description)
        } catch let error as RedisError {
            throw RunError(error, endpoint: endpoint)
        }
    }

    /// Writes the probes, listens for their events, and removes what is left of them.
    func measure(on control: RedisConnection, keyspace: RunKeyspace) async throws -> ExpiryLag {
        let offset = try await ServerClock.offsetMilliseconds(control)
        let probes = ExpiryProbes(window: options.window)
        let layout = RunLayout(run: keyspace, tags: [nil])
        let subscription = try await RedisSubscription<ExpirationBridge.Expired>.subscribe(
            to: ExpirationBridge.channel(database: control.endpoint.database), endpoint: control.endpoint,
            name: "expiry-bench:\(keyspace.runID):subscriber", timeout: options.timeout
        ) { key in ExpirationBridge.Expired.parse(key, layout: layout, serverOffsetMilliseconds: offset) }
        let listening = Task {
            while let events = await subscription.messages.take(upTo: 4096) {
                for case .probe(let deadline, let lag) in events { probes.heard(deadline: deadline, lagMilliseconds: lag) }
            }
        }
        var written: [String] = []
        do {
            try await writeProbes(on: control, keyspace: layout.shards[0], offset: offset, probes: probes, names: &written)
            say("Wrote \(Format.count(written.count)) probe keys with a \(DurationText.format(options.ttl)) TTL; waiting up to \(DurationText.format(options.window)) past their deadlines for their expired events ...")
            while !probes.settled(serverNow: WallClock.milliseconds() + offset), !stop.isRequested {
                try await Task.sleep(for: .milliseconds(20))
            }
        } catch {
            subscription.stop()
            listening.cancel()
            await removeProbes(written, on: control)
            throw error
        }
        subscription.stop()
        _ = await listening.value
        await removeProbes(written, on: control)
        return probes.summary(serverNow: WallClock.milliseconds() + offset)
    }

    /// Writes the probes in 100 batches over about a second, adding each batch's names to `names` before it is
    /// sent (so that a failure part way still removes what was written). A write the server refuses (READONLY,
    /// NOREPLICAS, OOM ...) ends the probe with that cause: no lag is ever reported for probes not written.
    func writeProbes(on control: RedisConnection, keyspace: ShardKeyspace, offset: Int64, probes: ExpiryProbes, names: inout [String]) async throws {
        let clock = ContinuousClock()
        let start = clock.now
        let batches = min(100, options.keys)
        names.reserveCapacity(options.keys)
        for batch in 0..<batches where !stop.isRequested {
            try await clock.sleep(until: start + .milliseconds(10 * batch))
            let first = options.keys * batch / batches, end = options.keys * (batch + 1) / batches
            let deadline = WallClock.milliseconds() + offset + Int64(options.ttl.milliseconds)
            let batchNames = (first..<end).map { keyspace.probeKey(deadline: deadline, number: $0) }
            names += batchNames
            let replies = try await control.pipeline(batchNames.map { RedisCommand("SET", $0, "", "PXAT", String(deadline)) })
            for case .error(let refusal) in replies {
                throw RunError.writesRefused(refusal, by: "the probe", endpoint: control.endpoint)
            }
            probes.wrote(batchNames.count, deadline: deadline)
        }
    }

    /// Removes the probes still there (those whose event never came), a thousand at a time; best effort.
    func removeProbes(_ names: [String], on control: RedisConnection) async {
        for start in stride(from: 0, to: names.count, by: 1000) {
            _ = try? await control.send(RedisCommand(["UNLINK"] + names[start..<min(start + 1000, names.count)]))
        }
    }

    /// `hz`, `active-expire-effort` (CONFIG GET) and the keys with a TTL (INFO keyspace); nil where refused or
    /// absent, with the reason.
    static func expirySettings(_ control: RedisConnection, database: Int, identity: ServerIdentity) async -> Report.Server {
        var server = Report.Server(name: identity.name, version: identity.version)
        func config(_ name: String, key: String) async -> Int? {
            do {
                let reply = try await control.send("CONFIG", "GET", name).array ?? []
                guard reply.count == 2, let value = reply[1].string.flatMap({ Int($0) }) else {
                    server.unknown[key] = "this server has no setting \(name)"
                    return nil
                }
                return value
            } catch {
                server.unknown[key] = "CONFIG GET \(name) refused: \(Self.reason(error))"
                return nil
            }
        }
        server.hz = await config("hz", key: "hz")
        server.activeExpireEffort = await config("active-expire-effort", key: "active_expire_effort")
        do {
            let info = try await control.send(RedisCommand("INFO", "keyspace")).string ?? ""
            server.keysWithTTL = FootprintSampler.keysWithTTL(inKeyspaceInfo: info, database: database)
        } catch {
            server.unknown["keys_with_ttl"] = "INFO keyspace refused: \(Self.reason(error))"
        }
        return server
    }

    /// A failed call's cause in a few words: the server's reply when there is one.
    static func reason(_ error: Error) -> String {
        (error as? RedisError).map { $0.serverMessage ?? $0.message } ?? "\(error)"
    }
}
