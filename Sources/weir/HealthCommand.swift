import ArgumentParser
import Foundation
import WeirGateway
#if canImport(Glibc)
import Glibc
#endif

struct HealthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "health",
        abstract: "Exit 0 when this gateway can take traffic, else 1 with the reason on one line (for keepalived's track_script).",
        discussion: """
            Healthy: the admin listener answers GET /health, every listener accepts a connection (a real connect \
            to each address; 0.0.0.0 and :: are tried on loopback), every worker loop has turned within \
            --stale-ms, and every pool has at least one server up. Prints "ok" or the first failing check, \
            e.g. "pool api: no server available". Takes a few milliseconds; safe to run every 500 ms.
            """)
    @Option(help: "Admin listener address (default: [admin] address of -c DIR, else 127.0.0.1:9090).") var admin: String?
    @Option(name: [.customShort("c"), .customLong("config")], help: "Configuration directory to read the admin address from.")
    var directory: String?
    @Option(help: adminTokenHelp) var token: String?
    @Option(help: "Milliseconds each step (the admin answer, each listener connect) may take.") var timeoutMs: Int = 500
    @Option(help: "A worker whose heartbeat (every 100 ms) is older than this many milliseconds is stuck.")
    var staleMs: Int = Int(HealthVerdict.defaultStaleMilliseconds)

    func run() throws {
        let address = try adminAddress(admin: admin, directory: directory, command: "health")
        let report: HealthReport
        do {
            let body = try StatusClient.send(method: "GET", path: "/health?report=1", host: address.host, port: Int(address.port),
                                             timeoutMilliseconds: Int64(timeoutMs), token: try adminToken(token, directory: directory))
            report = try JSONDecoder().decode(HealthReport.self, from: Data(body))
        } catch {
            print("admin listener: \(error)")
            throw ExitCode(1)
        }
        let probes = report.listeners.map { l in
            let shown = l.address.contains(":") ? "[\(l.address)]:\(l.port)" : "\(l.address):\(l.port)"
            // Port 0: the kernel chose the port; the configuration does not say which.
            guard l.port != 0 else { return HealthVerdict.ListenerProbe(name: l.name, address: shown, accepted: nil) }
            let error = ListenerProbe.connect(host: l.address, port: l.port, timeoutMilliseconds: Int32(timeoutMs))
            return HealthVerdict.ListenerProbe(name: l.name, address: shown, accepted: error == nil, error: error)
        }
        let verdict = HealthVerdict.evaluate(
            listeners: probes, workerAges: report.worker_heartbeat_age_ms,
            pools: report.pools.map { .init(name: $0.name, available: $0.available, servers: $0.servers) },
            staleMilliseconds: Int64(staleMs))
        print(verdict.line)
        if verdict != .healthy { throw ExitCode(1) }
    }
}

/// A TCP connect to a listener, closed at once (the gateway sees a client that sends nothing and leaves).
enum ListenerProbe {
    /// Nil when `host`:`port` accepted within `timeoutMilliseconds`, else why not. A wildcard
    /// address (0.0.0.0, ::) is tried on the loopback address of its family.
    static func connect(host: String, port: Int, timeoutMilliseconds: Int32) -> String? {
        let ipv6 = host.contains(":")
        let target = host == "0.0.0.0" ? "127.0.0.1" : (host == "::" ? "::1" : host)
        let fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return "socket: \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        let result: Int32
        if ipv6 {
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET6, target, &sa.sin6_addr) == 1 else { return "not a numeric address" }
            result = startConnect(fd, &sa)
        } else {
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET, target, &sa.sin_addr) == 1 else { return "not a numeric address" }
            result = startConnect(fd, &sa)
        }
        if result == 0 { return nil }
        guard errno == EINPROGRESS else { return String(cString: strerror(errno)) }
        var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&pfd, 1, timeoutMilliseconds) == 1 else { return "no answer within \(timeoutMilliseconds) ms" }
        var soError: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
        return soError == 0 ? nil : String(cString: strerror(soError))
    }

    /// connect(2) on `fd` to the socket address `address` (a sockaddr_in or sockaddr_in6).
    private static func startConnect<Address>(_ fd: Int32, _ address: inout Address) -> Int32 {
        withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            Glibc.connect(fd, $0, socklen_t(MemoryLayout<Address>.size)) } }
    }
}
