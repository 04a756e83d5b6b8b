import Testing
@testable import ExpiryBenchCore
@testable import RedisClient

/// The server's refusals of writes, told from other errors, and what leaving the shared setting does.
@Suite struct WriteRefusalTests {
    @Test func refusalsAreToldAndTrimmedAsRedisGaveThem() {
        let script = RedisError(.server, "script publish: NOREPLICAS Not enough good replicas to write. script: 0fb2bde1, on @user_script:29.",
                                serverMessage: "NOREPLICAS Not enough good replicas to write. script: 0fb2bde1, on @user_script:29.")
        #expect(WriteRefusal.of(script) == "NOREPLICAS Not enough good replicas to write")
        let queued = RedisError(.server, "DEL: MISCONF Errors writing to disk.")
        #expect(WriteRefusal.of(queued) == "MISCONF Errors writing to disk")
        #expect(WriteRefusal.of(RedisError(.server, "ERR unknown command", serverMessage: "ERR unknown command")) == nil)
        #expect(WriteRefusal.of(RedisError(.io, "NOREPLICAS in a socket error")) == nil)
        #expect(WriteRefusal.isRefusal("OOM command not allowed when used memory > 'maxmemory'."))
        #expect(!WriteRefusal.isRefusal("OOMPH"))
    }

    @Test func leavingTheSettingPutsBackOnlyWhatTheRunsSet() {
        #expect(NotificationShare.departure(current: "xE", original: "", applied: "Ex") == .restored(""))
        #expect(NotificationShare.departure(current: "xE", original: "Ex", applied: "Ex") == .unchanged("Ex"))
        // Put back already (while the record could not be written): nothing to do, nothing to say.
        #expect(NotificationShare.departure(current: "", original: "", applied: "Ex") == .unchanged(""))
        #expect(NotificationShare.departure(current: "KA", original: "", applied: "Ex") == .changedElsewhere("KA"))
    }
}

/// OOM under a policy that evicts is eviction falling short, not a policy that does not evict.
@Suite struct OutOfMemoryWordingTests {
    @Test func oomNamesThePolicyWhenItEvicts() throws {
        let endpoint = try RedisEndpoint(url: "redis://127.0.0.1:6379")
        let reply = "OOM command not allowed when used memory > 'maxmemory'."
        #expect(RunError.writesRefused(reply, by: "the run", endpoint: endpoint).message.contains("with a policy that does not evict"))
        #expect(RunError.writesRefused(reply, by: "the run", endpoint: endpoint, policy: "noeviction").message.contains("with a policy that does not evict"))
        let evicting = RunError.writesRefused(reply, by: "the run", endpoint: endpoint, policy: "allkeys-random").message
        #expect(evicting.contains("maxmemory-policy allkeys-random could not evict enough") && !evicting.contains("does not evict"), "\(evicting)")
    }
}
