import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

/// Hash slots as the Redis Cluster specification defines them (values checked against `CLUSTER KEYSLOT` of
/// Redis 7.0.15; the integration tests compare with a live server too), and the cluster replies the connection
/// layer parses: `MOVED`/`ASK` redirects and `CLUSTER SLOTS`.
@Suite("HashSlot")
struct HashSlotTests {
    @Test func crc16IsXmodem() {
        var text = "123456789"
        #expect(text.withUTF8 { HashSlot.crc16($0) } == 0x31C3)
        #expect(HashSlot.of("123456789") == 12739)
    }

    @Test func knownSlots() {
        #expect(HashSlot.of("foo") == 12182)
        #expect(HashSlot.of("") == 0)
        #expect(HashSlot.of("a{b}c") == 3300)
        #expect(HashSlot.of("héllo") == 11061)
        #expect(HashSlot.of("expiry-bench:run1:k:42") == 10213)
        #expect((0..<1000).allSatisfy { (0..<HashSlot.count).contains(HashSlot.of("key:\($0)")) })
    }

    @Test func hashTagsChooseThePartThatIsHashed() {
        #expect(HashSlot.of("{user1000}.following") == HashSlot.of("{user1000}.followers"))
        #expect(HashSlot.of("{user1000}.following") == 3443)
        #expect(HashSlot.of("{user1000}.following") == HashSlot.of("user1000"))
        // An empty tag: the whole key is hashed.
        #expect(HashSlot.of("foo{}{bar}") == 8363)
        #expect(HashSlot.of("{}") == 15257)
        // The first '{' and the first '}' after it: "{bar" is hashed.
        #expect(HashSlot.of("foo{{bar}}zap") == HashSlot.of("{bar"))
        #expect(HashSlot.of("foo{{bar}}zap") == 4015)
        // Only the first tag counts.
        #expect(HashSlot.of("foo{bar}{zap}") == HashSlot.of("bar"))
        // No closing brace: the whole key.
        #expect(HashSlot.of("x{y") == 2740)
        #expect(HashSlot.of("{") == 4092)
        #expect(HashSlot.of("}") == 12090)
    }
}

@Suite("ClusterRedirect")
struct ClusterRedirectTests {
    @Test func parsesMovedAndAsk() {
        #expect(ClusterRedirect.parse("MOVED 3999 127.0.0.1:6381") == ClusterRedirect(kind: .moved, slot: 3999, host: "127.0.0.1", port: 6381))
        #expect(ClusterRedirect.parse("ASK 3999 127.0.0.1:6381") == ClusterRedirect(kind: .ask, slot: 3999, host: "127.0.0.1", port: 6381))
        #expect(ClusterRedirect.parse("MOVED 0 redis-1.example.com:7000")?.host == "redis-1.example.com")
        // An IPv6 address, bare or bracketed; an unknown endpoint (empty host).
        #expect(ClusterRedirect.parse("MOVED 16383 ::1:7001") == ClusterRedirect(kind: .moved, slot: 16383, host: "::1", port: 7001))
        #expect(ClusterRedirect.parse("ASK 1 [::1]:7001") == ClusterRedirect(kind: .ask, slot: 1, host: "::1", port: 7001))
        #expect(ClusterRedirect.parse("MOVED 12 :7002") == ClusterRedirect(kind: .moved, slot: 12, host: "", port: 7002))
    }

    @Test func otherErrorsAreNotRedirects() {
        for message in ["ERR unknown command", "MOVED", "MOVED 3999", "MOVED x 127.0.0.1:1", "MOVED 16384 127.0.0.1:1",
                        "ASK 1 127.0.0.1", "ASK 1 127.0.0.1:0", "ASKING", "MOVEDX 1 h:1", "NOSCRIPT No matching script"] {
            #expect(ClusterRedirect.parse(message) == nil, "\(message)")
        }
        #expect(ClusterRedirect.of(.bulk("MOVED 1 127.0.0.1:7000")) == nil)
        #expect(ClusterRedirect.of(.error("MOVED 1 127.0.0.1:7000"))?.kind == .moved)
    }

    @Test func serverErrorsCarryTheirRedirect() {
        let moved = RedisError(.server, "GET: MOVED 1 127.0.0.1:7000", serverMessage: "MOVED 1 127.0.0.1:7000")
        #expect(moved.redirect == ClusterRedirect(kind: .moved, slot: 1, host: "127.0.0.1", port: 7000))
        #expect(RedisError(.server, "GET: ERR x", serverMessage: "ERR x").redirect == nil)
        #expect(RedisError(.server, "SET: CLUSTERDOWN", serverMessage: "CLUSTERDOWN The cluster is down").isTransient)
    }

    @Test func firstRedirectLooksOnlyAtTheWantedKind() {
        let replies: [RESPValue] = [.status("OK"), .error("ASK 5 127.0.0.1:7001"), .error("ERR x"), .error("MOVED 5 127.0.0.1:7002")]
        #expect(RedisConnection.firstRedirect(in: replies, kind: .moved)?.port == 7002)
        #expect(RedisConnection.firstRedirect(in: replies, kind: .ask)?.port == 7001)
        #expect(RedisConnection.firstRedirect(in: [.status("OK"), .integer(1)], kind: .moved) == nil)
    }
}

@Suite("ClusterTopology")
struct ClusterTopologyTests {
    /// A `CLUSTER SLOTS` reply as Redis 7 sends it: node arrays of host, port, id and metadata.
    static let reply: RESPValue = .array([
        .array([.integer(0), .integer(5460),
                .array([.bulk("127.0.0.1"), .integer(7100), .bulk("id-a"), .array([])]),
                .array([.bulk("127.0.0.1"), .integer(7103), .bulk("id-d"), .array([])])]),
        .array([.integer(10923), .integer(16383), .array([.bulk(""), .integer(10000), .bulk("id-c")])]),
        .array([.integer(5461), .integer(10922), .array([.bulk("127.0.0.1"), .integer(7101), .bulk("id-b")])]),
    ])

    @Test func parsesClusterSlots() throws {
        let ranges = try ClusterTopology.parseSlots(Self.reply, queriedHost: "10.0.0.9")
        #expect(ranges == [
            ClusterSlotRange(slots: 0...5460, host: "127.0.0.1", port: 7100, replicas: [ClusterNodeAddress(host: "127.0.0.1", port: 7103)]),
            ClusterSlotRange(slots: 10923...16383, host: "10.0.0.9", port: 10000),
            ClusterSlotRange(slots: 5461...10922, host: "127.0.0.1", port: 7101),
        ])
        #expect(try ClusterTopology.parseSlots(.array([]), queriedHost: "h").isEmpty)
    }

    @Test func rejectsMalformedReplies() {
        for reply: RESPValue in [.null, .error("ERR This instance has cluster support disabled"),
                                 .array([.array([.integer(0), .integer(20000), .array([.bulk("h"), .integer(1)])])]),
                                 .array([.array([.integer(5), .integer(1), .array([.bulk("h"), .integer(1)])])]),
                                 .array([.array([.integer(0), .integer(1)])])] {
            #expect(throws: RedisError.self) { try ClusterTopology.parseSlots(reply, queriedHost: "h") }
        }
    }

    @Test func mapsSlotsToPrimariesWithTheSeedsCredentials() throws {
        let seed = RedisEndpoint(address: .tcp(host: "10.0.0.9", port: 10000), username: "u", password: "p", database: 3)
        let topology = ClusterTopology(seed: seed, ranges: try ClusterTopology.parseSlots(Self.reply, queriedHost: "10.0.0.9"))
        #expect(topology.primaries.map(\.addressDescription) == ["10.0.0.9:10000", "127.0.0.1:7100", "127.0.0.1:7101"])
        #expect(topology.primaries.allSatisfy { $0.username == "u" && $0.password == "p" && $0.database == 0 })
        #expect(topology.owner(ofSlot: 0).addressDescription == "127.0.0.1:7100")
        #expect(topology.owner(ofSlot: 5461).addressDescription == "127.0.0.1:7101")
        #expect(topology.owner(ofSlot: 16383).addressDescription == "10.0.0.9:10000")
        let b = topology.owner(ofSlot: 6000)
        #expect(topology.firstSlot(ownedBy: b) == 5461)
        #expect(topology.slots(ownedBy: b) == Array(5461...10922))
        // A replica is known (a candidate to refresh from) but owns nothing.
        let replica = RedisEndpoint(address: .tcp(host: "127.0.0.1", port: 7103))
        #expect(topology.firstSlot(ownedBy: replica) == nil)
        #expect(topology.slots(ownedBy: RedisEndpoint(address: .tcp(host: "nowhere", port: 1))).isEmpty)
    }

    @Test func noteMovedTakesEffectAtOnce() throws {
        let seed = RedisEndpoint(address: .tcp(host: "127.0.0.1", port: 7100))
        let topology = ClusterTopology(seed: seed, ranges: try ClusterTopology.parseSlots(Self.reply, queriedHost: "127.0.0.1"))
        topology.noteMoved(slot: 42, to: (host: "127.0.0.1", port: 7101))
        #expect(topology.owner(ofSlot: 42).addressDescription == "127.0.0.1:7101")
        #expect(topology.owner(ofSlot: 41).addressDescription == "127.0.0.1:7100")
        #expect(topology.firstSlot(ownedBy: topology.owner(ofSlot: 42)) == 42)
        // A node never heard of before becomes a primary; an empty host is the seed's.
        topology.noteMoved(slot: 43, to: (host: "", port: 7200))
        #expect(topology.owner(ofSlot: 43).addressDescription == "127.0.0.1:7200")
        #expect(topology.primaries.count == 4)
    }

    @Test func aSlotWithNoKnownOwnerIsServedByTheSeed() throws {
        let seed = RedisEndpoint(address: .tcp(host: "127.0.0.1", port: 7100))
        let topology = ClusterTopology(seed: seed, ranges: [ClusterSlotRange(slots: 0...99, host: "127.0.0.1", port: 7101)])
        #expect(topology.owner(ofSlot: 100) == seed)
        #expect(topology.owner(ofSlot: 50).addressDescription == "127.0.0.1:7101")
    }
}
