import Dispatch
import ExpiryBenchCore
import Foundation

/// SIGINT and SIGTERM: the first asks the run to stop gracefully (finish in-flight work, report, clean up);
/// a second one exits at once, after a cleanup bounded to 3 s.
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
                    let remedy = EmergencyCleanup.shared.remedy.map { "; if anything of the run remains, remove it with: \($0)" } ?? ""
                    Diagnostics.fail("interrupted again: quitting now, after at most 3 s of cleanup\(remedy)")
                    // Best effort: restore the server setting and remove the run's keys, bounded in time.
                    let done = DispatchSemaphore(value: 0)
                    Task.detached {
                        await EmergencyCleanup.shared.run(limit: .seconds(3))
                        done.signal()
                    }
                    _ = done.wait(timeout: .now() + 4)
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
