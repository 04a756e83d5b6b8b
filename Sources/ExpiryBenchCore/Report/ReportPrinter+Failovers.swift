import ExpiryPipeline

extension ReportPrinter {
    /// Each failover the run heard of, and `--chaos failover`'s request: nothing when there was neither.
    static func failoverLines(_ r: RunReport) -> [String] {
        var lines: [String] = []
        let c = r.chaos
        if let at = c.failoverAskedAtMs, let node = c.failoverAskedOf, let answer = c.failoverAnswer {
            lines.append("  chaos failover            asked of \(node) at \(seconds(at)): \(answer)")
        } else if r.settings.chaosFailover {
            lines.append("  chaos failover            not asked: the run ended before its moment came")
        }
        guard let failovers = r.failovers, !failovers.isEmpty || r.settings.chaosFailover else { return lines }
        if failovers.isEmpty {
            lines.append("  failovers                 none heard of")
            return lines
        }
        var header = "  failovers                 \(failovers.count) (\(failovers[0].via))"
        if failovers.count > 1 {
            header += ": the run's \(r.shown("lost", r.lost)) lost keys and \(r.shown("duplicate_commits", r.duplicateCommits)) keys done twice are not told apart by failover"
        }
        lines.append(header)
        for failover in failovers {
            var line = "    at \(seconds(failover.atMs))  \(failover.from) → \(failover.to): "
            line += failover.connectionsInterrupted == 0 ? "no call failed"
                : "writes unavailable \(Format.milliseconds(failover.writesUnavailableMs)) (\(failover.connectionsInterrupted) connection\(failover.connectionsInterrupted == 1 ? "" : "s") interrupted, the first call through \(Format.milliseconds(failover.firstWriteBackMs)) after the first failure)"
            line += ", \(Format.count(failover.keysRescued)) keys rescued after it"
            if let lost = failover.lost, let duplicates = failover.duplicateCommits {
                line += ", \(Format.count(lost)) lost, \(Format.count(duplicates)) done twice"
            }
            lines.append(line)
        }
        return lines
    }

    /// `4.1 s` from milliseconds.
    private static func seconds(_ milliseconds: Double) -> String {
        String(format: "%.1fs", milliseconds / 1000)
    }
}
