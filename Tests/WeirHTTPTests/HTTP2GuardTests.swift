import Testing
@testable import WeirHTTP

/// A manual clock in nanoseconds.
private struct Clock {
    var now: UInt64 = 1_000_000_000
    mutating func advance(milliseconds: UInt64) { now += milliseconds * 1_000_000 }
}

private typealias T = HTTP2Guard.FrameType
private typealias F = HTTP2Guard.Flag

@Suite("HTTP2Guard")
struct HTTP2GuardTests {
    let small = HTTP2GuardLimits(glitchThreshold: 10, glitchDecayPerSecond: 0)

    @Test func rapidResetPastTheThresholdGoesAway() {
        var guardian = HTTP2Guard(limits: small, now: 0)
        for _ in 0..<10 { #expect(guardian.clientReset(responseStarted: false, now: 0) == .proceed) }
        #expect(guardian.clientReset(responseStarted: false, now: 0) == .goAway(.glitches(.clientReset)))
        // Once closed, every later event answers the same.
        #expect(guardian.frameHeader(type: T.data, flags: F.endStream, length: 5, now: 0)
                == .goAway(.glitches(.clientReset)))
        #expect(guardian.count(of: .clientReset) == 11)
    }

    @Test func resetsAfterTheResponseStartedAreNotGlitches() {
        var guardian = HTTP2Guard(limits: small, now: 0)
        for _ in 0..<1000 { #expect(guardian.clientReset(responseStarted: true, now: 0) == .proceed) }
        #expect(guardian.score == 0)
    }

    @Test func aCancellerThatCompletesAsMuchAsItResetsIsNeverCutOff() {
        var guardian = HTTP2Guard(limits: small, now: 0)
        for _ in 0..<10_000 {
            #expect(guardian.clientReset(responseStarted: false, now: 0) == .proceed)
            guardian.streamCompleted(now: 0)
        }
        #expect(guardian.score == 0)
        #expect(guardian.completedStreams == 10_000)
    }

    @Test func aClientThatResetsTwiceAsMuchAsItCompletesIsCutOff() {
        var guardian = HTTP2Guard(limits: small, now: 0)
        var verdict = HTTP2GuardVerdict.proceed
        var rounds = 0
        while verdict == .proceed && rounds < 100 {
            _ = guardian.clientReset(responseStarted: false, now: 0)
            verdict = guardian.clientReset(responseStarted: false, now: 0)
            guardian.streamCompleted(now: 0)
            rounds += 1
        }
        #expect(verdict == .goAway(.glitches(.clientReset)))
        #expect(rounds == 10)
    }

    @Test func completedStreamsSaveNoReserveForALaterBurst() {
        var guardian = HTTP2Guard(limits: small, now: 0)
        for _ in 0..<1000 { guardian.streamCompleted(now: 0) }
        for _ in 0..<10 { #expect(guardian.provokedReset(now: 0) == .proceed) }
        #expect(guardian.provokedReset(now: 0) == .goAway(.glitches(.provokedReset)))
    }

    @Test func timePaysGlitchesBack() {
        var clock = Clock()
        let limits = HTTP2GuardLimits(glitchThreshold: 10, glitchDecayPerSecond: 10)
        var guardian = HTTP2Guard(limits: limits, now: clock.now)
        // 10 PINGs per second for a minute: forgiven as fast as they come.
        for _ in 0..<600 {
            #expect(guardian.frameHeader(type: T.ping, flags: 0, length: 8, now: clock.now) == .proceed)
            clock.advance(milliseconds: 100)
        }
        #expect(guardian.score <= 1)
        // The same PINGs all at once are a flood.
        var verdict = HTTP2GuardVerdict.proceed
        for _ in 0..<20 where verdict == .proceed {
            verdict = guardian.frameHeader(type: T.ping, flags: 0, length: 8, now: clock.now)
        }
        #expect(verdict == .goAway(.glitches(.ping)))
    }

    @Test func decayKeepsTheUnspentRemainder() {
        var clock = Clock()
        let limits = HTTP2GuardLimits(glitchThreshold: 100, glitchDecayPerSecond: 10)
        var guardian = HTTP2Guard(limits: limits, now: clock.now)
        for _ in 0..<5 { _ = guardian.record(.priority, now: clock.now) }
        // 3 × 60 ms = 180 ms: one glitch (100 ms) forgiven, not zero, not three.
        for _ in 0..<3 {
            clock.advance(milliseconds: 60)
            guardian.streamCompleted(now: clock.now)
        }
        #expect(guardian.score == 5 - 3 - 1)
    }

    @Test func floodFramesCountByTheirHeader() {
        var guardian = HTTP2Guard(limits: small, now: 0)
        #expect(guardian.frameHeader(type: T.settings, flags: F.ack, length: 0, now: 0) == .proceed)
        #expect(guardian.frameHeader(type: T.data, flags: F.endStream, length: 0, now: 0) == .proceed)
        #expect(guardian.frameHeader(type: T.data, flags: 0, length: 100, now: 0) == .proceed)
        #expect(guardian.score == 0)
        _ = guardian.frameHeader(type: T.settings, flags: 0, length: 6, now: 0)
        _ = guardian.frameHeader(type: T.priority, flags: 0, length: 5, now: 0)
        _ = guardian.frameHeader(type: T.data, flags: 0, length: 0, now: 0)
        _ = guardian.frameHeader(type: T.ping, flags: F.ack, length: 8, now: 0)
        #expect(guardian.score == 4)
        #expect(guardian.count(of: .settings) == 1 && guardian.count(of: .emptyData) == 1)
    }

    @Test func theDominantKindNamesTheReason() {
        var guardian = HTTP2Guard(limits: small, now: 0)
        for _ in 0..<3 { _ = guardian.record(.ping, now: 0) }
        var verdict = HTTP2GuardVerdict.proceed
        for _ in 0..<20 where verdict == .proceed {
            verdict = guardian.frameHeader(type: T.settings, flags: 0, length: 0, now: 0)
        }
        #expect(verdict == .goAway(.glitches(.settings)))
        #expect(HTTP2GuardReason.glitches(.settings).description == "too many glitches: SETTINGS flood")
    }

    @Test func windowUpdatesCountWhenZeroOrTinyWhileBlocked() {
        var guardian = HTTP2Guard(limits: small, now: 0)
        #expect(guardian.windowUpdate(increment: 2, wasBlocking: false, now: 0) == .proceed)
        #expect(guardian.windowUpdate(increment: 65_535, wasBlocking: true, now: 0) == .proceed)
        #expect(guardian.score == 0)
        _ = guardian.windowUpdate(increment: 0, wasBlocking: false, now: 0)
        _ = guardian.windowUpdate(increment: 1, wasBlocking: true, now: 0)
        #expect(guardian.count(of: .uselessWindowUpdate) == 2)
    }

    @Test func continuationFloodIsCutAtTheFrameLimit() {
        let limits = HTTP2GuardLimits(maxHeaderBlockFrames: 4)
        var guardian = HTTP2Guard(limits: limits, now: 0)
        #expect(guardian.frameHeader(type: T.headers, flags: 0, length: 10, now: 0) == .proceed)
        for _ in 0..<3 {
            #expect(guardian.frameHeader(type: T.continuation, flags: 0, length: 10, now: 0) == .proceed)
        }
        #expect(guardian.frameHeader(type: T.continuation, flags: 0, length: 10, now: 0) == .goAway(.headerBlockFrames))
    }

    @Test func headerBlockBytesAreCheckedBeforeThePayload() {
        let limits = HTTP2GuardLimits(maxHeaderBlockBytes: 1000)
        var guardian = HTTP2Guard(limits: limits, now: 0)
        #expect(guardian.frameHeader(type: T.headers, flags: 0, length: 600, now: 0) == .proceed)
        #expect(guardian.frameHeader(type: T.continuation, flags: 0, length: 401, now: 0) == .goAway(.headerBlockBytes))
    }

    @Test func eachHeaderBlockStartsAFreshCount() {
        let limits = HTTP2GuardLimits(maxHeaderBlockFrames: 2, maxHeaderBlockBytes: 100)
        var guardian = HTTP2Guard(limits: limits, now: 0)
        for _ in 0..<1000 {
            #expect(guardian.frameHeader(type: T.headers, flags: 0, length: 50, now: 0) == .proceed)
            #expect(guardian.frameHeader(type: T.continuation, flags: F.endHeaders, length: 50, now: 0) == .proceed)
            #expect(guardian.frameHeader(type: T.headers, flags: F.endHeaders | F.endStream, length: 100, now: 0)
                    == .proceed)
        }
    }

    @Test func zeroWindowStallAfterTheTimeout() {
        var clock = Clock()
        let limits = HTTP2GuardLimits(zeroWindowTimeoutNanoseconds: 2_000_000_000)
        var guardian = HTTP2Guard(limits: limits, now: clock.now)
        #expect(guardian.stallDeadline == nil)
        #expect(guardian.checkStall(now: clock.now + 10_000_000_000) == .proceed)
        guardian.sendBlocked(now: clock.now)
        let deadline = clock.now + 2_000_000_000
        clock.advance(milliseconds: 1500)
        guardian.sendBlocked(now: clock.now)  // still blocked: keeps the first time
        #expect(guardian.stallDeadline == deadline)
        #expect(guardian.checkStall(now: clock.now) == .proceed)
        guardian.sendProgressed()
        clock.advance(milliseconds: 1000)
        #expect(guardian.checkStall(now: clock.now) == .proceed)
        guardian.sendBlocked(now: clock.now)
        clock.advance(milliseconds: 2000)
        #expect(guardian.checkStall(now: clock.now) == .goAway(.zeroWindowStall))
        #expect(HTTP2Guard.isStalled(blockedSince: 0, now: 2_000_000_000, limits: limits))
        #expect(!HTTP2Guard.isStalled(blockedSince: 0, now: 1_999_999_999, limits: limits))
    }

    @Test func aZeroThresholdDisablesTheCount() {
        var guardian = HTTP2Guard(limits: HTTP2GuardLimits(glitchThreshold: 0), now: 0)
        for _ in 0..<10_000 { #expect(guardian.clientReset(responseStarted: false, now: 0) == .proceed) }
        #expect(guardian.count(of: .clientReset) == 10_000)
    }

    @Test func theDefaultsAreSafeForBrowsers() {
        let limits = HTTP2GuardLimits()
        #expect(limits.glitchThreshold == 1000)
        #expect(limits.maxHeaderBlockFrames >= 16)
        #expect(HTTP2Guard.enhanceYourCalm == 0xb)
        #expect(MemoryLayout<HTTP2Guard>.size < 200)
    }
}
