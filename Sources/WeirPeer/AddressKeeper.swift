import Foundation
import WeirConfig

/// One service address this host adds to (or removes from) one of its network devices.
///
/// Until the lead adds `init(_ a: InterfaceAddress)` (the spec's WeirConfig type, from the config
/// slice), it is built from plain strings: `ManagedAddress(cidr: a.cidr, device: a.device)`.
public struct ManagedAddress: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// Numeric address and prefix, e.g. "198.51.100.1/24" or "2001:db8::1/64".
    public var cidr: String
    /// Device name, e.g. "eth0".
    public var device: String
    public var isIPv6: Bool

    /// - Precondition: `cidr` is "ADDRESS/PREFIX" (validated by the configuration loader).
    public init(cidr: String, device: String) {
        self.cidr = cidr
        self.device = device
        self.isIPv6 = cidr.contains(":")
    }

    /// The address without its prefix: what arping announces.
    public var address: String { String(cidr.split(separator: "/", maxSplits: 1).first ?? Substring(cidr)) }
    public var description: String { "\(cidr) dev \(device)" }
}

/// How a finished command ended.
public struct CommandResult: Sendable, Equatable {
    public var status: Int32
    public var standardError: String
    public init(status: Int32, standardError: String) {
        self.status = status
        self.standardError = standardError
    }
}

/// A command started without waiting for it.
public protocol RunningCommand: AnyObject {
    /// nil while it runs; its result once it has ended.
    var result: CommandResult? { get }
    /// Ends it early (an announcement for an address given up meanwhile).
    func stop()
}

/// Runs the external commands; injectable so tests check the command lines without running them.
public protocol CommandRunner {
    /// Runs `arguments` (argv[0] is an absolute path) to its end.
    func run(_ arguments: [String]) -> CommandResult
    /// Starts `arguments` and returns at once.
    func start(_ arguments: [String]) throws -> RunningCommand
}

/// Adds and removes service addresses with iproute2 and announces them with gratuitous ARP
/// (iputils `arping -U`), so that switches and neighbours send the address's traffic here at once
/// rather than after their ARP cache entry for the previous holder expires (minutes).
///
/// Used from one thread (the peer's event loop). `ip addr` takes milliseconds and runs synchronously;
/// arping takes about `count` seconds and is only started: its end is collected by the next
/// `hold`, `release` or `refresh` call, on the caller's thread, so nothing here needs a lock.
/// Failures (no CAP_NET_ADMIN, no such device, arping missing) are logged with the command line
/// and its stderr and counted; none is fatal.
///
/// IPv6 addresses are added with `nodad` (a taken-over address must not sit "tentative" for a
/// second of duplicate detection) but not announced: there is no unsolicited Neighbor Advertisement
/// without ndisc6-like tools. Set `net.ipv6.conf.DEV.ndisc_notify = 1` to have the kernel send one.
public final class AddressKeeper {
    /// Addresses held now, in the order they were taken.
    public private(set) var held: [ManagedAddress] = []
    /// Successful holds of an address not held before (own addresses at start included).
    public private(set) var takeovers = 0
    /// Successful releases of a held address.
    public private(set) var releases = 0
    /// arping runs started.
    public private(set) var announcements = 0
    /// Commands that failed: `ip addr` errors, arping that could not start or exited non-zero.
    public private(set) var failures = 0

    private let log: (String) -> Void
    private let ipPath: String
    private let arpingPath: String
    private let runner: CommandRunner
    private var pending: [(address: ManagedAddress, arguments: [String], command: RunningCommand)] = []
    private var ipv6Noted: Set<ManagedAddress> = []

    /// - Parameters:
    ///   - log: receives one line per event (takeover, release, failure with command and stderr).
    ///   - ipPath / arpingPath: the tools; default: found on PATH, else the Debian location.
    ///   - runner: runs the commands (tests pass a recorder).
    public init(log: @escaping (String) -> Void,
                ipPath: String = AddressKeeper.locate("ip", fallback: "/usr/sbin/ip"),
                arpingPath: String = AddressKeeper.locate("arping", fallback: "/usr/sbin/arping"),
                runner: CommandRunner = ProcessRunner()) {
        self.log = log
        self.ipPath = ipPath
        self.arpingPath = arpingPath
        self.runner = runner
    }

    /// Adds `a` to its device (`ip addr replace`: holding it already is fine) and announces it 3 times.
    /// - Returns: true when the address is on the device now.
    @discardableResult
    public func hold(_ a: ManagedAddress) -> Bool {
        collectAnnouncements()
        let arguments = addCommand(a)
        guard succeeded(arguments, runner.run(arguments)) else { return false }
        if !held.contains(a) {
            held.append(a)
            takeovers += 1
            log(LogLevel.notice.tag + "peer: holding \(a)")
        }
        announce(a, count: 3)
        return true
    }

    /// Removes `a` from its device (`ip addr del`; an address already absent is fine) and stops
    /// announcing it.
    /// - Returns: true when the address is not on the device now.
    @discardableResult
    public func release(_ a: ManagedAddress) -> Bool {
        collectAnnouncements()
        stopAnnouncements(of: a)
        let arguments = deleteCommand(a)
        let result = runner.run(arguments)
        let absent = result.status != 0 && AddressKeeper.meansAbsent(result.standardError)
        guard absent || succeeded(arguments, result) else { return false }
        if let index = held.firstIndex(of: a) {
            held.remove(at: index)
            releases += 1
            log(LogLevel.notice.tag + "peer: released \(a)")
        }
        return true
    }

    /// Sends `count` gratuitous ARP packets for `a` (one a second) without waiting for them.
    /// IPv6: logs once that only IPv4 addresses are announced.
    /// - Precondition: `count` ≥ 1.
    public func announce(_ a: ManagedAddress, count: Int) {
        guard !a.isIPv6 else {
            if ipv6Noted.insert(a).inserted {
                log("peer: \(a) is not announced (only IPv4 is, by gratuitous ARP); neighbours learn it by discovery")
            }
            return
        }
        let arguments = announceCommand(a, count: count)
        do {
            pending.append((a, arguments, try runner.start(arguments)))
            announcements += 1
        } catch {
            failures += 1
            log(LogLevel.error.tag + "peer: cannot start `\(arguments.joined(separator: " "))`: \(error)")
        }
    }

    /// Re-announces every held address once, unless its previous announcement still runs; the shell
    /// calls it every ~10 s so a neighbour that missed the takeover (or a switch that forgot) learns it.
    public func refresh() {
        collectAnnouncements()
        for a in held where !pending.contains(where: { $0.address == a }) {
            announce(a, count: 1)
        }
    }

    // MARK: command lines

    func addCommand(_ a: ManagedAddress) -> [String] {
        a.isIPv6 ? [ipPath, "-6", "addr", "replace", a.cidr, "dev", a.device, "nodad"]
                 : [ipPath, "-4", "addr", "replace", a.cidr, "dev", a.device]
    }

    func deleteCommand(_ a: ManagedAddress) -> [String] {
        [ipPath, a.isIPv6 ? "-6" : "-4", "addr", "del", a.cidr, "dev", a.device]
    }

    /// `-U`: unsolicited ARP (sender and target are the address itself), which updates neighbours' caches.
    func announceCommand(_ a: ManagedAddress, count: Int) -> [String] {
        [arpingPath, "-q", "-U", "-c", String(max(1, count)), "-I", a.device, a.address]
    }

    // MARK: helpers

    /// Logs and counts a failed command. - Returns: whether it succeeded.
    private func succeeded(_ arguments: [String], _ result: CommandResult) -> Bool {
        guard result.status != 0 else { return true }
        failures += 1
        let stderr = result.standardError.trimmingCharacters(in: .whitespacesAndNewlines)
        log(LogLevel.error.tag + "peer: `\(arguments.joined(separator: " "))` failed (exit \(result.status)): \(stderr.isEmpty ? "no message" : stderr)")
        return false
    }

    /// Reaps ended announcements, logging and counting those that failed.
    private func collectAnnouncements() {
        pending.removeAll { entry in
            guard let result = entry.command.result else { return false }
            _ = succeeded(entry.arguments, result)
            return true
        }
    }

    private func stopAnnouncements(of a: ManagedAddress) {
        pending.removeAll { entry in
            guard entry.address == a else { return false }
            entry.command.stop()
            return true
        }
    }

    /// iproute2's message when the address to delete is not on the device.
    static func meansAbsent(_ stderr: String) -> Bool {
        stderr.contains("Cannot assign requested address")
    }

    /// The first executable `name` in PATH, then /usr/sbin and /sbin (not on a service's PATH everywhere).
    public static func locate(_ name: String, fallback: String) -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        for directory in directories where !directory.isEmpty {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return fallback
    }
}
