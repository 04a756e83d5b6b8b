import ExpiryPipeline

/// Renders the final report for the terminal: totals, latency percentiles, the per-consumer table, the verdict.
package enum ReportPrinter {
    /// The report, with the throughput and latency charts when `outcome` and `charts` are given.
    package static func render(_ report: RunReport, outcome: RunOutcome? = nil, charts: TerminalCharts? = nil) -> String {
        let r = report
        var lines = [""] + statisticsLines(r) + deliveryLines(r) + latencyLines(r)
        let stages = stageLines(r)
        if !stages.isEmpty { lines.append(""); lines.append(contentsOf: stages) }
        if let outcome, let charts { lines.append(contentsOf: chartLines(outcome, charts)) }
        lines.append("")
        if r.shards.count > 1 {
            lines.append(contentsOf: shardTable(r.shards))
            lines.append("")
        }
        if r.consumerProcesses > 0 {
            lines.append("Consumer processes: \(r.consumerProcesses) joined, \(r.consumerProcessesReported) reported their figures"
                + (r.consumerProcessesReported < r.consumerProcesses ? " (latency and delivery counters lack the others; commits and the verdict do not)." : "."))
        }
        lines.append(contentsOf: consumerTable(r.consumers))
        lines.append("")
        lines.append(contentsOf: verdictLines(r))
        lines.append(contentsOf: thresholdLines(r))
        return lines.joined(separator: "\n")
    }

    /// Where the run was, how many keys, how fast, and how they reached the stream.
    static func statisticsLines(_ r: RunReport) -> [String] {
        var lines = ["Final statistics (run \(r.runID) on \(r.redis), \(r.server))"]
        lines.append("  keys generated            \(Format.count(r.keysGenerated)) of \(Format.count(r.keysRequested))")
        if let processed = r.keysProcessed {
            lines.append("  keys processed            \(Format.count(processed))")
        } else {
            lines.append("  keys processed            \(r.shown("keys_processed", nil)); the clients were confirmed \(Format.count(r.keysProcessedByClients)) first commits")
        }
        lines.append("  duration                  \(String(format: "%.2f", r.durationSec)) s")
        lines.append("  throughput                \(Format.count(Int(r.throughputKeysPerSec.rounded()))) keys/s")
        lines.append("  max unexpired keys        \(Format.count(r.maxUnexpired))")
        lines.append("  max stream length         \(Format.count(r.maxStreamLength))")
        lines.append("  Redis CPU                 " + RedisCPU(microsecondsPerKey: r.redisCpuUsPerKey, share: r.redisCpuShare).line)
        return lines + eventLines(r)
    }

    /// What happened to deliveries: duplicates caught, locks, fencing, reclaims, dead letters, failures, faults.
    static func deliveryLines(_ r: RunReport) -> [String] {
        var lines: [String] = []
        lines.append("  duplicate commits         \(r.shown("duplicate_commits", r.duplicateCommits))"
                     + (r.confirmedTwice > 0 ? " (\(Format.count(r.confirmedTwice)) of them first commits confirmed again after Redis lost the first)" : ""))
        lines.append("  duplicate deliveries      \(Format.count(r.duplicateDeliveries)) (caught at claim, acknowledged without work)")
        lines.append("  lock skips                \(Format.count(r.lockSkips))")
        lines.append("  fenced commits            \(Format.count(r.fencedCommits)) (lock lapsed: not committed, redone)")
        if r.fencedCommits > 0 && !r.settings.chaos {
            lines.append("                            (each was worked on twice and committed once: raise --lock-ttl or lower --batch)")
        }
        lines.append("  reclaimed entries         \(Format.count(r.reclaimed))")
        lines.append("  dead-lettered             \(r.shown("dead_lettered", r.deadLettered))")
        if r.failedWork > 0 || r.redeliveries > 0 {
            lines.append("  failed work               \(Format.count(r.failedWork)) (redelivered \(Format.count(r.redeliveries)), dead-lettered after \(r.settings.maxDeliveries) deliveries)")
        }
        lines.append("  pending at end            \(r.shown("pending_at_end", r.pendingAtEnd))")
        if let unprocessed = r.unprocessed, unprocessed > 0 || (r.dueAtEnd ?? 0) > 0 {
            lines.append("  unprocessed               \(Format.count(unprocessed)) (still in Redis when the run stopped: \(r.shown("due_at_end", r.dueAtEnd)) in the due index, the others in the stream)")
        } else if r.unprocessed == nil {
            lines.append("  unprocessed               \(r.shown("unprocessed", nil))")
        }
        lines.append("  lost                      \(r.shown("lost", r.lost))")
        if let evicted = evictionLine(r) { lines.append("  evicted keys              " + evicted) }
        if r.subscriberReconnects > 0 || r.consumerErrors > 0 || r.connectionReconnects > 0 {
            lines.append("  reconnects                subscriber \(r.subscriberReconnects), other connections \(r.connectionReconnects), consumer errors \(r.consumerErrors)")
        }
        if let unconfirmed = r.unconfirmedWrites {
            lines.append("  replica confirmations     --wait-replicas \(r.settings.waitReplicas): \(Format.count(unconfirmed)) round trip\(unconfirmed == 1 ? "" : "s") not confirmed within --timeout, each tried again")
        }
        lines.append(contentsOf: chaosLines(r))
        lines.append(contentsOf: failoverLines(r))
        if r.generatorWaits > 0 {
            lines.append("  generator waits           \(Format.count(r.generatorWaits)) (held back at --max-outstanding \(Format.count(r.settings.maxOutstanding)))")
        }
        return lines
    }

    /// Keys Redis evicted during the run, when it evicted any (or could not be asked under a policy that evicts).
    static func evictionLine(_ r: RunReport) -> String? {
        Evictions(count: r.evictedKeysDuringRun, policy: r.maxmemoryPolicy, unknown: r.unknown?["evicted_keys_during_run"]).line
    }

    /// `--chaos`'s faults, and the recovery when something was recovered; nothing in a run without `--chaos`.
    static func chaosLines(_ r: RunReport) -> [String] {
        guard r.settings.chaos else { return [] }
        let c = r.chaos
        var lines = ["  chaos                     \(c.crashes) consumer crashes, \(c.stalls) stalls past the lock TTL, \(c.subscriberKills) subscriber disconnections"]
        if c.leaseExpiries > 0 || c.recoveries > 0 {
            lines.append("  recovery                  \(c.leaseExpiries) lapsed leases; \(c.recoveries) crashed consumers' entries taken over"
                         + (c.recoveries > 0 ? " after \(Format.milliseconds(c.recoveryMeanMs)) on average (max \(Format.milliseconds(c.recoveryMaxMs)))" : ""))
        }
        return lines
    }

    /// How late keys were committed, how late Redis's own events were, and whether the run was saturated.
    static func latencyLines(_ r: RunReport) -> [String] {
        var lines = ["  late keys                 \(Format.count(r.lateKeys)) committed more than \(DurationText.format(.milliseconds(r.lateAfterMs))) after their deadline" + ((r.lost ?? 0) > 0 ? ", and \(Format.count(r.lost ?? 0)) lost" : "")]
        let l = r.latencyMs
        if l.count == 0 {
            lines.append("  latency deadline→commit   no key was committed: no latency to show")
        } else {
            lines.append("  latency deadline→commit   p50 \(Format.milliseconds(l.p50))  p90 \(Format.milliseconds(l.p90))  p99 \(Format.milliseconds(l.p99))  p99.9 \(Format.milliseconds(l.p999))  max \(Format.milliseconds(l.max))")
        }
        lines.append("  Redis's own expiry lag    \(r.expiryLagMs.line)")
        if r.saturated {
            lines.append("")
            lines.append("Saturated at \(Format.count(Int(r.throughputKeysPerSec.rounded()))) keys/s: the consumers could not keep up, so the generator was held back (\(Format.count(r.generatorWaits)) waits, at least half of them with more keys waiting for the consumers than for their expiry) and the latency above is mostly queueing time. For on-time latency, run with --rate \(r.suggestedRate) or lower.")
        }
        return lines
    }

    /// The throughput and latency charts.
    static func chartLines(_ outcome: RunOutcome, _ charts: TerminalCharts) -> [String] {
        var lines: [String] = []
        let throughput = charts.throughput(outcome.samples.map(\.rate))
        if !throughput.isEmpty { lines.append(""); lines.append(contentsOf: throughput.map { "  " + $0 }) }
        let latency = charts.latency(outcome.latencies)
        if !latency.isEmpty { lines.append(""); lines.append(contentsOf: latency.map { "  " + $0 }) }
        return lines
    }

    static func verdictLines(_ r: RunReport) -> [String] {
        let scope = r.replicasNotChecked.map { count in
            "  (Checked on the primary. Replication is asynchronous: \(count == 1 ? "its replica" : "\(count) of its replicas") may lack the last writes; --wait-replicas makes every write wait for them.)"
        }
        return verdictWords(r) + (r.verdict == .exactlyOnce ? [scope].compactMap { $0 } : [])
    }

    private static func verdictWords(_ r: RunReport) -> [String] {
        switch r.verdict {
        case .exactlyOnce:
            if r.deadLettered > 0 {
                return ["Verdict: exactly-once. Each of the \(Format.count(r.keysRequested)) keys was processed exactly once (\(Format.count(r.keysProcessed ?? r.keysProcessedByClients))) or dead-lettered exactly once (\(Format.count(r.deadLettered)))."]
            }
            return ["Verdict: exactly-once. All \(Format.count(r.keysRequested)) keys were processed exactly once."]
        case .failed:
            return ["Verdict: FAILED."] + r.problems.map { "  - \($0)" }
        case .interrupted:
            return ["Verdict: interrupted. The run was stopped before every key was processed; the figures above are partial."] + r.problems.map { "  - \($0)" }
        }
    }

    /// A staged run's stages: target and achieved rates, and the latency of each stage's own keys.
    static func stageLines(_ r: RunReport) -> [String] {
        guard let stages = r.stages, !stages.isEmpty else { return [] }
        var lines = ["Stages (each stage's own keys: generated at its rate, committed, deadline → commit):",
                     "  stage   target/s   duration       keys  committed  achieved/s  processed/s   p50 ms   p99 ms"]
        for (index, stage) in stages.enumerated() {
            let columns = [
                String(index + 1).padding(5) + " ", Format.count(stage.rate).leftPadded(to: 10, with: " "), DurationText.format(.milliseconds(Int64(stage.durationSec * 1000))).leftPadded(to: 10, with: " "),
                Format.count(stage.keys).leftPadded(to: 10, with: " "), Format.count(stage.committed).leftPadded(to: 10, with: " "),
                Format.count(Int(stage.achieved)).leftPadded(to: 11, with: " "), Format.count(Int(stage.processedPerSec)).leftPadded(to: 12, with: " "),
                String(format: "%.2f", stage.latencyMs.p50).leftPadded(to: 8, with: " "), String(format: "%.2f", stage.latencyMs.p99).leftPadded(to: 8, with: " "),
            ]
            lines.append("  " + columns.joined(separator: " "))
        }
        return lines
    }

    /// The `--threshold` results, one line each: passed or FAILED, with the measured value.
    static func thresholdLines(_ r: RunReport) -> [String] {
        guard let results = r.thresholds, !results.isEmpty else { return [] }
        let passed = results.filter(\.ok).count
        var lines = ["Thresholds: \(passed) of \(results.count) passed."]
        for result in results {
            lines.append("  \(result.ok ? "ok    " : "FAILED") \(result.threshold)  (\(describeValue(of: result)))"
                         + (result.abortedAtSec.map { "; --abort-on-fail stopped the run at \($0) s" } ?? ""))
        }
        return lines
    }

    /// A threshold result's measured value, in the threshold's own unit.
    package static func describeValue(of result: RunReport.ThresholdResult) -> String {
        guard let threshold = try? Threshold(parsing: result.threshold) else { return result.value.map { String($0) } ?? "none" }
        return "\(threshold.metric.rawValue) \(threshold.format(result.value))"
    }

    /// Where the keys came from: their expired events (and who made Redis expire them), rescues, and the run's
    /// own keys with a TTL beside the data keys.
    static func eventLines(_ r: RunReport) -> [String] {
        let total = max(1, r.publishedByNotification + r.publishedBySweeper)
        func share(_ n: Int) -> String { Format.percent(Double(n) / Double(total)) }
        var lines = [
            "  published from events     \(Format.count(r.publishedByNotification)) (\(share(r.publishedByNotification)))",
            "  rescued by the sweeper    \(Format.count(r.publishedBySweeper)) (\(share(r.publishedBySweeper)): gone, and no expired event came within \(DurationText.format(.milliseconds(Int64(r.settings.rescueAfterMs))))"
                + ((r.evictedKeysDuringRun ?? 0) > 0 && r.publishedBySweeper > 0 ? "; an evicted data key raises no expired event, and Redis evicted keys during the run)" : ")"),
            "  expired by                Redis's own expiry \(Format.count(r.expiredBy.redis)), the sweeper's touch \(Format.count(r.expiredBy.sweeper))"
                + (r.settings.sweeper ? " (at deadline + \(DurationText.format(.milliseconds(Int64(r.settings.graceMs)))))" : " (--sweeper off)"),
        ]
        if r.bornExpired > 0 {
            lines.append("  born expired              \(Format.count(r.bornExpired)) (their deadline had passed when Redis wrote them: the generator fell behind; Valkey raises no event for such a key, so only the sweeper finds it)")
        }
        let f = r.footprint
        if f.samples > 0 {
            lines.append("  footprint                 up to \(Format.count(f.ownTTLKeysPeak)) keys of the run's own with a TTL (leases, probes, bookkeeping) beside up to \(Format.count(f.dataKeysPeak)) data keys")
        } else {
            lines.append("  footprint                 not measured (INFO keyspace could not be read)")
        }
        return lines
    }

    /// Keys processed per shard, with the node holding each.
    package static func shardTable(_ shards: [RunReport.Shard]) -> [String] {
        let total = max(1, shards.reduce(0) { $0 + $1.keysProcessed })
        let nameWidth = max(5, shards.map(\.name.count).max() ?? 5)
        let nodeWidth = max(4, shards.map(\.node.count).max() ?? 4)
        var lines = ["Keys per shard (\(shards.count) shards):"]
        lines.append("  " + "shard".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  " + "node".padding(toLength: nodeWidth, withPad: " ", startingAt: 0) + "       keys   share")
        for shard in shards {
            let count = Format.count(shard.keysProcessed)
            lines.append("  " + shard.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  " + shard.node.padding(toLength: nodeWidth, withPad: " ", startingAt: 0)
                + "  " + String(repeating: " ", count: max(0, 9 - count.count)) + count
                + "  " + String(format: "%5.1f%%", Double(shard.keysProcessed) / Double(total) * 100))
        }
        return lines
    }

    /// The per-consumer table: name, count and share, then the min, max and spread of the shares.
    package static func consumerTable(_ consumers: [RunReport.Consumer]) -> [String] {
        guard !consumers.isEmpty else { return ["Per-consumer statistics: no consumers in this process."] }
        var lines = ["Per-consumer statistics (\(consumers.count) consumers):"]
        let nameWidth = max(8, consumers.map(\.name.count).max() ?? 8)
        let columns = consumers.count > 16 ? 4 : 1
        let header = String(repeating: "  " + "consumer".padding(nameWidth) + "    keys  share", count: columns)
        lines.append(header)
        let rows = (consumers.count + columns - 1) / columns
        for row in 0..<rows {
            var line = ""
            for column in 0..<columns {
                let index = column * rows + row
                guard index < consumers.count else { continue }
                let c = consumers[index]
                line += "  " + c.name.padding(nameWidth) + Format.count(c.processed).leftPadded(to: 8, with: " ")
                    + Format.percent(c.share).leftPadded(to: 7, with: " ")
            }
            lines.append(line)
        }
        let shares = consumers.map(\.share)
        if let low = shares.min(), let high = shares.max() {
            let counts = consumers.map(\.processed)
            lines.append("  shares: min \(Format.percent(low)) (\(Format.count(counts.min() ?? 0)) keys), max \(Format.percent(high)) (\(Format.count(counts.max() ?? 0)) keys), spread \(Format.percent(high - low))")
        }
        return lines
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
