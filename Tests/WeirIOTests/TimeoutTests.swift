import Glibc
import Testing
@testable import WeirIO

/// Records the events a connection reports, with the monotonic time of each.
private final class EventRecorder: ConnectionHandler {
    var events: [(String, Int64)] = []
    var lastReadMs: Int64 = 0
    func connectionReadable(_ c: Connection) {
        c.input.drainAll()
        lastReadMs = MonotonicTime.milliseconds()
    }
    func connectionWritable(_ c: Connection) {}
    func connection(_ c: Connection, event: ConnectionEvent) { events.append(("\(event)", MonotonicTime.milliseconds())) }
}

private func socketPair() -> (Int32, Int32) {
    var fds: [Int32] = [-1, -1]
    #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds) == 0)
    return (fds[0], fds[1])
}

/// Read and write timeouts share one timer event per connection that is re-armed only when a deadline
/// moves earlier; a later one is found when the event fires early. These pin what that must not change.
/// Durations are lower bounds only (a loaded machine may be late, never early).
@Suite struct TimeoutTests {
    /// An accepted connection on one end of a socket pair (the other end returned, to close),
    /// reporting to a recorder.
    private func recordedConnection(_ loop: EventLoop) -> (Connection, EventRecorder, Int32) {
        let (a, b) = socketPair()
        let recorder = EventRecorder()
        let c = Connection.accepted(loop: loop, fd: a, peer: PeerAddress(host: "test", port: 0))!
        c.handler = recorder
        return (c, recorder, b)
    }

    /// Runs `loop` for `milliseconds`, or (`until`) only until it holds (checked every 10 ms).
    private func run(_ loop: EventLoop, milliseconds: Int64, until: (() -> Bool)? = nil) {
        let stop = LoopTimer(loop: loop) { loop.stop() }
        stop.schedule(milliseconds: milliseconds)
        let check = LoopTimer(loop: loop, repeating: true) { if until?() == true { loop.stop() } }
        if until != nil { check.schedule(milliseconds: 10) }
        loop.run()
    }

    @Test func aReadTimeoutTakenBackBySetTimeoutsNeverFires() throws {
        let loop = try EventLoop()
        let (c, recorder, b) = recordedConnection(loop)
        defer { Glibc.close(b) }
        c.setTimeouts(readMilliseconds: 50, writeMilliseconds: nil)
        let takeBack = LoopTimer(loop: loop) { c.setTimeouts(readMilliseconds: nil, writeMilliseconds: nil) }
        takeBack.schedule(milliseconds: 10)
        run(loop, milliseconds: 300)
        #expect(recorder.events.isEmpty)
        #expect(c.isReading)
        c.close()
    }

    @Test func theReadTimeoutRestartsWithEveryReadAndFiresAfterTheLastOne() throws {
        let loop = try EventLoop()
        let (c, recorder, b) = recordedConnection(loop)
        defer { Glibc.close(b) }
        c.setTimeouts(readMilliseconds: 150, writeMilliseconds: nil)
        let start = MonotonicTime.milliseconds()
        var sent = 0
        let writer = LoopTimer(loop: loop, repeating: true) {
            guard sent < 6 else { return }
            var byte: UInt8 = 1
            _ = Glibc.write(b, &byte, 1)
            sent += 1
        }
        writer.schedule(milliseconds: 50)   // 6 bytes over 300 ms: twice the timeout, never a pause of it
        run(loop, milliseconds: 3_000, until: { !recorder.events.isEmpty })
        #expect(sent == 6)
        #expect(recorder.events.count == 1 && recorder.events.first?.0 == "readTimeout")
        if let (_, at) = recorder.events.first {
            #expect(at - start >= 300)                      // not while bytes kept coming
            #expect(at - recorder.lastReadMs >= 150)        // a whole timeout after the last of them
        }
        #expect(!c.isReading)                               // a read timeout stops reading, as before
        c.close()
    }

    @Test func aWriteTimeoutFiresWhenThePeerReadsNothing() throws {
        let loop = try EventLoop()
        let (c, recorder, b) = recordedConnection(loop)
        defer { Glibc.close(b) }
        c.setTimeouts(readMilliseconds: nil, writeMilliseconds: 100)
        let start = MonotonicTime.milliseconds()
        c.output.append([UInt8](repeating: 7, count: 8 << 20))   // far more than a socket pair buffers
        run(loop, milliseconds: 3_000, until: { !recorder.events.isEmpty })
        #expect(recorder.events.map(\.0) == ["writeTimeout"])
        if let (_, at) = recorder.events.first { #expect(at - start >= 100) }
        c.close()
    }

    @Test func aTimerMovedLaterFiresOnceAtTheLaterTime() throws {
        let loop = try EventLoop()
        var fired: [Int64] = []
        let start = MonotonicTime.milliseconds()
        let timer = LoopTimer(loop: loop) { fired.append(MonotonicTime.milliseconds()) }
        timer.schedule(milliseconds: 30)
        let mover = LoopTimer(loop: loop) { timer.schedule(milliseconds: 200) }
        mover.schedule(milliseconds: 5)
        run(loop, milliseconds: 600)
        #expect(fired.count == 1)
        if let at = fired.first { #expect(at - start >= 205) }
        #expect(!timer.isPending)
    }

    @Test func aTimerMovedEarlierFiresAtTheEarlierTime() throws {
        let loop = try EventLoop()
        var fired = 0
        let timer = LoopTimer(loop: loop) { fired += 1; loop.stop() }
        timer.schedule(milliseconds: 60_000)
        timer.schedule(milliseconds: 20)
        run(loop, milliseconds: 5_000)
        #expect(fired == 1)
    }

    /// fireSoon on a timer scheduled for later (and moved later still) runs the action in this loop
    /// pass, once: the schedule is dropped, as libevent drops a one-shot event's timeout before its callback.
    @Test func aScheduledTimerFiredSoonRunsOnceNow() throws {
        let loop = try EventLoop()
        var fired = 0
        let timer = LoopTimer(loop: loop) { fired += 1 }
        timer.schedule(milliseconds: 100)
        timer.schedule(milliseconds: 150)   // kept armed for 100 ms, due at 150
        timer.fireSoon()
        let check = LoopTimer(loop: loop) { #expect(fired == 1) }
        check.schedule(milliseconds: 50)
        run(loop, milliseconds: 400)
        #expect(fired == 1 && !timer.isPending)
    }

    @Test func aCancelledTimerThatWasMovedLaterDoesNotFire() throws {
        let loop = try EventLoop()
        var fired = 0
        let timer = LoopTimer(loop: loop) { fired += 1 }
        timer.schedule(milliseconds: 20)
        timer.schedule(milliseconds: 60)   // kept armed for 20 ms, due at 60
        timer.cancel()
        run(loop, milliseconds: 200)
        #expect(fired == 0 && !timer.isPending)
    }
}
