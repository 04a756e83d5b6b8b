#if canImport(Glibc)
import Glibc
#endif

/// Keeps the client's memory flat on long runs by switching off two of glibc malloc's caches.
///
/// About eighty threads (one per connection) allocate and free hiredis replies and Swift buffers some sixty times
/// a key. With glibc's per-thread caches (tcache) and fast bins, freed chunks are kept apart instead of merged,
/// and two arenas creep upward for as long as a run goes: at 10,000 keys/s the process grew from 32.1 MiB at
/// 10 s to 37.5 MiB at 180 s while the heap in use stayed at 3.5 MB (heaptrack); jemalloc stayed flat. With both
/// caches off it stayed at 29.0 to 30.0 MiB over 180 s, for about 8 % more client CPU (README, `--duration`).
/// The fast bins are switched off here (`mallopt`); the tcache can only be chosen before the process starts
/// (`GLIBC_TUNABLES`, read by the loader), so the command starts itself again once with it set. A user who sets
/// any `glibc.malloc.` tunable keeps theirs, and the restart is skipped.
enum AllocatorTuning {
    static let tunable = "glibc.malloc.tcache_count=0"

    /// In a process started with `tunable` set, switches the fast bins off; otherwise, unless the user set a malloc
    /// tunable of their own, restarts this process with `tunable` added to `GLIBC_TUNABLES`. Returns only when
    /// nothing was restarted.
    static func apply() {
        #if os(Linux)
        let current = getenv("GLIBC_TUNABLES").map { String(cString: $0) } ?? ""
        if current.contains(tunable) {
            switchFastBinsOff()
            return
        }
        guard !current.contains("glibc.malloc.") else { return }
        setenv("GLIBC_TUNABLES", current.isEmpty ? tunable : current + ":" + tunable, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Only reached when the restart failed: go on with the allocator as it is.
        if current.isEmpty { unsetenv("GLIBC_TUNABLES") } else { setenv("GLIBC_TUNABLES", current, 1) }
        #endif
    }

    /// `mallopt(M_MXFAST, 0)`; malloc.h is not part of Swift's Glibc module, so it is looked up by name.
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
        AllocatorTuning.apply()
        await ExpiryBench.main()
    }
}
