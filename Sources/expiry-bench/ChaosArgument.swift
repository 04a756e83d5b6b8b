import ArgumentParser

/// A `--chaos` value: `consumers`, `failover`, or both, comma-separated (`consumers,failover`).
struct ChaosArgument: ExpressibleByArgument, Sendable {
    enum Fault: String, CaseIterable, Sendable {
        case consumers
        case failover
    }

    let faults: Set<Fault>

    init?(argument: String) {
        let faults = argument.lowercased().split(separator: ",").map { Fault(rawValue: String($0)) }
        guard !faults.isEmpty, !faults.contains(nil) else { return nil }
        self.faults = Set(faults.compactMap { $0 })
    }

    static var allValueStrings: [String] { Fault.allCases.map(\.rawValue) }

    /// The command line with `consumers` after a `--chaos` followed by nothing or by another option, so that `--chaos` alone
    /// keeps meaning what it meant before it took values: consumer faults.
    static func withDefaults(_ arguments: [String]) -> [String] {
        var result: [String] = []
        for (index, argument) in arguments.enumerated() {
            result.append(argument)
            if argument == "--" {
                result.append(contentsOf: arguments[(index + 1)...])
                break
            }
            guard argument == "--chaos" else { continue }
            // A value that is not a fault's name is left to be refused as one.
            let next = index + 1 < arguments.count ? arguments[index + 1] : nil
            if next == nil || next?.hasPrefix("-") == true { result.append(Fault.consumers.rawValue) }
        }
        return result
    }
}
