import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

/// The server is named as it names itself: Valkey reports `redis_version:7.2.4` for compatibility, and the report
/// must say Valkey and its own version, while the capability checks read the compatible version.
@Suite("ServerIdentity")
struct ServerIdentityTests {
    // The first lines of INFO server, as each server prints them (measured on Redis 7.0.15 and Valkey 9.1.2).
    static let redisInfo = "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\nredis_mode:standalone\r\n"
    static let valkeyInfo = "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:9.1.2\r\nvalkey_release_stage:ga\r\nredis_mode:standalone\r\n"

    @Test func redisIsNamedRedis() {
        let facts = ServerFacts(info: Self.redisInfo)
        #expect(facts.server == ServerIdentity(name: "Redis", version: "7.0.15"))
        #expect(facts.version == "7.0.15")
        #expect(facts.server.description == "Redis 7.0.15")
    }

    @Test func valkeyIsNamedValkeyWithItsOwnVersion() {
        let facts = ServerFacts(info: Self.valkeyInfo)
        #expect(facts.server == ServerIdentity(name: "Valkey", version: "9.1.2"))
        #expect(facts.version == "7.2.4", "the capability checks read the compatible version")
        #expect(facts.isAtLeast(6, 2))
    }

    @Test func helloNamesTheServer() {
        let reply = RESPValue.array(["server", "valkey", "version", "8.1.8", "proto", "2", "mode", "standalone"].map { .bulk($0) })
        #expect(ServerFacts(hello: reply).server == ServerIdentity(name: "Valkey", version: "8.1.8"))
    }

    @Test func tooOldNamesTheServerAndTheVersionNeeded() throws {
        let facts = ServerFacts(info: "redis_version:6.0.9\r\nredis_mode:standalone\r\n")
        let endpoint = RedisEndpoint(address: .tcp(host: "127.0.0.1", port: 6399))
        let configuration = RunConfiguration()
        #expect {
            try Preflight.check(facts, configuration: configuration, endpoint: endpoint) { _ in }
        } throws: { error in
            guard let error = error as? RunError else { return false }
            return error.status == .configuration && error.message.contains("Redis 6.0.9 at 127.0.0.1:6399 is too old") && error.message.contains("Redis 6.2")
        }
    }
}
