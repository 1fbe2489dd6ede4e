import Testing
import Glibc
import CLibevent
@testable import WeirIO

@Suite struct SystemCallTests {
    @Test func errnoValuesAreClassified() {
        #expect(ErrnoClass(EINTR) == .interrupted)
        #expect(ErrnoClass(EAGAIN) == .wouldBlock)
        #expect(ErrnoClass(EWOULDBLOCK) == .wouldBlock)
        #expect(ErrnoClass(ECONNRESET) == .failed(ECONNRESET))
        #expect(ErrnoClass(EPIPE) == .failed(EPIPE))
    }

    @Test func anInterruptedCallIsMadeAgainNotTakenForNotReady() {
        var calls = 0
        let result = SystemCall.run { () -> Int in
            calls += 1
            if calls < 3 { weir_set_errno(EINTR); return -1 }
            return 42
        }
        #expect(result == .done(42))
        #expect(calls == 3)
    }

    @Test func notReadyAndRealFailuresAreReturnedAfterOneCall() {
        var calls = 0
        #expect(SystemCall.run { () -> Int32 in calls += 1; weir_set_errno(EAGAIN); return -1 } == .wouldBlock)
        #expect(SystemCall.run { () -> Int32 in calls += 1; weir_set_errno(ECONNRESET); return -1 } == .failed(ECONNRESET))
        #expect(calls == 2)
        // A real system call: reading from a descriptor that is not open.
        var byte: UInt8 = 0
        #expect(SystemCall.run { read(-1, &byte, 1) } == .failed(EBADF))
        #expect(SystemCall.run { () -> Int in 0 } == .done(0))   // end of stream is a result, not a failure
    }

    @Test func errnoAfterALibraryCallIsItsOwnNotAStaleOne() {
        weir_set_errno(EAGAIN)   // left over from an earlier call
        let (value, code) = SystemCall.withErrno { 7 }
        #expect(value == 7)
        #expect(code == 0)
        let (_, failed) = SystemCall.withErrno { () -> Int32 in weir_set_errno(ECONNRESET); return -1 }
        #expect(failed == ECONNRESET)
    }
}

@Suite struct ThreadNameTests {
    /// The name reaches the kernel: /proc shows it, which is what top -H, ps -L and gdb read.
    @Test func aThreadNamesItselfAtTheOSLevelCutTo15Bytes() throws {
        let seen = UnsafeSendableBox<(String, String, String)>()
        let thread = Thread {
            ThreadName.setCurrent("weir-worker-7")
            let comm = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
            let first = ThreadName.current
            ThreadName.setCurrent("weir-worker-1234567")
            seen.value = (comm.trimmingCharacters(in: .newlines), first, ThreadName.current)
            seen.done.signal()
        }
        thread.start()
        seen.done.wait()
        #expect(seen.value?.0 == "weir-worker-7")
        #expect(seen.value?.1 == "weir-worker-7")
        #expect(seen.value?.2 == "weir-worker-123")
    }
}

@Suite struct ClockTests {
    /// Which clock each API reads: wall time is near the Unix epoch's present, monotonic time is
    /// CLOCK_MONOTONIC (since boot here), and the loop's two properties match them.
    @Test func wallAndMonotonicTimeComeFromTheirOwnClocks() throws {
        let loop = try EventLoop()
        let wall = WallClock.milliseconds()
        #expect(wall > 1_700_000_000_000)   // after November 2023
        #expect(abs(loop.wallClockMilliseconds - wall) < 60_000)
        #expect(abs(loop.nowMilliseconds - wall) < 60_000)   // wall time, as it always was
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let monotonic = Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
        #expect(abs(loop.monotonicMilliseconds - monotonic) < 60_000)
        #expect(abs(Int64(MonotonicTime.nanoseconds() / 1_000_000) - monotonic) < 60_000)
        #expect(abs(loop.monotonicMilliseconds - wall) > 60_000)   // not the wall clock
    }
}

import Foundation

/// Hands one value from a test thread back to the test.
private final class UnsafeSendableBox<T>: @unchecked Sendable {
    var value: T?
    let done = DispatchSemaphore(value: 0)
}
