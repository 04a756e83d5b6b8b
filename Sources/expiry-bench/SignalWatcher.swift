import Dispatch
import ExpiryBenchCore
import Foundation

/// SIGINT and SIGTERM: the first asks the run to stop gracefully (finish in-flight work, report, clean up);
/// a second one exits at once.
final class SignalWatcher {
    private let sources: [any DispatchSourceSignal]

    init(stop: StopSignal) {
        var sources: [any DispatchSourceSignal] = []
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                if stop.request() == 1 {
                    Diagnostics.warn("stopping: finishing the work in flight, then reporting and cleaning up (interrupt again to quit at once)")
                } else {
                    Diagnostics.fail("interrupted again: quitting at once; the run's keys may remain (expiry-bench cleanup removes them)")
                    exit(ExitStatus.interrupted.rawValue)
                }
            }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    func cancel() {
        for source in sources { source.cancel() }
    }
}
