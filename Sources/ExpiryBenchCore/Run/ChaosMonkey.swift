import Foundation
import ExpiryPipeline
import RedisClient

/// Faults at random moments, for `--chaos`, 0.2 to 1 s apart: a consumer crashes (abandons its batch, drops its
/// connection without acking; a replacement joins under a new name), a consumer stalls past its lock TTL and then
/// tries to commit, or the subscriber's connection is killed.
struct ChaosMonkey {
    enum Fault: CaseIterable { case crash, stall, killSubscriber }
    let parts: PipelineParts
    /// Where replacements of crashed consumers join.
    let pool: ConsumerPool
    /// The node that holds the subscriber's connection.
    let node: RedisConnection

    func run(start: ContinuousClock.Instant, shouldStop: @Sendable () -> Bool) async {
        let clock = ContinuousClock()
        var next = start + .milliseconds(Int.random(in: 300...800))
        var warnedPermission = false
        while !shouldStop() {
            try? await Task.sleep(for: .milliseconds(5))
            let now = clock.now
            guard now >= next, !shouldStop(), let fault = Fault.allCases.randomElement() else { continue }
            next = now + .milliseconds(Int.random(in: 200...1000))
            await inject(fault, at: now, warnedPermission: &warnedPermission)
        }
    }

    /// One fault: a consumer crashes (a replacement joins under a new name), a consumer stalls past its lock TTL,
    /// or the subscriber's connection is killed.
    private func inject(_ fault: Fault, at now: ContinuousClock.Instant, warnedPermission: inout Bool) async {
        log.info("chaos: \(fault)")
        let (roster, context, counters) = (parts.roster, parts.context, parts.counters)
        switch fault {
        case .crash:
            guard let victim = roster.alive.filter({ !$0.crash.isSet }).randomElement() else { return }
            victim.crash.set()
            victim.alive.set(false)
            context.recoveries.crashed(victim.name, at: now)
            counters.add(\.chaosCrashes, 1)
            let replacement = ConsumerStats(name: Self.replacementName(for: victim.name), shard: victim.shard)
            roster.add(replacement)
            pool.add(replacement)
        case .stall:
            roster.alive.filter { !$0.crash.isSet }.randomElement()?.stall.set()
        case .killSubscriber:
            do {
                if try await Self.killClient(named: ExpirationBridge.subscriberName(parts.layout.run), using: node) {
                    counters.add(\.chaosSubscriberKills, 1)
                }
            } catch let error as RedisError where error.serverSays("NOPERM") {
                if !warnedPermission {
                    warnedPermission = true
                    Diagnostics.warn("--chaos cannot disconnect the subscriber: this user may not run CLIENT LIST and CLIENT KILL (\(error.serverMessage ?? "")); grant +client|list +client|kill to have it. Crashes and stalls go on.")
                }
            } catch {}
        }
    }

    /// `consumer-7` → `consumer-7.r1`, `consumer-7.r1` → `consumer-7.r2`.
    static func replacementName(for name: String) -> String {
        if let dot = name.range(of: ".r", options: .backwards), let generation = Int(name[dot.upperBound...]) {
            return String(name[..<dot.lowerBound]) + ".r\(generation + 1)"
        }
        return name + ".r1"
    }

    /// Kills the connection whose client name is `name` (CLIENT LIST, then CLIENT KILL ID); true if one was killed.
    static func killClient(named name: String, using control: RedisConnection) async throws -> Bool {
        let list = try await control.send("CLIENT", "LIST").string ?? ""
        for line in list.split(whereSeparator: \.isNewline) where line.contains(" name=\(name) ") {
            guard let idField = line.split(separator: " ").first(where: { $0.hasPrefix("id=") }) else { continue }
            let killed = try await control.send("CLIENT", "KILL", "ID", String(idField.dropFirst(3)))
            return killed.int == 1
        }
        return false
    }
}
