import Glibc
import CLibevent

/// The owner of a `LoopTimer` made with `init(loop:owner:)`: told when it fires.
public protocol LoopTimerOwner: AnyObject {
    func loopTimerFired()
}

/// The deadline of a libevent timer event, which can move later without timer-heap work: a later
/// deadline leaves the event armed for the earlier time; when it runs early, `eventRan` arms it
/// again for the rest. Only a deadline that moves earlier adds the event again. Shared by
/// `LoopTimer` and a connection's read and write timeouts. Loop thread only.
struct LazyDeadline {
    /// The deadline (monotonic ms; 0 = none) and the time the event is armed for (0 = not armed).
    private var dueMs: Int64 = 0
    private var armedMs: Int64 = 0

    /// Whether a deadline is set.
    var isScheduled: Bool { dueMs != 0 }

    /// Sets the deadline to `due` (monotonic ms; `now`, the current time); `event` is added only if
    /// it is not armed for `due` or sooner.
    mutating func schedule(dueMs due: Int64, now: Int64, event: OpaquePointer?) {
        dueMs = due
        if armedMs != 0 && armedMs <= due { return }
        arm(now: now, event: event)
    }

    /// `event` ran: true when the deadline has come (it is then cleared), false when there is none
    /// or it is still ahead (the event is armed again for the rest).
    mutating func eventRan(now: Int64, event: OpaquePointer?) -> Bool {
        armedMs = 0
        guard dueMs != 0 else { return false }
        if now < dueMs { arm(now: now, event: event); return false }
        dueMs = 0
        return true
    }

    /// No deadline, and the event counts as not armed: after `event_del`, or after `event_active`
    /// (a one-shot event leaves the timer heap when it runs).
    mutating func forget() {
        dueMs = 0
        armedMs = 0
    }

    private mutating func arm(now: Int64, event: OpaquePointer?) {
        let ms = max(0, dueMs - now)
        var tv = timeval(tv_sec: Int(ms / 1000), tv_usec: Int((ms % 1000) * 1000))
        event_add(event, &tv)
        armedMs = dueMs
    }
}

/// A one-shot or repeating timer on an `EventLoop`. Use on the loop's thread only.
public final class LoopTimer {
    private let loop: EventLoop
    private var event: OpaquePointer?
    /// A one-shot timer's deadline: moving it later costs no timer-heap work.
    private var deadline = LazyDeadline()
    private let action: (() -> Void)?
    private unowned(unsafe) let owner: LoopTimerOwner?
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
        // No deadline: a repeating timer, or `fireSoon`.
        if deadline.isScheduled && !deadline.eventRan(now: loop.monotonicMilliseconds, event: event) { return }
        if let owner { owner.loopTimerFired() } else { action?() }
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
        let now = loop.monotonicMilliseconds
        deadline.schedule(dueMs: now + ms, now: now, event: event)
    }

    /// Runs the action in this pass of the loop, after the callbacks already due (libevent's active
    /// queue): no timer heap, and no extra turn of the loop as a 0 ms timer takes. Several calls before
    /// it runs run it once. `cancel` withdraws it.
    public func fireSoon() {
        deadline.forget()
        event_active(event, Int32(weir_ev_timeout()), 1)
    }

    /// Disarms the timer; harmless when not armed.
    public func cancel() {
        deadline.forget()
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
