import Foundation
import Synchronization
import WeirConfig
import WeirIO

/// The listening sockets a new process inherited from the one it upgrades, until the listener
/// binding (`ListenerBinding.bind`) gives them to the workers instead of binding new ones; the
/// kernel's accept queue and every connection waiting in it come with each socket.
enum UpgradeSockets {
    private struct Pool {
        var workers = 1
        /// Per address, the inherited descriptors in the order the old process listed them.
        var byAddress: [SocketAddress: [Int32]] = [:]
        var claimed: Set<Int32> = []
    }
    private static let pool = Mutex(Pool())

    /// Records the sockets of `environment` (already checked) for `workers` workers.
    static func offer(_ sockets: [HandOverEnvironment.Socket], workers: Int) {
        pool.withLock { pool in
            pool = Pool(workers: max(1, workers))
            for s in sockets { pool.byAddress[s.address, default: []].append(s.fd) }
        }
    }

    /// The inherited sockets for `address` that worker `worker` takes (see `HandOverEnvironment.spread`);
    /// empty when there are none for it (then the worker binds its own).
    static func take(address: SocketAddress, worker: Int) -> [Int32] {
        pool.withLock { pool in
            guard let fds = pool.byAddress[address], pool.workers > 0, worker < pool.workers else { return [] }
            let mine = HandOverEnvironment.spread(count: fds.count, workers: pool.workers, worker: worker).map { fds[$0] }
            pool.claimed.formUnion(mine)
            return mine
        }
    }

    /// The inherited sockets no worker took (their listener is gone from the configuration), now
    /// forgotten: the caller closes them.
    static func unclaimed() -> [(fd: Int32, address: SocketAddress)] {
        pool.withLock { pool in
            let left = pool.byAddress.flatMap { address, fds in fds.filter { !pool.claimed.contains($0) }.map { ($0, address) } }
            pool.byAddress = [:]
            return left
        }
    }
}

/// The new process's side of a binary upgrade: adopts the inherited sockets at start, tells the
/// old process (and systemd) once it serves, and closes the sockets it has no listener for once
/// the old one has stopped accepting on them. Use on the control thread.
public final class UpgradeChild {
    private let channel: HandOverChannel
    private let previousPID: Int32?
    private let log: (String) -> Void
    private var served = false
    /// The channel while the start can still fail (`reportStartFailure`).
    nonisolated(unsafe) private static var starting: HandOverChannel?

    private init(channel: HandOverChannel, previousPID: Int32?, log: @escaping (String) -> Void) {
        self.channel = channel
        self.previousPID = previousPID
        self.log = log
    }

    /// Reads the hand-over variables (and removes them from this process's environment, so that
    /// nothing it starts inherits them). Returns nil for a process not started by an upgrade.
    /// Checks every inherited descriptor (a listening TCP socket bound where the variable says)
    /// and offers them to the `workers` workers about to be built.
    /// Throws a message naming the variable or descriptor when the hand-over is unusable (the new
    /// process then does not start, and the old one keeps serving).
    public static func adopt(workers: Int, log: @escaping (String) -> Void,
                             environment: [String: String] = ProcessInfo.processInfo.environment) throws -> UpgradeChild? {
        let handOver: HandOverEnvironment?
        do {
            handOver = try HandOverEnvironment.parse(environment)
        } catch {
            throw IOError("binary upgrade: \(error)")
        }
        for name in HandOverEnvironment.names { unsetenv(name) }
        guard let handOver else { return nil }
        let channel = HandOverChannel(fd: handOver.channel)
        starting = channel
        for s in handOver.sockets {
            let actual = try InheritedSocket.address(of: s.fd)
            guard SocketAddress.parse(actual) == s.address else {
                throw IOError("binary upgrade: inherited descriptor \(s.fd) is bound to \(actual), not \(s.address) as \(HandOverEnvironment.socketsName) says")
            }
            try InheritedSocket.adopt(s.fd)
        }
        UpgradeSockets.offer(handOver.sockets, workers: workers)
        let addresses = Set(handOver.sockets.map(\.address.description)).sorted().joined(separator: " ")
        log(LogLevel.notice.tag + "weir: upgrade: taking over \(handOver.sockets.count) listening socket(s) from pid \(handOver.previousPID.map(String.init) ?? "?")"
            + (addresses.isEmpty ? "" : ": \(addresses)"))
        return UpgradeChild(channel: channel, previousPID: handOver.previousPID, log: log)
    }

    /// Every worker runs and every listener accepts: tells systemd this is the main process now
    /// (MAINPID, NotifyAccess=all; READY=1 follows from `SystemdService.ready`) and the old
    /// process that it may stop accepting. Sockets no listener took are closed once it has
    /// (`released`), or once it is gone.
    public func serving(loop: EventLoop) {
        guard !served else { return }
        served = true
        Self.starting = nil
        // Before the READY=1 the gateway sends next: systemd takes this process as the unit's main one.
        ServiceNotifier().mainPID(getpid())
        channel.watch(loop: loop, onLine: { [unowned self] line in
            if line == "released" { self.closeUnclaimed(why: "pid \(self.previousPID.map(String.init) ?? "?") stopped accepting") }
        }, onEnd: { [unowned self] in
            self.closeUnclaimed(why: "the previous process is gone")
        })
        if !channel.send("ready \(getpid())") {
            log("weir: upgrade: the previous process is gone already; serving on")
        }
    }

    /// A new process that cannot start says why over the channel (the old one logs it and
    /// `weir upgrade` prints it). Harmless in a process not started by an upgrade.
    public static func reportStartFailure(_ message: String) {
        let line = "failed " + message.replacingOccurrences(of: "\n", with: "; ")
        if let starting {
            starting.send(line)
            return
        }
        guard let text = ProcessInfo.processInfo.environment[HandOverEnvironment.channelName],
              let fd = Int32(text), fd >= 3 else { return }
        let channel = HandOverChannel(fd: fd)
        channel.send(line)
        channel.close()
    }

    private func closeUnclaimed(why: String) {
        channel.close()
        let left = UpgradeSockets.unclaimed()
        guard !left.isEmpty else { return }
        for s in left { InheritedSocket.close(s.fd) }
        let addresses = Set(left.map(\.address.description)).sorted().joined(separator: " ")
        log("weir: upgrade: \(why); closed \(left.count) inherited socket(s) no listener uses: \(addresses)")
    }
}
