import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

/// A least-privilege user: NOPERM is a permission to grant, never bad credentials; HELLO stands in for INFO.
@Suite("Permissions")
struct PermissionTests {
    let endpoint = RedisEndpoint(address: .tcp(host: "db", port: 6380), username: "bench", password: "s3cret")

    @Test func refusedCommandNamesWhatToGrant() {
        let error = RunError(RedisError(.server, "INFO: …", serverMessage: "NOPERM this user has no permissions to run the 'info' command"), endpoint: endpoint)
        #expect(error.status == .authentication)
        #expect(error.message.contains("accepted user 'bench' but refused a permission"))
        #expect(error.message.contains("ACL SETUSER bench +info"))
        #expect(!error.message.contains("password") && !error.message.contains("credentials") && !error.message.contains("s3cret"))
    }

    @Test func refusedScriptCommandAsksForTheScriptingCategory() {
        let error = RunError(RedisError(.server, "…", serverMessage: "NOPERM this user has no permissions to run the 'evalsha' command"), endpoint: endpoint)
        #expect(error.message.contains("ACL SETUSER bench +@scripting"))
    }

    @Test func aDiscardedTransactionIsThePermissionItWasRefused() {
        // What Redis 7 answers to EXEC when the user may not run it: the refusal inside EXECABORT.
        let exec = RunError(RedisError(.server, "EXEC: …", serverMessage: "EXECABORT Transaction discarded because of: NOPERM this user has no permissions to run the 'exec' command"), endpoint: endpoint)
        #expect(exec.status == .authentication)
        #expect(exec.message.contains("grant the command 'exec': ACL SETUSER bench +multi +exec"), "\(exec.message)")
        #expect(!exec.message.contains("EXECABORT"))
        let multi = RunError(RedisError(.server, "MULTI: …", serverMessage: "NOPERM this user has no permissions to run the 'multi' command"), endpoint: endpoint)
        #expect(multi.message.contains("grant the command 'multi': ACL SETUSER bench +multi +exec"), "\(multi.message)")
    }

    @Test func aServerAtItsClientLimitIsAConfigurationToChange() {
        let refused = RunError(RedisError(.server, "…", serverMessage: "ERR max number of clients reached"), endpoint: endpoint)
        #expect(refused.status == .configuration)
        #expect(refused.message.contains("db:6380") && refused.message.contains("maxclients") && refused.message.contains("--consumers"), "\(refused.message)")
        let need = RunError.ClientNeed(connections: 74, consumers: 64)
        let atStart = RunError.clientLimitMessage(endpoint, limit: 50, connected: 1, needed: need)
        #expect(atStart.contains("at most 50 clients") && atStart.contains("1 is connected") && atStart.contains("needs 74 connections"), "\(atStart)")
        // 50 slots, 1 taken by the tool itself (counted in the 74): 10 for the other parts leave 40 consumers.
        #expect(atStart.contains("CONFIG SET maxclients 74") && atStart.contains("--consumers 40 or fewer"), "\(atStart)")
        let full = RunError.clientLimitMessage(endpoint, limit: 8, connected: 5, needed: need)
        #expect(!full.contains("--consumers"), "no number of consumers fits: \(full)")
    }

    @Test func refusedKeysAndChannelsNameThePatterns() {
        let keys = RunError(RedisError(.server, "…", serverMessage: "NOPERM this user has no permissions to access one of the keys used as arguments"), endpoint: endpoint)
        #expect(keys.message.contains("'~<namespace>:*'"))
        let channels = RunError(RedisError(.server, "…", serverMessage: "NOPERM this user has no permissions to access one of the channels used as arguments"), endpoint: endpoint)
        #expect(channels.message.contains("&__keyevent@*__:expired"))
    }

    @Test func wrongPasswordIsStillBadCredentials() {
        let error = RunError(RedisError(.authentication, "AUTH: …", serverMessage: "WRONGPASS invalid username-password pair or user is disabled."), endpoint: endpoint)
        #expect(error.status == .authentication)
        #expect(error.message.contains("refused the credentials"))
    }

    @Test func helloGivesVersionAndModeWithoutMemoryFigures() {
        let reply = RESPValue.array(["server", "redis", "version", "7.0.15", "proto", "2", "mode", "cluster", "role", "master"].map { .bulk($0) })
        let facts = ServerFacts(hello: reply)
        #expect(facts.version == "7.0.15")
        #expect(facts.clusterEnabled)
        #expect(!facts.memoryKnown)
        #expect(ServerFacts(hello: .array(["version", "6.2.14", "mode", "standalone"].map { .bulk($0) })).clusterEnabled == false)
    }
}
