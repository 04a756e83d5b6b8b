import Foundation
import ExpiryPipeline
import Prometheus
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A minimal HTTP endpoint for `--metrics-port`: `GET /metrics` answers the registry in Prometheus's text
/// format, anything else 404. One request at a time on its own thread (scrapes come every few seconds), so a
/// blocking accept never touches Swift's cooperative pool.
package final class MetricsServer: Sendable {
    /// The listening socket. Only `stop()` changes it (to -1), after which the thread's accept fails and it ends.
    private let socketDescriptor: Mutex<Int32>
    package let port: Int
    private let registry: PrometheusCollectorRegistry

    /// Listens on `host`:`port` (port 0: one the kernel chooses, see `port`).
    /// - Throws: `RunError` 64 when the address cannot be bound (port in use, bad host).
    package init(host: String, port: Int, registry: PrometheusCollectorRegistry) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RunError(.unavailable, "--metrics-port: cannot open a socket (\(String(cString: strerror(errno))))") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            close(fd)
            throw RunError(.usage, "--metrics-host '\(host)' is not an IPv4 address (127.0.0.1 for this machine only, 0.0.0.0 for every interface)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw RunError(.usage, "--metrics-port \(port): cannot listen on \(host):\(port) (\(reason)); choose another port")
        }
        self.socketDescriptor = Mutex(fd)
        self.port = Int(UInt16(bigEndian: address.sin_port))
        self.registry = registry
        let thread = Thread { [self] in serve(fd) }
        thread.name = "expiry-bench:metrics"
        thread.start()
    }

    /// Stops listening; the serving thread ends.
    package func stop() {
        let fd = socketDescriptor.withLock { fd in
            defer { fd = -1 }
            return fd
        }
        if fd >= 0 {
            shutdown(fd, Int32(SHUT_RDWR))
            close(fd)
        }
    }

    private func serve(_ fd: Int32) {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            answer(client)
            close(client)
        }
    }

    /// Reads the request line and answers it.
    private func answer(_ client: Int32) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request = [UInt8](repeating: 0, count: 2048)
        let count = recv(client, &request, request.count, 0)
        guard count > 0 else { return }
        let line = String(decoding: request[0..<count], as: UTF8.self).prefix { $0 != "\r" && $0 != "\n" }
        let parts = line.split(separator: " ")
        let found = parts.count >= 2 && parts[0] == "GET" && (parts[1] == "/metrics" || parts[1].hasPrefix("/metrics?"))
        let body: [UInt8] = found ? registry.emitToBuffer() : Array("not found: the metrics are at /metrics\n".utf8)
        let head = "HTTP/1.1 \(found ? "200 OK" : "404 Not Found")\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        write(client, Array(head.utf8) + body)
    }

    private func write(_ client: Int32, _ bytes: [UInt8]) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            sent += n
        }
    }
}
