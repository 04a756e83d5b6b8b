import Testing
@testable import ExpiryBenchCore
@testable import RedisClient

/// What the run says and refuses, before anything is written, about a server's replication (INFO replication).
@Suite("Replication checks before a run")
struct ReplicationCheckTests {
    let endpoint = RedisEndpoint(address: .tcp(host: "10.0.0.5", port: 6379))

    func facts(_ replication: String) -> ServerFacts {
        ServerFacts(info: "redis_version:7.0.15\r\nredis_mode:standalone\r\n" + replication)
    }

    func check(_ facts: ServerFacts, waitReplicas: Int = 0) throws -> [String] {
        var configuration = RunConfiguration()
        configuration.waitReplicas = waitReplicas
        var warnings: [String] = []
        try Preflight.check(facts, configuration: configuration, endpoint: endpoint) { warnings.append($0) }
        return warnings
    }

    let oneInSync = "role:master\r\nconnected_slaves:1\r\nslave0:ip=10.0.0.6,port=6379,state=online,offset=42,lag=0\r\n"
    let oneCopying = "role:master\r\nconnected_slaves:1\r\nslave0:ip=10.0.0.6,port=6379,state=wait_bgsave,offset=0,lag=0\r\n"

    @Test func aPrimaryWithReplicasIsSaidToBeOneInOneLine() throws {
        let warnings = try check(facts(oneInSync))
        #expect(warnings.count == 1)
        #expect(warnings.first?.contains("10.0.0.5:6379 is a primary with 1 replica") == true)
        #expect(warnings.first?.contains("--wait-replicas 1") == true)
        #expect(warnings.first?.contains("the verdict checks this primary only") == true)
        #expect(try check(facts(oneInSync), waitReplicas: 1).isEmpty)
        #expect(try check(facts("role:master\r\nconnected_slaves:0\r\n")).isEmpty)
    }

    @Test func aReplicaIsRefusedNamingItsPrimary() {
        let error = #expect(throws: RunError.self) {
            try check(facts("role:slave\r\nmaster_host:10.0.0.4\r\nmaster_port:6380\r\nmaster_link_status:up\r\n"))
        }
        #expect(error?.status == .configuration)
        #expect(error?.message == "10.0.0.5:6379 is a replica of 10.0.0.4:6380: the run writes keys, which a replica refuses or loses to its primary. Point --redis at the primary, 10.0.0.4:6380.")
    }

    @Test func waitReplicasNeedsThatManyReplicasInSync() {
        let none = #expect(throws: RunError.self) { try check(facts("role:master\r\nconnected_slaves:0\r\n"), waitReplicas: 1) }
        #expect(none?.status == .configuration)
        #expect(none?.message.contains("--wait-replicas 1: 10.0.0.5:6379 has 0 replicas in sync, so no write could be confirmed") == true)
        let copying = #expect(throws: RunError.self) { try check(facts(oneCopying), waitReplicas: 1) }
        #expect(copying?.message.contains("0 replicas in sync (1 more still copying its data)") == true)
        let two = #expect(throws: RunError.self) { try check(facts(oneInSync), waitReplicas: 2) }
        #expect(two?.message.contains("Give at most 1") == true)
    }

    @Test func aClusterNodeIsLeftToThePerPrimaryCheck() throws {
        let node = ServerFacts(info: "redis_version:7.0.15\r\ncluster_enabled:1\r\n" + oneInSync)
        #expect(try check(node).isEmpty)
    }

    @Test func waitReplicasIsBounded() {
        var configuration = RunConfiguration()
        configuration.waitReplicas = -1
        #expect(configuration.problems().contains { $0.contains("--wait-replicas must be between 0 and 100") })
    }
}
