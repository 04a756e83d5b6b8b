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
