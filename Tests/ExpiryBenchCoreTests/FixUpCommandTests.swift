import Testing
@testable import ExpiryBenchCore
@testable import RedisClient

/// Every command the tool prints for a user to paste names the server it acts on, and never the password.
@Suite("Fix-up commands")
struct FixUpCommandTests {
    @Test func cleanupNamesTheServerWithoutThePassword() {
        let plain = RedisEndpoint(address: .tcp(host: "10.0.0.5", port: 6380))
        #expect(plain.cleanupCommand(runID: "r1", namespace: "expiry-bench") == "expiry-bench cleanup --run-id r1 --redis redis://10.0.0.5:6380")
        let secret = RedisEndpoint(address: .tcp(host: "db", port: 6379), username: "bench", password: "s3cret", database: 2)
        let line = secret.cleanupCommand(runID: "r2", namespace: "team")
        #expect(line.hasPrefix("expiry-bench cleanup --run-id r2 --namespace team --redis redis://bench:@db:6379/2 "), "\(line)")
        #expect(line.contains("REDIS_PASSWORD") && !line.contains("s3cret") && !line.contains("***"), "\(line)")
        // The URL printed is one --redis reads back: the user, no password, the database.
        let parsed = try? RedisEndpoint(url: secret.urlWithoutPassword)
        #expect(parsed?.username == "bench" && parsed?.password == nil && parsed?.database == 2)
        let passwordOnly = RedisEndpoint(address: .tcp(host: "db", port: 6379), password: "s3cret")
        #expect(passwordOnly.urlWithoutPassword == "redis://db:6379")
    }

    @Test func cleanupOverTLSCarriesTheTLSOptions() {
        let endpoint = RedisEndpoint(address: .tcp(host: "db", port: 6390), tls: TLSSettings(caFile: "/etc/ca.pem", serverName: "redis.internal"))
        #expect(endpoint.cleanupCommand(runID: "r", namespace: "expiry-bench") == "expiry-bench cleanup --run-id r --redis rediss://db:6390 --cacert /etc/ca.pem --sni redis.internal")
    }

    @Test func redisCLINamesHostPortAndTLS() {
        let plain = RedisEndpoint(address: .tcp(host: "10.0.0.5", port: 6380))
        #expect(plain.redisCLI("CONFIG SET notify-keyspace-events ''") == "redis-cli -h 10.0.0.5 -p 6380 CONFIG SET notify-keyspace-events ''")
        let tls = RedisEndpoint(address: .tcp(host: "db", port: 6390), username: "bench", password: "s3cret", tls: TLSSettings(caFile: "/ca.pem", certificateFile: "/c.pem", keyFile: "/k.pem"))
        let line = tls.redisCLI("CONFIG GET notify-keyspace-events")
        #expect(line.hasPrefix("redis-cli -h db -p 6390 --user bench --tls --cacert /ca.pem --cert /c.pem --key /k.pem CONFIG GET notify-keyspace-events"), "\(line)")
        #expect(line.contains("REDISCLI_AUTH") && !line.contains("s3cret"), "\(line)")
        let socket = RedisEndpoint(address: .unix(path: "/run/redis.sock"))
        #expect(socket.redisCLI("PING") == "redis-cli -s /run/redis.sock PING")
    }

    @Test func anExpiredCertificateIsToBeRenewedNotAnotherCA() {
        for message in ["the server's certificate was refused: certificate has expired", "the server's certificate was refused: certificate is not yet valid"] {
            let advice = RunError.tlsAdvice(message)
            #expect(advice.contains("renew it") && !advice.contains("Give the CA"), "\(advice)")
        }
        #expect(RunError.tlsAdvice("the server's certificate was refused: unable to get local issuer certificate").contains("--cacert FILE"))
        #expect(RunError.tlsAdvice("ssl/tls alert certificate expired").contains("--cert"))
    }
}
