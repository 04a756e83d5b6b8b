import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

@Suite("RedisEndpoint URL parsing and redaction")
struct EndpointTests {
    // MARK: redis:// URLs

    @Test func hostPortAndDatabase() throws {
        let endpoint = try RedisEndpoint(url: "redis://cache.internal:6380/3")
        #expect(endpoint.address == .tcp(host: "cache.internal", port: 6380))
        #expect(endpoint.database == 3)
        #expect(endpoint.username == nil)
        #expect(endpoint.password == nil)
        #expect(endpoint.description == "redis://cache.internal:6380/3")
        #expect(endpoint.addressDescription == "cache.internal:6380")
    }

    @Test func redissMeansTLSVerifiedByDefaultAndSaysSo() throws {
        let endpoint = try RedisEndpoint(url: "rediss://alice:s3cret@cache.example:6380/2")
        #expect(endpoint.address == .tcp(host: "cache.example", port: 6380))
        #expect(endpoint.tls == TLSSettings())
        #expect(endpoint.tls?.insecure == false)
        #expect(endpoint.database == 2)
        #expect(endpoint.description == "rediss://alice:***@cache.example:6380/2")
        #expect(try RedisEndpoint(url: "redis://cache.example").tls == nil)
    }

    @Test func sentinelURLListsTheSentinelsAndNamesThePrimary() throws {
        let endpoint = try RedisEndpoint(url: "redis-sentinel://app:s3cret@10.0.0.5,10.0.0.6:26380,[::1]/2#mymaster")
        let expected = SentinelGroup(sentinels: [.init(host: "10.0.0.5", port: 26379), .init(host: "10.0.0.6", port: 26380), .init(host: "::1", port: 26379)],
                                     master: "mymaster")
        #expect(endpoint.address == .sentinel(expected))
        #expect(endpoint.username == "app")
        #expect(endpoint.password == "s3cret")
        #expect(endpoint.database == 2)
        #expect(endpoint.tls == nil)
        #expect(endpoint.description == "redis-sentinel://app:***@10.0.0.5:26379,10.0.0.6:26380,[::1]:26379/2#mymaster")
        #expect(endpoint.addressDescription == "primary 'mymaster' of sentinels 10.0.0.5:26379,10.0.0.6:26380,[::1]:26379")
        #expect(try RedisEndpoint(url: "rediss-sentinel://h#m").tls == TLSSettings())
        #expect(endpoint.at(host: "10.0.0.7", port: 6379).description == "redis://app:***@10.0.0.7:6379/2")
    }

    @Test(arguments: ["redis-sentinel://h:26379", "redis-sentinel://h:26379#", "redis-sentinel://h,,k#m", "redis-sentinel://h:0#m",
                      "redis-sentinel://u:hunter#2@h:26379"])
    func badSentinelURLs(url: String) {
        let error = #expect(throws: EndpointError.self) { try RedisEndpoint(url: url) }
        #expect(error?.description.contains("hunter") == false, "a part of the password shown: \(error?.description ?? "")")
    }

    @Test func aHashInsideTheSentinelPasswordIsNotTheName() throws {
        let endpoint = try RedisEndpoint(url: "redis-sentinel://u:pa%23ss#w@h:26379#mymaster")
        #expect(endpoint.password == "pa#ss#w")
        #expect(endpoint.address == .sentinel(SentinelGroup(sentinels: [.init(host: "h", port: 26379)], master: "mymaster")))
    }

    @Test func portAndDatabaseDefault() throws {
        let endpoint = try RedisEndpoint(url: "redis://example.com")
        #expect(endpoint.address == .tcp(host: "example.com", port: 6379))
        #expect(endpoint.database == 0)
        #expect(endpoint.description == "redis://example.com:6379")

        let trailingSlash = try RedisEndpoint(url: "redis://example.com:7000/")
        #expect(trailingSlash.address == .tcp(host: "example.com", port: 7000))
        #expect(trailingSlash.database == 0)
    }

    @Test func emptyHostMeansLocalDefault() throws {
        let endpoint = try RedisEndpoint(url: "redis://")
        #expect(endpoint == RedisEndpoint.localDefault)
        #expect(endpoint.description == "redis://127.0.0.1:6379")
    }

    @Test func userAndPassword() throws {
        let endpoint = try RedisEndpoint(url: "redis://alice:s3cret@db.example:7000/1")
        #expect(endpoint.username == "alice")
        #expect(endpoint.password == "s3cret")
        #expect(endpoint.address == .tcp(host: "db.example", port: 7000))
        #expect(endpoint.database == 1)
        #expect(endpoint.description == "redis://alice:***@db.example:7000/1")
        #expect(endpoint.addressDescription == "db.example:7000")
    }

    @Test func passwordMayHoldAtSignsAndColons() throws {
        let endpoint = try RedisEndpoint(url: "redis://alice:p@ss:w0rd@h")
        #expect(endpoint.username == "alice")
        #expect(endpoint.password == "p@ss:w0rd")
        #expect(endpoint.address == .tcp(host: "h", port: 6379))
    }

    @Test func percentEncodedCredentialsAreDecoded() throws {
        let endpoint = try RedisEndpoint(url: "redis://al%69ce:p%40ss%2Fw%C3%A9@h")
        #expect(endpoint.username == "alice")
        #expect(endpoint.password == "p@ss/wé")
    }

    @Test func passwordOnlyWithColon() throws {
        let endpoint = try RedisEndpoint(url: "redis://:hunter2@h:6390")
        #expect(endpoint.username == nil)
        #expect(endpoint.password == "hunter2")
        #expect(endpoint.address == .tcp(host: "h", port: 6390))
        #expect(endpoint.description == "redis://:***@h:6390")
    }

    @Test func passwordOnlyWithoutColon() throws {
        let endpoint = try RedisEndpoint(url: "redis://hunter2@h")
        #expect(endpoint.username == nil)
        #expect(endpoint.password == "hunter2")
        #expect(endpoint.description == "redis://:***@h:6379")
    }

    @Test func emptyCredentialsMeanNone() throws {
        let endpoint = try RedisEndpoint(url: "redis://@h")
        #expect(endpoint.username == nil)
        #expect(endpoint.password == nil)
        #expect(endpoint.description == "redis://h:6379")
    }

    @Test func ipv6Literal() throws {
        let endpoint = try RedisEndpoint(url: "redis://[::1]:6380")
        #expect(endpoint.address == .tcp(host: "::1", port: 6380))
        #expect(endpoint.description == "redis://[::1]:6380")
        #expect(endpoint.addressDescription == "[::1]:6380")

        let noPort = try RedisEndpoint(url: "redis://[::1]")
        #expect(noPort.address == .tcp(host: "::1", port: 6379))

        let full = try RedisEndpoint(url: "redis://bob:pw@[fe80::2]:7001/4")
        #expect(full.address == .tcp(host: "fe80::2", port: 7001))
        #expect(full.database == 4)
        #expect(full.description == "redis://bob:***@[fe80::2]:7001/4")
    }

    // MARK: unix:// URLs

    @Test func unixSocketWithDatabase() throws {
        let endpoint = try RedisEndpoint(url: "unix:///var/run/redis.sock?db=2")
        #expect(endpoint.address == .unix(path: "/var/run/redis.sock"))
        #expect(endpoint.database == 2)
        #expect(endpoint.description == "unix:///var/run/redis.sock?db=2")
        #expect(endpoint.addressDescription == "/var/run/redis.sock")
    }

    @Test func unixSocketWithoutDatabase() throws {
        let endpoint = try RedisEndpoint(url: "unix:///tmp/r.sock")
        #expect(endpoint.address == .unix(path: "/tmp/r.sock"))
        #expect(endpoint.database == 0)
        #expect(endpoint.description == "unix:///tmp/r.sock")
    }

    @Test(arguments: ["unix://relative.sock", "unix:///p.sock?db=x", "unix:///p.sock?db=-1", "unix:///p.sock?timeout=5"])
    func badUnixURLs(url: String) {
        #expect(throws: EndpointError.self) { try RedisEndpoint(url: url) }
    }

    // MARK: Rejected input

    @Test(arguments: [
        ("redis://h:0", "port '0'"), ("redis://h:65536", "port '65536'"), ("redis://h:abc", "port 'abc'"),
        ("redis://h:", "port ''"), ("redis://[::1]:99999", "port '99999'"), ("redis://u:hunter2@h:-1", "port '-1'"),
    ])
    func badPort(url: String, mention: String) {
        let error = #expect(throws: EndpointError.self) { try RedisEndpoint(url: url) }
        #expect(error?.description.contains(mention) == true, "\(error?.description ?? "no error")")
        #expect(error?.description.contains("1...65535") == true)
    }

    @Test func unclosedIPv6Bracket() {
        let error = #expect(throws: EndpointError.self) { try RedisEndpoint(url: "redis://[::1:6379") }
        #expect(error?.description.contains("unclosed") == true)
    }

    @Test(arguments: ["http://h:6379", "redisss://h", "localhost:6379", "", "REDIS://h"])
    func badScheme(url: String) {
        let error = #expect(throws: EndpointError.self) { try RedisEndpoint(url: url) }
        #expect(error?.description.contains("is not a redis://, rediss://, redis-sentinel:// or unix:// URL") == true)
    }

    @Test(arguments: ["redis://h/abc", "redis://h/-1", "redis://h/1.5", "redis://h:6379/x"])
    func badDatabase(url: String) {
        let error = #expect(throws: EndpointError.self) { try RedisEndpoint(url: url) }
        #expect(error?.description.contains("database") == true)
    }

    // MARK: Redaction

    @Test(arguments: [
        "redis://alice:hunter2@h:7000/1", "redis://:hunter2@h", "redis://hunter2@h", "redis://alice:hunter2@[::1]:6380",
        "redis://alice:hunter2@h", "redis://alice:%68unter2@h",
    ])
    func descriptionNeverShowsPassword(url: String) throws {
        let endpoint = try RedisEndpoint(url: url)
        #expect(endpoint.password == "hunter2")
        #expect(!endpoint.description.contains("hunter2"))
        #expect(endpoint.description.contains("***"))
        #expect(!endpoint.addressDescription.contains("hunter2"))
    }

    @Test(arguments: [
        "http://bob:hunter2@h", "redis://bob:hunter2@h:0", "redis://bob:hunter2@h/xyz", "redis://:hunter2@[::1",
        "ftp://hunter2@h",
    ])
    func errorsNeverShowPassword(url: String) {
        let error = #expect(throws: EndpointError.self) { try RedisEndpoint(url: url) }
        #expect(error != nil)
        #expect(error?.description.contains("hunter2") == false, "\(error?.description ?? "")")
    }

    @Test func badSchemeMessageShowsRedactedURL() {
        let error = #expect(throws: EndpointError.self) { try RedisEndpoint(url: "http://bob:hunter2@h:1") }
        #expect(error?.description == "'http://***@h:1' is not a redis://, rediss://, redis-sentinel:// or unix:// URL")
    }

    @Test func redact() {
        #expect(RedisEndpoint.redact("redis://u:pw@h:1/0") == "redis://***@h:1/0")
        #expect(RedisEndpoint.redact("x://a@b@c") == "x://***@c")
        #expect(RedisEndpoint.redact("redis://h:1") == "redis://h:1")
        // Without a scheme everything before the last '@' may be a secret (a mistyped URL): it is hidden too.
        #expect(RedisEndpoint.redact("redis:/:pw@h") == "***@h")
        #expect(RedisEndpoint.redact("") == "")
    }

    @Test func manuallyBuiltEndpointDescription() {
        let endpoint = RedisEndpoint(address: .tcp(host: "h", port: 1), username: "u", password: "topsecret", database: 9)
        #expect(endpoint.description == "redis://u:***@h:1/9")
        let userOnly = RedisEndpoint(address: .tcp(host: "h", port: 1), username: "u")
        #expect(userOnly.description == "redis://u@h:1")
    }

    // MARK: Known source bugs

    @Test
    func literalPercentInPasswordIsKept() throws {
        let endpoint = try RedisEndpoint(url: "redis://:50%off@h")
        #expect(endpoint.password == "50%off")
    }

    @Test
    func unixQueryErrorNeverShowsPassword() {
        let error = #expect(throws: EndpointError.self) { try RedisEndpoint(url: "unix:///tmp/r.sock?password=hunter2") }
        #expect(error?.description.contains("hunter2") == false)
    }
}
