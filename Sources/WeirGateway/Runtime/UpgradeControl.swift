import Atomics
import Foundation
import WeirConfig
import WeirIO

/// The running process's side of a binary upgrade (`weir upgrade`, `POST /upgrade`, SIGUSR2),
/// on the control thread:
///
/// 1. spawns the binary this process was started from (resolved at start, so a package upgrade
///    that replaced the file is picked up), with the same arguments, every listening socket of
///    every worker (`ListeningSocket.handOverCopies`) and the hand-over channel (`HandOverEnvironment`);
/// 2. waits up to `readyTimeoutMilliseconds` for `ready`: meanwhile both processes accept on
///    the same sockets, so nothing is refused and no queue is dropped;
/// 3. on `ready`: stops accepting and drains exactly as on SIGTERM (its copies of the sockets
///    close; the sockets and their queues live on in the new process), then says `released`;
/// 4. when the new process fails (exits, says `failed ...`, or is not ready in time: then it is
///    stopped), this one keeps serving and reports why.
public final class UpgradeControl {
    /// The outcome of one upgrade, as `weir upgrade` prints it.
    public struct Outcome: Sendable, Equatable {
        public var succeeded: Bool
        public var message: String
    }

    /// How long a new process may take to serve before it is stopped and the upgrade fails.
    public static let readyTimeoutMilliseconds: Int64 = 10_000
    /// After SIGTERM to a new process that failed: how long before SIGKILL.
    static let killGraceMilliseconds: Int64 = 2_000

    /// True once a new process took over (the peer module then leaves its addresses in place).
    public static var handedOver: Bool { handedOverFlag.load(ordering: .acquiring) }
    private static let handedOverFlag = ManagedAtomic(false)

    private let loop: EventLoop
    private let log: (String) -> Void
    private let binary: String?
    private let arguments: [String]
    private var workerLoops: [EventLoop] = []
    private var drain: (() -> Void)?
    private var isDraining: () -> Bool = { true }
    private var signal: SignalWatcher?
    private var pending: Pending?
    /// Polls a failed new process until it is reaped (owned here, not by the callback it runs).
    private var reapTimer: LoopTimer?

    private final class Pending {
        let pid: pid_t
        let binary: String
        let channel: HandOverChannel
        let startedMs: Int64
        var replies: [(Outcome) -> Void]
        var timer: LoopTimer?
        var reason: String?
        init(pid: pid_t, binary: String, channel: HandOverChannel, startedMs: Int64, reply: ((Outcome) -> Void)?) {
            self.pid = pid; self.binary = binary; self.channel = channel; self.startedMs = startedMs
            replies = reply.map { [$0] } ?? []
        }
    }

    /// `binary`: the executable to start, resolved now (default: this process's own,
    /// /proc/self/exe); `arguments`: this process's (argv[0] is replaced by the binary).
    public init(loop: EventLoop, log: @escaping (String) -> Void,
                binary: String? = ProcessSpawn.currentExecutable(), arguments: [String] = CommandLine.arguments) {
        self.loop = loop
        self.log = log
        self.binary = binary
        self.arguments = arguments
    }

    /// Once the workers run: their loops (to learn when every one has stopped accepting), the
    /// gateway's drain, and whether it is draining. Watches SIGUSR2 from now on.
    public func activate(workerLoops: [EventLoop], drain: @escaping () -> Void, isDraining: @escaping () -> Bool) {
        self.workerLoops = workerLoops
        self.drain = drain
        self.isDraining = isDraining
        signal = SignalWatcher(loop: loop, signal: SIGUSR2) { [unowned self] in
            self.log(LogLevel.notice.tag + "weir: SIGUSR2: upgrading the binary")
            self.request(binary: nil, reply: nil)
        }
    }

    /// Starts an upgrade to `binary` (nil: the one this process was started from), or joins the
    /// one under way; `reply` gets the outcome (on this thread).
    public func request(binary override: String?, reply: ((Outcome) -> Void)?) {
        guard drain != nil, !isDraining(), !Self.handedOver else {
            report(Outcome(succeeded: false, message: "this process (pid \(getpid())) is stopping; nothing to upgrade"), to: reply)
            return
        }
        if let pending {
            log("weir: upgrade: pid \(pending.pid) is starting already; waiting for it")
            if let reply { pending.replies.append(reply) }
            return
        }
        guard let binary = override ?? binary else {
            report(Outcome(succeeded: false, message: "the path of this process's binary is unknown: name one (--binary)"), to: reply)
            return
        }
        if let problem = ProcessSpawn.untrustedExecutable(binary) {
            report(Outcome(succeeded: false, message: "cannot start \(binary): \(problem); pid \(getpid()) keeps serving"), to: reply)
            return
        }
        do {
            pending = try spawn(binary, reply: reply)
        } catch {
            report(Outcome(succeeded: false, message: "cannot start \(binary): \(error); pid \(getpid()) keeps serving"), to: reply)
        }
    }

    /// Draining begins for another reason (SIGTERM) while a new process starts: it is stopped too.
    public func drainBegins() {
        guard let pending, !Self.handedOver else { return }
        pending.reason = "this process began to drain (stop requested)"
        stopChild(pending, signalNow: true)
    }

    // MARK: - Steps

    private func spawn(_ binary: String, reply: ((Outcome) -> Void)?) throws -> Pending {
        let copies = try ListeningSocket.handOverCopies()
        defer { for c in copies { InheritedSocket.close(c.fd) } }
        let (channel, childEnd) = try HandOverChannel.pair()
        defer { InheritedSocket.close(childEnd) }
        // In the child: the channel is descriptor 3, the sockets 4, 5, ... (ProcessSpawn.spawn).
        let sockets = try copies.enumerated().map { i, copy -> HandOverEnvironment.Socket in
            guard let address = SocketAddress.parse(copy.address) else { throw IOError("listening socket \(copy.address): not an address") }
            return HandOverEnvironment.Socket(fd: Int32(4 + i), address: address)
        }
        let handOver = HandOverEnvironment(sockets: sockets, channel: 3, previousPID: getpid())
        let environment = handOver.childEnvironment(current: ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" })
        let pid = try ProcessSpawn.spawn(path: binary, arguments: [binary] + arguments.dropFirst(), environment: environment,
                                         passing: [childEnd] + copies.map(\.fd))
        let started = Pending(pid: pid, binary: binary, channel: channel, startedMs: loop.monotonicMilliseconds, reply: reply)
        log(LogLevel.notice.tag + "weir: upgrade: started \(binary) as pid \(pid) with \(copies.count) listening socket(s); "
            + "waiting up to \(Self.readyTimeoutMilliseconds / 1000) s for it to serve")
        channel.watch(loop: loop, onLine: { [unowned self, unowned started] line in self.heard(line, from: started) },
                      onEnd: { [unowned self, unowned started] in self.channelEnded(started) })
        let timer = LoopTimer(loop: loop) { [unowned self, unowned started] in
            started.reason = "not serving after \(Self.readyTimeoutMilliseconds / 1000) s"
            self.stopChild(started, signalNow: true)
        }
        timer.schedule(milliseconds: Self.readyTimeoutMilliseconds)
        started.timer = timer
        return started
    }

    private func heard(_ line: String, from child: Pending) {
        guard pending === child, !Self.handedOver else { return }
        if line.hasPrefix("failed ") {
            child.reason = "said: " + line.dropFirst("failed ".count)
        } else if line.hasPrefix("ready"), child.reason == nil {
            takeOver(child)
        }
    }

    /// The new process serves: this one stops accepting and drains; once every worker has closed
    /// its listening sockets, the new one hears `released`. (`pending` stays set: no second upgrade.)
    private func takeOver(_ child: Pending) {
        Self.handedOverFlag.store(true, ordering: .releasing)
        child.timer?.cancel()
        let ms = loop.monotonicMilliseconds - child.startedMs
        log(LogLevel.notice.tag + "weir: upgrade: pid \(child.pid) serves now (ready after \(ms) ms); pid \(getpid()) stops accepting and drains")
        let replies = child.replies
        child.replies = []
        let outcome = Outcome(succeeded: true, message: "upgraded: pid \(child.pid) (\(child.binary)) serves now; pid \(getpid()) drains and exits")
        for reply in replies { reply(outcome) }
        drain?()
        // Each worker runs its queue in order: this runs after its drain closed its sockets.
        let remaining = ManagedAtomic(workerLoops.count)
        let channel = UncheckedBox(child.channel)
        for worker in workerLoops {
            worker.execute { [loop] in
                guard remaining.wrappingDecrementThenLoad(ordering: .acquiringAndReleasing) == 0 else { return }
                loop.execute { channel.value.send("released"); channel.value.close() }
            }
        }
    }

    private func channelEnded(_ child: Pending) {
        guard pending === child, !Self.handedOver else { return }
        child.reason = child.reason ?? "stopped before it was ready"
        stopChild(child, signalNow: false)
    }

    /// A new process that failed: stopped unless it has ended (SIGTERM now or, when it is
    /// presumably exiting, after 100 ms; SIGKILL after `killGraceMilliseconds`), then reaped; the
    /// upgrade is reported failed with how it ended.
    private func stopChild(_ child: Pending, signalNow: Bool) {
        child.timer?.cancel()
        child.channel.close()
        if signalNow { ProcessSpawn.signal(child.pid, SIGTERM) }
        let deadline = loop.monotonicMilliseconds + Self.killGraceMilliseconds
        var polls = 0
        var termSent = signalNow
        reapTimer = LoopTimer(loop: loop, repeating: true) { [unowned self, unowned child] in
            polls += 1
            if let ending = ProcessSpawn.reap(child.pid) {
                self.reapTimer?.cancel()
                self.failed(child, ending: "\(ending)")
            } else if polls >= 5, !termSent {
                termSent = true   // its channel closed, yet it runs: stop it
                ProcessSpawn.signal(child.pid, SIGTERM)
            } else if self.loop.monotonicMilliseconds > deadline {
                ProcessSpawn.signal(child.pid, SIGKILL)
            }
        }
        reapTimer?.schedule(milliseconds: 20)
    }

    private func failed(_ child: Pending, ending: String) {
        let reason = child.reason ?? "ended"
        let message = "upgrade to \(child.binary) failed: pid \(child.pid) \(reason) (it \(ending)); pid \(getpid()) keeps serving"
        let replies = child.replies
        child.replies = []
        if pending === child { pending = nil }
        report(Outcome(succeeded: false, message: message), to: nil)
        for reply in replies { reply(Outcome(succeeded: false, message: message)) }
    }

    /// Logs a failure and answers `reply`.
    private func report(_ outcome: Outcome, to reply: ((Outcome) -> Void)?) {
        if !outcome.succeeded { log(LogLevel.error.tag + "weir: \(outcome.message.hasPrefix("upgrade") ? "" : "upgrade: ")\(outcome.message)") }
        reply?(outcome)
    }
}
