import Glibc
import CLibevent

/// The owner of a `LoopTimer` made with `init(loop:owner:)`: told when it fires.
public protocol LoopTimerOwner: AnyObject {
    func loopTimerFired()
}

/// A one-shot or repeating timer on an `EventLoop`. Use on the loop's thread only.
public final class LoopTimer {
    private let loop: EventLoop
    private var event: OpaquePointer?
    private let action: (() -> Void)?
    private unowned(unsafe) let owner: LoopTimerOwner?

    /// Creates a stopped timer that runs `action` on `loop` when it fires; `repeating` keeps it armed.
    public init(loop: EventLoop, repeating: Bool = false, _ action: @escaping () -> Void) {
        self.loop = loop
        self.action = action
        owner = nil
        makeEvent(repeating)
    }

    /// Creates a stopped one-shot timer that calls `owner.loopTimerFired()`: no closure context to
    /// allocate (one allocation fewer per client connection). Precondition: `owner` keeps the timer
    /// and outlives it (it is not retained here), and no one else keeps it.
    public init(loop: EventLoop, owner: LoopTimerOwner) {
        self.loop = loop
        action = nil
        self.owner = owner
        makeEvent(false)
    }

    private func makeEvent(_ repeating: Bool) {
        let flags: Int16 = repeating ? weir_ev_persist() : 0
        event = loop.makeEvent(fd: -1, flags: flags, callback: { _, _, arg in
            let timer = Unmanaged<LoopTimer>.fromOpaque(arg!).takeUnretainedValue()
            if let owner = timer.owner { owner.loopTimerFired() } else { timer.action?() }
        }, argument: Unmanaged.passUnretained(self).toOpaque())
    }

    deinit { if let event { loop.recycle(event: event) } }

    /// Arms (or re-arms) the timer to fire after `milliseconds`.
    public func schedule(milliseconds: Int64) {
        var tv = timeval(tv_sec: Int(milliseconds / 1000), tv_usec: Int((milliseconds % 1000) * 1000))
        event_add(event, &tv)
    }

    /// Runs the action in this pass of the loop, after the callbacks already due (libevent's active
    /// queue): no timer heap, and no extra turn of the loop as a 0 ms timer takes. Several calls before
    /// it runs run it once. `cancel` withdraws it.
    public func fireSoon() { event_active(event, Int32(weir_ev_timeout()), 1) }

    /// Disarms the timer; harmless when not armed.
    public func cancel() { event_del(event) }

    /// Whether the timer is armed.
    public var isPending: Bool { event_pending(event, weir_ev_timeout(), nil) != 0 }
}

/// Watches a POSIX signal on a loop (libevent's self-pipe): only one loop in the process should watch signals.
public final class SignalWatcher {
    private var event: OpaquePointer?
    private let action: () -> Void

    /// Starts delivering `signal` to `action` on `loop`'s thread.
    public init(loop: EventLoop, signal: Int32, _ action: @escaping () -> Void) {
        self.action = action
        event = event_new(loop.base, signal, weir_ev_signal() | weir_ev_persist(), { _, _, arg in
            Unmanaged<SignalWatcher>.fromOpaque(arg!).takeUnretainedValue().action()
        }, Unmanaged.passUnretained(self).toOpaque())
        event_add(event, nil)
    }

    deinit { if let event { event_free(event) } }
}

/// Process-wide settings every Weir process needs before it does any I/O.
public enum ProcessSetup {
    /// Ignores SIGPIPE (a write to a closed socket must be an error, not a crash).
    public static func ignoreSIGPIPE() { signal(SIGPIPE, SIG_IGN) }
}
