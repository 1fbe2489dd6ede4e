import ArgumentParser
import Foundation
import WeirConfig
import WeirDemoBackend
import WeirGateway
import WeirPeer

@main
struct Weir: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weir",
        abstract: "Weir: an HTTP reverse-proxy gateway and IP redirector.",
        version: BuildInfo.versionLine,
        subcommands: [Run.self, PeerCommand.self, LevelsCommand.self, Check.self, StatusCommand.self, ReloadCommand.self, ModeCommand.self,
                      UpgradeCommand.self, DemoBackendCommand.self, StateCommand.self, ServerCommand.self, WeightCommand.self, HealthCommand.self,
                      VersionCommand.self],
        defaultSubcommand: Run.self)
}

/// Where a command's messages go: standard error, one line each (the access log owns stdout), as
/// they are (a level prefix a shared component put on is dropped). `run` and `peer` log through
/// `OperationalLog` instead (`serviceLog`), with levels.
func logLine(_ message: String) {
    FileHandle.standardError.write(Data((OperationalLog.split(message).text + "\n").utf8))
}

/// The operational log of `weir run` and `weir peer`, set up with `[global] log_level` and `log_format`.
func serviceLog(_ configuration: WeirConfiguration) -> (String) -> Void {
    OperationalLog.standardError.configure(configuration.global)
    return { OperationalLog.standardError.write($0) }
}

/// Logs why the gateway cannot start and, in a process started by `weir upgrade`, tells the old
/// process (which keeps serving and reports it). Returns the exit status to throw.
func cannotStart(_ message: String) -> ExitCode {
    OperationalLog.standardError.write(LogLevel.error.tag + message)
    UpgradeChild.reportStartFailure(message)
    return ExitCode(1)
}

struct ConfigOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .customLong("config")], help: "The configuration directory (*.toml read in lexical order).")
    var directory: String = "/etc/weir/conf.d"

    init() {}
    init(directory: String) { self.directory = directory }

    /// Reads the directory again for a reload, with the runtime state laid over it; throws the
    /// loader's errors (file and key named).
    func reader(overlay store: RuntimeStateStore) -> () throws -> WeirConfiguration {
        let directory = self.directory
        return { store.overlay(on: try ConfigLoader.load(directory: directory)) }
    }

    func load() throws -> WeirConfiguration {
        do {
            return try ConfigLoader.load(directory: directory)
        } catch let errors as ConfigErrors {
            logLine(errors.description)
            // A process started by `weir upgrade` on a broken conf.d: the old one says why and serves on.
            UpgradeChild.reportStartFailure(errors.description)
            throw ExitCode(1)
        }
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway on a configuration directory.")
    @OptionGroup var config: ConfigOptions

    func run() throws {
        let configuration = try config.load()
        if configuration.peer != nil {
            throw cannotStart("weir: \(config.directory) configures a peer ([peer]): run it with `weir peer -c \(config.directory)`")
        }
        let log = serviceLog(configuration)
        do {
            // A gateway with a [group] listens to its beacons (pools with load_source = "beacons").
            let group = try configuration.group.map { _ in try PeerSetup.runtime(configuration, log: log) }
            let (effective, kept) = RuntimeStateStore.overlay(on: configuration, log: log)
            let gateway = Gateway(configuration: effective, log: log, services: group.map { [$0] } ?? [],
                                  reader: config.reader(overlay: kept), runtimeState: kept)
            let status = try gateway.run()
            throw ExitCode(status)
        } catch let error as ExitCode {
            throw error
        } catch {
            throw cannotStart("weir: cannot start: \(error)")
        }
    }
}

struct PeerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peer",
        abstract: "Run the peer module beside the local application: balance with the other peers of the group ([peer], [group]).")
    @OptionGroup var config: ConfigOptions

    func run() throws {
        let configuration = try config.load()
        guard configuration.peer != nil else {
            throw cannotStart("weir peer: \(config.directory) has no [peer] table (it configures a gateway: run it with `weir run -c \(config.directory)`)")
        }
        let log = serviceLog(configuration)
        do {
            let group = try PeerSetup.runtime(configuration, log: log)
            let (effective, kept) = RuntimeStateStore.overlay(on: configuration, log: log)
            let gateway = Gateway(configuration: effective, log: log, services: [group],
                                  reader: config.reader(overlay: kept), runtimeState: kept)
            let status = try gateway.run()
            // After a binary upgrade the new process holds the service addresses: they stay.
            if !UpgradeControl.handedOver { group.releaseOwnAddresses() }
            throw ExitCode(status)
        } catch let error as ExitCode {
            throw error
        } catch {
            throw cannotStart("weir peer: cannot start: \(error)")
        }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate a configuration directory without binding anything; exit 0 when valid, 1 otherwise.")
    @OptionGroup var config: ConfigOptions

    func run() throws {
        let configuration = try config.load()
        do {
            try Gateway.checkCertificates(configuration)
        } catch {
            logLine("\(config.directory): \(error)")
            throw ExitCode(1)
        }
        if let problem = GroupRuntime.beaconProblem(configuration) {
            logLine("\(config.directory): \(problem)")
            throw ExitCode(1)
        }
        let servers = configuration.pools.reduce(0) { $0 + $1.servers.count }
        let role = configuration.peer.map { " for peer \($0.id) (run it with weir peer) in a group of \(configuration.group!.members.count + 1)" } ?? ""
        print("weir: configuration \(config.directory) is valid\(role): \(configuration.listeners.count) listener(s), "
              + "\(configuration.pools.count) pool(s), \(servers) server(s), \(configuration.routes.count) route(s)")
    }
}

struct DemoBackendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "demo-backend",
                                                    abstract: "Run the demo origin server (for demos, tests and benchmarks).")
    @Option(help: "Port to listen on (0 picks a free one and prints it).") var port: Int
    @Option(help: "Name the server answers with.") var name: String
    @Option(help: "Numeric address to bind.") var host: String = "127.0.0.1"
    @Option(help: "Load to report on /health in a Weir-Load header, e.g. 0.9 or 90% (changeable via /control?load=).")
    var reportLoad: String?
    @Option(help: "Milliseconds to delay every answer by (a slow server).") var delay: Int = 0

    func run() throws {
        do {
            let backend = try DemoBackend(name: name, host: host, port: port, reportedLoad: reportLoad, baseDelay: delay)
            logLine("demo-backend \(name): listening on \(host.contains(":") ? "[\(host)]" : host):\(backend.port)")
            backend.run()
        } catch {
            logLine("demo-backend \(name): cannot start: \(error)")
            throw ExitCode(1)
        }
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status",
                                                    abstract: "Show every pool's servers: state, load, in-flight requests, failures (from the admin listener).")
    @Option(help: "Admin listener address (default: [admin] address of -c DIR, else 127.0.0.1:9090).") var admin: String?
    @Option(name: [.customShort("c"), .customLong("config")], help: "Configuration directory to read the admin address from.")
    var directory: String?
    @Option(help: adminTokenHelp) var token: String?
    @Flag(help: "Print the raw JSON document.") var json = false

    func run() throws {
        let address = try adminAddress(admin: admin, directory: directory, command: "status")
        do {
            let document = try StatusClient.fetch(host: address.host, port: Int(address.port),
                                                  token: try adminToken(token, directory: directory))
            print(json ? String(decoding: try jsonBytes(document), as: UTF8.self) : StatusTable.render(document))
        } catch {
            logLine("weir status: \(error)")
            throw ExitCode(1)
        }
    }

    private func jsonBytes(_ document: StatusDocument) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(document)
    }
}

/// The table `weir status` prints.
enum StatusTable {
    static func render(_ document: StatusDocument) -> String {
        var rows: [[String]] = [["POOL", "POLICY", "SERVER", "ADDRESS", "STATE", "LOAD", "REPORTED", "AGE", "IN-FLIGHT", "REQUESTS", "FAILURES", "GROUP"]]
        for pool in document.pools {
            for s in pool.servers {
                let state = s.state + (s.slow_start < 1 ? " (ramping)" : "") + (s.lent_to.map { " (lent to \($0))" } ?? "")
                rows.append([pool.name, pool.policy, s.id, s.address, state,
                             percent(s.load), s.reported_load.map(percent) ?? "-", s.report_age_ms.map { "\($0)ms" } ?? "-",
                             "\(s.in_flight)", "\(s.requests)", "\(s.failures)", "\(s.group)"])
            }
        }
        var out = aligned(rows)
        let t = document.totals
        out.append("")
        out.append("requests \(t.requests), open connections \(t.open_connections), 400: \(t.status_400), 502: \(t.status_502), "
                   + "503: \(t.status_503), 504: \(t.status_504), retried elsewhere: \(t.retries), aborted: \(t.aborted)")
        for pool in document.pools {
            guard let m = pool.monitor else { continue }
            let age = m.last_success_age_ms.map { "last good answer \($0)ms ago" } ?? "no good answer yet"
            out.append("pool \(pool.name) monitor \(m.url): \(age), \(m.polls) polls, \(m.failures) failed, "
                       + "\(m.unknown_ids) unknown ids" + (m.last_error.map { ", last error: \($0)" } ?? ""))
        }
        if let group = document.group { out += [""] + renderGroup(group) }
        return out.joined(separator: "\n")
    }

    /// The peer group as this process sees it: one row per member, then this process's own line.
    static func renderGroup(_ g: GroupStatus) -> [String] {
        var rows: [[String]] = [["MEMBER", "ROLE", "ONLINE", "STATE", "LOAD", "EFFECTIVE", "LAST BEACON", "ROUTED", "SERVES", "HOLDS"]]
        for m in g.members {
            rows.append([m.id, m.role, m.online ? "yes" : "no", m.state ?? "-", m.load.map(percent) ?? "-",
                         m.effective_load.map(percent) ?? "-", m.last_beacon_age_ms.map { "\($0)ms ago" } ?? "never",
                         "\(m.routed)", m.serves.isEmpty ? "*" : m.serves.joined(separator: ","),
                         m.holding.isEmpty ? "-" : m.holding.joined(separator: ",")])
        }
        var out = aligned(rows)
        let me = g.role == "peer"
            ? "peer \(g.id): load \(g.load.map(percent) ?? "-"), state \(g.state ?? "-"), processed here \(g.routed_local ?? 0)"
            : "listening to the group's beacons (for the pools with load_source = \"beacons\")"
        out.append("")
        out.append(me + (g.isolated ? ", ISOLATED (hears no member: takes over nothing)" : "")
                   + (g.holding.isEmpty ? "" : ", holds for others: \(g.holding.joined(separator: ", "))"))
        let refused = g.beacons_refused.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        out.append("beacons sent \(g.beacons_sent), accepted \(g.beacons_accepted), refused \(refused.isEmpty ? "0" : refused); "
                   + "hops received \(g.hops_received), hop markers refused \(g.hops_refused); takeovers \(g.takeovers), releases \(g.releases)")
        return out
    }

    /// The rows as lines, each column padded to its widest cell.
    private static func aligned(_ rows: [[String]]) -> [String] {
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }
    }

    private static func percent(_ v: Double) -> String { String(format: "%.0f%%", v * 100) }
}

/// Where a command reaches the admin listener: a numeric host and port, or host `unix:/path` (port 0)
/// for a Unix socket (`StatusClient.send` takes either).
struct AdminEndpoint {
    var host: String
    var port: UInt16
    init(host: String, port: UInt16) { self.host = host; self.port = port }
    init(_ address: SocketAddress) { self.init(host: address.host, port: address.port) }
}

/// The admin listener to talk to: `--admin`, else the `[admin] address` of `-c DIR`, else 127.0.0.1:9090.
func adminAddress(admin: String?, directory: String?, command: String) throws -> AdminEndpoint {
    if let admin, admin.hasPrefix("unix:/") { return AdminEndpoint(host: admin, port: 0) }
    if let admin {
        guard let parsed = SocketAddress.parse(admin) else {
            logLine("weir \(command): --admin \(admin) is not a numeric address such as 127.0.0.1:9090 (or unix:/path)")
            throw ExitCode(1)
        }
        return AdminEndpoint(parsed)
    }
    if let directory {
        let configuration = try ConfigOptions(directory: directory).load()
        if let path = configuration.admin.unixSocket { return AdminEndpoint(host: "unix:" + path, port: 0) }
        guard let configured = configuration.admin.address else {
            logLine("weir \(command): the admin listener is off in \(directory) ([admin] address = \"off\")")
            throw ExitCode(1)
        }
        return AdminEndpoint(configured)
    }
    return AdminEndpoint(host: "127.0.0.1", port: 9090)
}

struct ReloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reload",
        abstract: "Have the running gateway read its conf.d again: print what changed, or why nothing did (exit 1: the previous configuration keeps serving).")
    @Option(help: "Admin listener address (default: [admin] address of -c DIR, else 127.0.0.1:9090).") var admin: String?
    @Option(name: [.customShort("c"), .customLong("config")], help: "Configuration directory to read the admin address from.")
    var directory: String?
    @Option(help: adminTokenHelp) var token: String?

    func run() throws {
        let address = try adminAddress(admin: admin, directory: directory, command: "reload")
        do {
            let body = try StatusClient.send(method: "POST", path: "/reload", host: address.host, port: Int(address.port),
                                             timeoutMilliseconds: 30_000, token: try adminToken(token, directory: directory))
            print("weir: " + String(decoding: body, as: UTF8.self), terminator: "")
        } catch {
            logLine("weir reload: \(error)")
            throw ExitCode(1)
        }
    }
}

struct ModeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mode",
        abstract: "Switch listeners between full proxy and redirect-only at run time (new requests at once; requests in flight finish as they started).")
    @Argument(help: "proxy or redirect (omit to show the current modes).") var mode: String?
    @Option(help: "Only this listener (default: every listener).") var listener: String?
    @Option(help: "Admin listener address (default: [admin] address of -c DIR, else 127.0.0.1:9090).") var admin: String?
    @Option(name: [.customShort("c"), .customLong("config")], help: "Configuration directory to read the admin address from.")
    var directory: String?
    @Option(help: adminTokenHelp) var token: String?

    func run() throws {
        if let mode, mode != "proxy" && mode != "redirect" {
            logLine("weir mode: \(mode) is not a mode; use proxy or redirect")
            throw ExitCode(1)
        }
        let address = try adminAddress(admin: admin, directory: directory, command: "mode")
        var path = "/mode"
        if let mode {
            path += "?mode=\(mode)"
            if let listener { path += "&listener=\(listener.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? listener)" }
        }
        do {
            let body = try StatusClient.send(method: mode == nil ? "GET" : "POST", path: path, host: address.host, port: Int(address.port),
                                             token: try adminToken(token, directory: directory))
            print(String(decoding: body, as: UTF8.self), terminator: "")
        } catch {
            logLine("weir mode: \(error)")
            throw ExitCode(1)
        }
    }
}

struct LevelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "levels",
        abstract: "Show or change a running peer's figure 2 levels and beacon interval (weir peer; effective at once, until restart).")
    @Option(help: "First level: below it a request stays at the local application (0...1 or 60%).") var firstLevel: String?
    @Option(help: "Second level: how much lighter another peer must be to take a request (0...1 or 20%).") var secondLevel: String?
    @Option(help: "Beacon interval in milliseconds, 50...60000 (set the same on every member).") var intervalMs: Int?
    @Option(help: "Admin listener address (default: [admin] address of -c DIR, else 127.0.0.1:9090).") var admin: String?
    @Option(name: [.customShort("c"), .customLong("config")], help: "Configuration directory to read the admin address from.")
    var directory: String?
    @Option(help: adminTokenHelp) var token: String?

    func run() throws {
        let address = try adminAddress(admin: admin, directory: directory, command: "levels")
        var parameters: [String] = []
        if let firstLevel { parameters.append("first_level=\(firstLevel.replacingOccurrences(of: "%", with: "%25"))") }
        if let secondLevel { parameters.append("second_level=\(secondLevel.replacingOccurrences(of: "%", with: "%25"))") }
        if let intervalMs { parameters.append("interval_ms=\(intervalMs)") }
        let path = parameters.isEmpty ? "/peer" : "/peer?" + parameters.joined(separator: "&")
        do {
            let body = try StatusClient.send(method: parameters.isEmpty ? "GET" : "POST", path: path, host: address.host, port: Int(address.port),
                                             token: try adminToken(token, directory: directory))
            print(String(decoding: body, as: UTF8.self), terminator: "")
        } catch {
            logLine("weir levels: \(error)")
            throw ExitCode(1)
        }
    }
}

struct UpgradeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "upgrade",
        abstract: "Replace the running gateway by a new binary without refusing a connection: the new process takes over the listening sockets, the old one drains (SIGUSR2 does the same).",
        discussion: "The new process runs with the same arguments. This command returns once it serves (exit 0) or has failed (exit 1, with the reason; the old process keeps serving).")
    @Option(help: "The binary to start (default: the path the running process was started from, which a package upgrade may have replaced).")
    var binary: String?
    @Option(help: "Admin listener address (default: [admin] address of -c DIR, else 127.0.0.1:9090).") var admin: String?
    @Option(name: [.customShort("c"), .customLong("config")], help: "Configuration directory to read the admin address from.")
    var directory: String?
    @Option(help: adminTokenHelp) var token: String?

    func run() throws {
        let address = try adminAddress(admin: admin, directory: directory, command: "upgrade")
        var path = "/upgrade"
        if let binary {
            let absolute = URL(fileURLWithPath: binary).standardizedFileURL.path
            path += "?binary=" + (absolute.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "/._-"))) ?? absolute)
        }
        do {
            // The old process answers once the new one serves or has failed (at most its 10 s deadline and a little).
            let body = try StatusClient.send(method: "POST", path: path, host: address.host, port: Int(address.port),
                                             timeoutMilliseconds: UpgradeControl.readyTimeoutMilliseconds + 5_000,
                                             token: try adminToken(token, directory: directory))
            print(String(decoding: body, as: UTF8.self), terminator: "")
        } catch {
            logLine("weir upgrade: \(error)")
            throw ExitCode(1)
        }
    }
}
