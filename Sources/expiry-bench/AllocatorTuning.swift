#if canImport(Glibc)
import Glibc
#endif

/// Keeps the client's memory flat on long runs by switching off two of glibc malloc's caches.
///
/// About eighty threads (one per connection) allocate and free hiredis replies and Swift buffers some sixty times
/// a key. With glibc's per-thread caches (tcache) and fast bins, freed chunks are kept apart instead of merged,
/// and two arenas creep upward for as long as a run goes: over 10 min at 10,000 keys/s the process grew from
/// 31.3 MiB to 38.7 MiB while the heap in use stayed at 3.2 to 3.5 MB (heaptrack); jemalloc stayed flat. With
/// both caches off it stayed at 30.1 to 31.3 MB, for about 9 % more client CPU (README, `--duration`).
///
/// The fast bins are switched off with `mallopt`. The tcache can only be chosen before the process starts
/// (`GLIBC_TUNABLES`, read by the loader), so the command starts itself again once with it set, then puts the
/// variable back as it was, so that the processes it starts (a private redis-server) do not inherit it.
/// Left alone: a user who sets any `glibc.malloc.` tunable, or `EXPIRY_BENCH_MALLOC=default`.
enum AllocatorTuning {
    static let tunable = "glibc.malloc.tcache_count=0"
    /// Set across the restart: `unset`, or `set:` and the user's value of `GLIBC_TUNABLES`.
    static let marker = "EXPIRY_BENCH_RESTARTED_TUNABLES"
    /// `default` leaves glibc's allocator as it comes (for profilers that follow one process image).
    static let optOut = "EXPIRY_BENCH_MALLOC"

    /// In the restarted process, switches the fast bins off and restores the environment; otherwise, unless the
    /// user chose the allocator's settings, restarts this process with `tunable` added to `GLIBC_TUNABLES`.
    /// Returns only when nothing was restarted.
    static func apply() {
        #if os(Linux)
        if let before = variable(marker) {
            goOn(restoring: before.hasPrefix("set:") ? String(before.dropFirst(4)) : nil)
            return
        }
        let current = variable("GLIBC_TUNABLES")
        guard variable(optOut) != "default", !(current ?? "").contains("glibc.malloc.") else { return }
        setenv(marker, current.map { "set:" + $0 } ?? "unset", 1)
        setenv("GLIBC_TUNABLES", current.map { $0.isEmpty ? tunable : $0 + ":" + tunable } ?? tunable, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Only reached when the restart failed (no /proc): go on with the fast bins off and the tcache as it is.
        goOn(restoring: current)
        #endif
    }

    /// After the restart (or a failed one): the environment as the user gave it (`GLIBC_TUNABLES` set to `saved`,
    /// or unset), and the fast bins off.
    private static func goOn(restoring saved: String?) {
        #if os(Linux)
        unsetenv(marker)
        if let saved { setenv("GLIBC_TUNABLES", saved, 1) } else { unsetenv("GLIBC_TUNABLES") }
        switchFastBinsOff()
        #endif
    }

    private static func variable(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// `mallopt(M_MXFAST, 0)`. malloc.h is not part of Swift's Glibc module, so it is looked up by name; and in a
    /// `GLIBC_TUNABLES` value beside `tcache_count`, glibc 2.36 applied only the first tunable here.
    private static func switchFastBinsOff() {
        #if os(Linux)
        typealias MallOpt = @convention(c) (Int32, Int32) -> Int32
        let maxFast: Int32 = 1  // M_MXFAST in malloc.h
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        _ = unsafeBitCast(symbol, to: MallOpt.self)(maxFast, 0)
        #endif
    }
}

/// The program's entry: the allocator's settings first, then the command.
@main
enum Entry {
    static func main() async {
        // A write to a connection the server closed (a client limit, CLIENT KILL, a restart) must fail that call
        // with EPIPE, which the connection layer reports and the run survives, not end the process silently.
        signal(SIGPIPE, SIG_IGN)
        AllocatorTuning.apply()
        await ExpiryBench.main(ChaosArgument.withDefaults(Array(CommandLine.arguments.dropFirst())))
    }
}
