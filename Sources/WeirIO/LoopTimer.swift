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
    /// When the timer should fire (monotonic ms; 0 = not scheduled) and when its event is armed to
    /// fire (0 = not armed). A schedule that moves the time later keeps the armed event: it fires
    /// early, finds `dueMs` ahead and is armed again for the rest (no timer heap work per re-arm).
    private var dueMs: Int64 = 0
    private var armedMs: Int64 = 0
    private let repeating: Bool

    /// Creates a stopped timer that runs `action` on `loop` when it fires; `repeating` keeps it armed.
    public init(loop: EventLoop, repeating: Bool = false, _ action: @escaping () -> Void) {
        self.loop = loop
        self.action = action
        owner = nil
        self.repeating = repeating
        makeEvent(repeating)
    }

    /// Creates a stopped one-shot timer that calls `owner.loopTimerFired()`: no closure context to
    /// allocate (one allocation fewer per client connection). Precondition: `owner` keeps the timer
    /// and outlives it (it is not retained here), and no one else keeps it.
    public init(loop: EventLoop, owner: LoopTimerOwner) {
        self.loop = loop
        action = nil
        self.owner = owner
        repeating = false
        makeEvent(false)
    }

    private func makeEvent(_ repeating: Bool) {
        let flags: Int16 = repeating ? weir_ev_persist() : 0
        event = loop.makeEvent(fd: -1, flags: flags, callback: { _, _, arg in
            Unmanaged<LoopTimer>.fromOpaque(arg!).takeUnretainedValue().fired()
        }, argument: Unmanaged.passUnretained(self).toOpaque())
    }

    private func fired() {
        if !repeating && dueMs > 0 {
            let now = loop.monotonicMilliseconds
            if now < dueMs { arm(milliseconds: dueMs - now, due: dueMs); return }   // moved later meanwhile
            dueMs = 0
            armedMs = 0
        }
        if let owner { owner.loopTimerFired() } else { action?() }
    }

    private func arm(milliseconds: Int64, due: Int64) {
        var tv = timeval(tv_sec: Int(milliseconds / 1000), tv_usec: Int((milliseconds % 1000) * 1000))
        event_add(event, &tv)
        armedMs = due
    }

    deinit { if let event { loop.recycle(event: event) } }

    /// Arms (or re-arms) the timer to fire after `milliseconds` (a repeating timer: every `milliseconds`).
    public func schedule(milliseconds: Int64) {
        let ms = max(0, milliseconds)
        if repeating {
            var tv = timeval(tv_sec: Int(ms / 1000), tv_usec: Int((ms % 1000) * 1000))
            event_add(event, &tv)
            return
        }
        let due = loop.monotonicMilliseconds + ms
        dueMs = due
        if armedMs != 0 && armedMs <= due && event_pending(event, weir_ev_timeout(), nil) != 0 { return }
        arm(milliseconds: ms, due: due)
    }

    /// Runs the action in this pass of the loop, after the callbacks already due (libevent's active
    /// queue): no timer heap, and no extra turn of the loop as a 0 ms timer takes. Several calls before
    /// it runs run it once. `cancel` withdraws it.
    public func fireSoon() {
        dueMs = 0
        armedMs = 0
        event_active(event, Int32(weir_ev_timeout()), 1)
    }

    /// Disarms the timer; harmless when not armed.
    public func cancel() {
        dueMs = 0
        armedMs = 0
        event_del(event)
    }

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
