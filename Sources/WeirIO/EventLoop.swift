import Glibc
import CLibevent
import Synchronization

/// One libevent `event_base`, owned by one thread. Everything that touches it runs on that thread,
/// except `execute(_:)`, which any thread may call to hand work over (queue + eventfd wake-up).
public final class EventLoop: @unchecked Sendable {
    @usableFromInline let base: OpaquePointer
    private let wakeFD: Int32
    private var wakeEvent: OpaquePointer?
    private let queue = Mutex<[@Sendable () -> Void]>([])
    /// Connections on this loop still sending their last bytes after `closeAfterFlush()`: a loop
    /// that is shutting down waits for them to reach zero.
    public internal(set) var flushingConnections = 0

    /// Creates a loop. Throws when libevent or the kernel refuses (out of descriptors).
    public init() throws {
        guard let base = weir_event_base_new() else { throw IOError("event_base_new") }
        self.base = base
        let fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard fd >= 0 else { throw IOError.errno("eventfd") }
        wakeFD = fd
        let me = Unmanaged.passUnretained(self).toOpaque()
        wakeEvent = event_new(base, fd, weir_ev_read() | weir_ev_persist(), { fd, _, arg in
            var value: UInt64 = 0
            _ = SystemCall.run { read(fd, &value, 8) }   // EAGAIN: another pass already reset it
            Unmanaged<EventLoop>.fromOpaque(arg!).takeUnretainedValue().runQueued()
        }, me)
        event_add(wakeEvent, nil)
    }

    deinit {
        if let wakeEvent { event_free(wakeEvent) }
        for event in spareEvents { event_free(event) }
        for pair in spareBuffers { pair.free() }
        for pair in spareStreamBuffers { pair.free() }
        close(wakeFD)
        event_base_free(base)
    }

    // MARK: - Spare libevent objects

    /// Events and buffer pairs of ended connections and timers, kept for the next ones: a new
    /// connection and its session's timer then cost no `event_new` and `evbuffer_new` (6 heap
    /// allocations fewer, with the output callback's entry, and their frees; a stream connection's
    /// pair, 4). At most `maxSpare` of each kind, so a burst of closes pins little; a kept buffer
    /// pair is empty (no segments).
    private var spareEvents: [OpaquePointer] = []
    private var spareBuffers: [ConnectionBuffers] = []
    private var spareStreamBuffers: [ConnectionBuffers] = []
    static let maxSpare = 64

    /// An event of this loop for `fd` (-1 for a timer) with `flags`, calling `callback` with
    /// `argument`: a spare one reassigned, else a new one. Give it back with `recycle(event:)`.
    func makeEvent(fd: Int32, flags: Int16, callback: event_callback_fn, argument: UnsafeMutableRawPointer) -> OpaquePointer {
        if let event = spareEvents.popLast() {
            event_assign(event, base, fd, flags, callback, argument)
            return event
        }
        return event_new(base, fd, flags, callback, argument)!
    }

    /// Takes back an event made by `makeEvent`: it is deleted (out of the loop and of its active
    /// queue, so safe within its own callback), then kept for the next `makeEvent` or freed.
    func recycle(event: OpaquePointer) {
        event_del(event)
        if spareEvents.count < Self.maxSpare { spareEvents.append(event) } else { event_free(event) }
    }

    /// How many events and buffer pairs are kept (for tests).
    var spareCounts: (events: Int, buffers: Int, streamBuffers: Int) {
        (spareEvents.count, spareBuffers.count, spareStreamBuffers.count)
    }

    /// A spare pair of connection buffers for a socket or (`stream`) a stream connection, nil when
    /// none is kept.
    func takeBuffers(stream: Bool) -> ConnectionBuffers? {
        stream ? spareStreamBuffers.popLast() : spareBuffers.popLast()
    }

    /// Takes back the buffers of a connection that is being released. Precondition: both are
    /// empty and the owner cell is cleared (`Connection.deinit`).
    func recycle(buffers: ConnectionBuffers) {
        func keep(in spares: inout [ConnectionBuffers]) {
            if spares.count < Self.maxSpare { spares.append(buffers) } else { buffers.free() }
        }
        if buffers.isStream { keep(in: &spareStreamBuffers) } else { keep(in: &spareBuffers) }
    }

    /// Runs the loop until `stop()` is called or no events remain. Call on the owning thread.
    public func run() {
        event_base_dispatch(base)
    }

    /// Makes `run()` return after the current callbacks. Call on the owning thread (others use `execute`).
    public func stop() {
        event_base_loopbreak(base)
    }

    /// Queues `work` to run on the loop's thread. Safe from any thread.
    public func execute(_ work: @escaping @Sendable () -> Void) {
        queue.withLock { $0.append(work) }
        var one: UInt64 = 1
        // Retried on EINTR: a lost wake-up would leave the work queued until some other event.
        // EAGAIN (counter at its maximum) means a wake-up is pending anyway.
        _ = SystemCall.run { write(wakeFD, &one, 8) }
    }

    private func runQueued() {
        let work = queue.withLock { q -> [@Sendable () -> Void] in
            let w = q
            q.removeAll(keepingCapacity: true)
            return w
        }
        for item in work { item() }
    }

    /// Monotonic milliseconds (CLOCK_MONOTONIC, `MonotonicTime.milliseconds()`): for durations,
    /// timeouts and deadlines. Any thread.
    public var monotonicMilliseconds: Int64 { MonotonicTime.milliseconds() }

    /// Wall-clock milliseconds since the Unix epoch, cached by libevent for the current loop pass
    /// (its cached monotonic time plus an offset to gettimeofday that libevent measures again at
    /// most every 5 s; a fresh gettimeofday outside the loop's callbacks). For times that mean a
    /// date (a sticky pin's expiry); it jumps when the system clock is set, so never for durations.
    /// Call on the owning thread.
    public var wallClockMilliseconds: Int64 {
        var tv = timeval()
        event_base_gettimeofday_cached(base, &tv)
        return Int64(tv.tv_sec) * 1000 + Int64(tv.tv_usec) / 1000
    }

    /// The same value as `wallClockMilliseconds`: wall time (this comment used to call it
    /// monotonic). Kept for existing callers; new code says which clock it means, and durations
    /// and timeouts use `monotonicMilliseconds`.
    public var nowMilliseconds: Int64 { wallClockMilliseconds }
}

/// A connection's input and output evbuffers, and the cell their callbacks read the current
/// connection from (the buffers can serve several connections one after the other: see
/// `EventLoop.takeBuffers`). A socket connection's output calls back the connection; a stream
/// connection's input and output call back its endpoint.
struct ConnectionBuffers {
    let input: OpaquePointer
    let output: OpaquePointer
    let owner: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    let isStream: Bool

    func free() {
        evbuffer_free(input)
        evbuffer_free(output)
        owner.deallocate()
    }
}
