import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import RedisClient

/// Certificates made with `openssl` for one test: a CA, a server certificate for 127.0.0.1 and localhost signed by
/// it (and the same expired: its validity ends a day before it starts), a client certificate signed by it, and a
/// second CA that signed nothing of ours.
struct TestCertificates: Sendable {
    let directory: String
    var ca: String { "\(directory)/ca.crt" }
    var otherCA: String { "\(directory)/other-ca.crt" }
    var serverCertificate: String { "\(directory)/server.crt" }
    var expiredServerCertificate: String { "\(directory)/server-expired.crt" }
    var serverKey: String { "\(directory)/server.key" }
    var clientCertificate: String { "\(directory)/client.crt" }
    var clientKey: String { "\(directory)/client.key" }

    static func make() async throws -> TestCertificates {
        let directory = temporaryPath("tls-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let certificates = TestCertificates(directory: directory)
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\n".write(toFile: "\(directory)/server.ext", atomically: true, encoding: .utf8)
        let steps: [[String]] = [
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(directory)/ca.key", "-out", certificates.ca, "-days", "2", "-subj", "/CN=expiry-bench test CA"],
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(directory)/other-ca.key", "-out", certificates.otherCA, "-days", "2", "-subj", "/CN=another CA"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", certificates.serverKey, "-out", "\(directory)/server.csr", "-subj", "/CN=localhost"],
            ["x509", "-req", "-in", "\(directory)/server.csr", "-CA", certificates.ca, "-CAkey", "\(directory)/ca.key", "-CAcreateserial",
             "-out", certificates.serverCertificate, "-days", "2", "-extfile", "\(directory)/server.ext"],
            ["x509", "-req", "-in", "\(directory)/server.csr", "-CA", certificates.ca, "-CAkey", "\(directory)/ca.key", "-CAcreateserial",
             "-out", certificates.expiredServerCertificate, "-days", "-1", "-extfile", "\(directory)/server.ext"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", certificates.clientKey, "-out", "\(directory)/client.csr", "-subj", "/CN=client"],
            ["x509", "-req", "-in", "\(directory)/client.csr", "-CA", certificates.ca, "-CAkey", "\(directory)/ca.key", "-CAcreateserial",
             "-out", certificates.clientCertificate, "-days", "2"],
        ]
        for step in steps {
            let result = try await runProgram(URL(fileURLWithPath: "/usr/bin/openssl"), step, limit: .seconds(30))
            guard result.status == 0 else { throw RedisError(.io, "openssl \(step[0]) failed: \(result.combined.suffix(400))") }
        }
        return certificates
    }

    /// `redis-server` options for TLS with these files; clients must show a certificate when `clientsMust`.
    func serverArguments(clientsMust: Bool = false) -> [String] {
        ["--tls-cert-file", serverCertificate, "--tls-key-file", serverKey, "--tls-ca-cert-file", ca, "--tls-auth-clients", clientsMust ? "yes" : "no"]
    }

    /// What a client that trusts our CA uses (with our client certificate, for a server that asks for one).
    func clientSettings(withCertificate: Bool = false) -> TLSSettings {
        withCertificate ? TLSSettings(caFile: ca, certificateFile: clientCertificate, keyFile: clientKey) : TLSSettings(caFile: ca)
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

/// A TLS-only server (`--port 0 --tls-port P`) with `certificates`, stopped afterwards.
func withTLSRedis<T: Sendable>(clientsMust: Bool = false, extraArguments: [String] = [],
                               _ body: (EmbeddedRedis, TestCertificates) async throws -> T) async throws -> T {
    let certificates = try await TestCertificates.make()
    defer { certificates.remove() }
    return try await withRedis(extraArguments: certificates.serverArguments(clientsMust: clientsMust) + extraArguments,
                               tls: certificates.clientSettings(withCertificate: clientsMust)) { try await body($0, certificates) }
}

extension Scenarios {
    /// Runs of the built binary against servers that speak only TLS (Debian's redis-server is built with it), with
    /// redis-cli's option names: the certificate is verified against the CA and the host name by default.
    @Suite(.serialized)
    struct TLSTests {
        static let run = ["--keys", "3000", "--consumers", "8", "--work", "1ms", "--progress", "none", "--stall-timeout", "20s", "--max-duration", "60s"]

        @Test func rightCAVerifiesAndRunsExactlyOnceLeavingNothing() async throws {
            try await withTLSRedis { server, certificates in
                let json = temporaryPath("tls.json")
                defer { try? FileManager.default.removeItem(atPath: json) }
                let result = try await runExpiryBench(["--redis", "rediss://127.0.0.1:\(server.port)", "--cacert", certificates.ca, "--json", json] + Self.run,
                                                      limit: .seconds(90))
                #expect(result.status == 0, "\(describe(result))")
                #expect(result.stdout.contains("Verdict: exactly-once"), "\(describe(result))")
                #expect(result.stderr.isEmpty, "\(describe(result))")
                let report = try readJSONReport(json)
                #expect(report["keys_processed"] as? Int == 3000)
                let connection = try await connect(server, name: "itest:tls-after")
                defer { connection.close() }
                #expect(try await scanKeys(connection, match: "expiry-bench:*").isEmpty)
                #expect(try await notifyKeyspaceEvents(connection) == "")
            }
        }

        @Test func aCertificateFromAnotherCAIsRefusedWithExit77AndWhatToDo() async throws {
            try await withTLSRedis { server, certificates in
                for arguments in [["--cacert", certificates.otherCA], []] {  // another CA; the system's store
                    let result = try await runExpiryBench(["--redis", "rediss://127.0.0.1:\(server.port)"] + arguments + Self.run)
                    #expect(result.status == 77, "\(describe(result))")
                    #expect(result.stderr.contains("the server's certificate was refused"), "\(describe(result))")
                    #expect(result.stderr.contains("--cacert FILE"), "\(describe(result))")
                    #expect(result.stderr.split(separator: "\n").count == 1, "\(describe(result))")
                }
            }
        }

        /// The CA is right and the certificate expired: the advice is to renew it, not another --cacert.
        @Test func anExpiredServerCertificateIsToBeRenewedAndNothingIsWritten() async throws {
            let certificates = try await TestCertificates.make()
            defer { certificates.remove() }
            let arguments = ["--tls-cert-file", certificates.expiredServerCertificate, "--tls-key-file", certificates.serverKey,
                             "--tls-ca-cert-file", certificates.ca, "--tls-auth-clients", "no"]
            // The test's own connections skip verification: they would be refused too.
            try await withRedis(extraArguments: arguments, tls: TLSSettings(insecure: true)) { server in
                let result = try await runExpiryBench(["--redis", "rediss://127.0.0.1:\(server.port)", "--cacert", certificates.ca] + Self.run)
                #expect(result.status == 77, "\(describe(result))")
                #expect(result.stderr.contains("certificate has expired") && result.stderr.contains("renew it on the server"), "\(describe(result))")
                #expect(!result.stderr.contains("Give the CA"), "\(describe(result))")
                #expect(result.stderr.split(separator: "\n").count == 1, "\(describe(result))")
                let connection = try await connect(server, name: "itest:tls-after")
                defer { connection.close() }
                #expect(try await connection.send("DBSIZE") == .integer(0))
                #expect(try await notifyKeyspaceEvents(connection) == "")
            }
        }

        @Test func aNameTheCertificateDoesNotListIsRefusedUnlessInsecure() async throws {
            try await withTLSRedis { server, certificates in
                let mismatch = try await runExpiryBench(["--redis", "rediss://127.0.0.1:\(server.port)", "--cacert", certificates.ca, "--sni", "example.com"] + Self.run)
                #expect(mismatch.status == 77, "\(describe(mismatch))")
                #expect(mismatch.stderr.contains("hostname mismatch") && mismatch.stderr.contains("--sni"), "\(describe(mismatch))")
                // The name the certificate lists, by --sni while connecting by address.
                let named = try await runExpiryBench(["--redis", "redis://127.0.0.1:\(server.port)", "--tls", "--cacert", certificates.ca, "--sni", "localhost"] + Self.run,
                                                     limit: .seconds(90))
                #expect(named.status == 0, "\(describe(named))")
                let insecure = try await runExpiryBench(["--redis", "rediss://127.0.0.1:\(server.port)", "--insecure"] + Self.run, limit: .seconds(90))
                #expect(insecure.status == 0, "\(describe(insecure))")
                #expect(insecure.stderr.contains("warning: --insecure: the server's certificate is not verified"), "\(describe(insecure))")
                #expect(insecure.stderr.split(separator: "\n").count == 1, "warned once: \(describe(insecure))")
            }
        }

        /// `tls-auth-clients yes` and a password: without a client certificate the run is refused (exit 77, naming
        /// --cert and --key); with one and the password it runs.
        @Test func clientCertificatesAndAPasswordAreBothRequired() async throws {
            try await withTLSRedis(clientsMust: true, extraArguments: ["--requirepass", "s3cret"]) { server, certificates in
                let url = "rediss://:s3cret@127.0.0.1:\(server.port)"
                let without = try await runExpiryBench(["--redis", url, "--cacert", certificates.ca] + Self.run)
                #expect(without.status == 77, "\(describe(without))")
                #expect(without.stderr.contains("--cert FILE and --key FILE"), "\(describe(without))")
                let wrongPassword = try await runExpiryBench(["--redis", "rediss://:nope@127.0.0.1:\(server.port)", "--cacert", certificates.ca,
                                                              "--cert", certificates.clientCertificate, "--key", certificates.clientKey] + Self.run)
                #expect(wrongPassword.status == 77, "\(describe(wrongPassword))")
                #expect(wrongPassword.stderr.contains("refused the credentials") && !wrongPassword.stderr.contains("nope"), "\(describe(wrongPassword))")
                let with = try await runExpiryBench(["--redis", url, "--cacert", certificates.ca, "--cert", certificates.clientCertificate,
                                                     "--key", certificates.clientKey] + Self.run, limit: .seconds(90))
                #expect(with.status == 0, "\(describe(with))")
                #expect(with.stdout.contains("Verdict: exactly-once"), "\(describe(with))")
            }
        }

        /// The server closes every connection of the run three times (CLIENT KILL TYPE normal and pubsub): over TLS
        /// too, each is reopened (the relay closes hiredis's end, whose next write fails instead of raising SIGPIPE)
        /// and the run is exactly-once.
        @Test func connectionsTheServerClosesAreReopenedOverTLS() async throws {
            try await withTLSRedis { server, certificates in
                let result = try await runExpiryBench(["--redis", "rediss://127.0.0.1:\(server.port)", "--cacert", certificates.ca, "--keys", "20000",
                                                       "--rate", "5000", "--consumers", "8", "--work", "1ms", "--progress", "none", "--stall-timeout", "20s",
                                                       "--max-duration", "60s"], limit: .seconds(90)) { _ in
                    guard let killer = try? await connect(server, name: "itest:killer") else { return }
                    defer { killer.close() }
                    try? await Task.sleep(for: .seconds(1))
                    for _ in 0..<3 {
                        _ = try? await killer.send("CLIENT", "KILL", "TYPE", "normal")
                        _ = try? await killer.send("CLIENT", "KILL", "TYPE", "pubsub")
                        try? await Task.sleep(for: .milliseconds(700))
                    }
                }
                #expect(result.status == 0, "\(describe(result))")
                #expect(result.stdout.contains("Verdict: exactly-once"), "\(describe(result))")
                #expect(result.stdout.contains("reconnects"), "no connection was closed: \(describe(result))")
            }
        }

        /// A plain URL at the TLS port, and TLS options without TLS: one line each, saying what to use.
        @Test func plainAtATLSPortAndTLSOptionsWithoutTLSSayWhatToUse() async throws {
            try await withTLSRedis { server, certificates in
                let plain = try await runExpiryBench(["--redis", "redis://127.0.0.1:\(server.port)", "--timeout", "2s"] + Self.run)
                #expect(plain.status == 69, "\(describe(plain))")
                #expect(plain.stderr.contains("rediss:// or --tls"), "\(describe(plain))")
                let optionsOnly = try await runExpiryBench(["--redis", "redis://127.0.0.1:\(server.port)", "--cacert", certificates.ca] + Self.run)
                #expect(optionsOnly.status == 64, "\(describe(optionsOnly))")
                #expect(optionsOnly.stderr.contains("need TLS: use a rediss:// URL or add --tls"), "\(describe(optionsOnly))")
            }
        }

        /// A cluster whose nodes and bus speak only TLS (`tls-cluster yes`): the run follows the topology over TLS.
        @Test func aTLSClusterRunsExactlyOnceOnEveryPrimary() async throws {
            let certificates = try await TestCertificates.make()
            defer { certificates.remove() }
            try await withRedisCluster(tls: certificates) { cluster in
                let json = temporaryPath("tls-cluster.json")
                defer { try? FileManager.default.removeItem(atPath: json) }
                let result = try await runExpiryBench(["--redis", cluster.url, "--cacert", certificates.ca, "--keys", "6000", "--consumers", "12",
                                                       "--work", "1ms", "--progress", "none", "--json", json, "--stall-timeout", "20s", "--max-duration", "60s"],
                                                      limit: .seconds(90))
                #expect(result.status == 0, "\(describe(result))")
                let report = try readJSONReport(json)
                #expect(report["verdict"] as? String == "exactly-once")
                let shards = try #require(report["shards"] as? [[String: Any]])
                #expect(Set(shards.compactMap { $0["node"] as? String }).count == 3, "\(shards)")
            }
        }
    }
}
