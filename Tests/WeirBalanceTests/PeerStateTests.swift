import Testing
@testable import WeirBalance

func beacon(_ sender: String, incarnation: UInt64 = 1_000, sequence: UInt64, sentAtMs: Int64 = 5_000_000,
            standsInFor: [String] = [], addresses: [String] = []) -> Beacon {
    Beacon(sender: sender, incarnation: incarnation, sequence: sequence, sentAtMs: sentAtMs, load: 0.1,
           capacity: 20, state: .up, addresses: addresses, standsInFor: standsInFor)
}

/// ReplayGuard: strictly increasing (incarnation, sequence) per sender, within the clock window.
@Suite struct PeerReplayTests {
    let now: Int64 = 5_000_000

    @Test func aReplayIsRejected() {
        var guardian = ReplayGuard()
        #expect(guardian.admit(beacon("b", sequence: 7), nowWallMs: now) == .fresh)
        #expect(guardian.admit(beacon("b", sequence: 7), nowWallMs: now) == .replayed)
        #expect(guardian.admit(beacon("b", sequence: 6), nowWallMs: now) == .replayed)
        #expect(guardian.admit(beacon("b", sequence: 8), nowWallMs: now) == .fresh)
        // Another sender has its own counter.
        #expect(guardian.admit(beacon("c", sequence: 0), nowWallMs: now) == .fresh)
    }

    @Test func aRestartHasALargerIncarnationAndStartsItsSequenceAgain() {
        var guardian = ReplayGuard()
        #expect(guardian.admit(beacon("b", incarnation: 1_000, sequence: 900), nowWallMs: now) == .fresh)
        #expect(guardian.admit(beacon("b", incarnation: 2_000, sequence: 0), nowWallMs: now) == .fresh)
        // The old incarnation's later beacons are replays now.
        #expect(guardian.admit(beacon("b", incarnation: 1_000, sequence: 901), nowWallMs: now) == .replayed)
        #expect(guardian.lastAccepted("b").map { [$0.incarnation, $0.sequence] } == [2_000, 0])
    }

    @Test func theClockWindowEdgesAreExact() {
        var guardian = ReplayGuard()
        #expect(guardian.admit(beacon("b", sequence: 1, sentAtMs: now - 120_000), nowWallMs: now) == .fresh)
        #expect(guardian.admit(beacon("b", sequence: 2, sentAtMs: now + 120_000), nowWallMs: now) == .fresh)
        #expect(guardian.admit(beacon("b", sequence: 3, sentAtMs: now - 120_001), nowWallMs: now) == .stale)
        #expect(guardian.admit(beacon("b", sequence: 4, sentAtMs: now + 120_001), nowWallMs: now) == .stale)
        #expect(guardian.admit(beacon("b", sequence: 5, sentAtMs: .min), nowWallMs: now) == .stale)
        // A stale beacon does not move the counter.
        #expect(guardian.lastAccepted("b").map { [$0.incarnation, $0.sequence] } == [1_000, 2])
        var tight = ReplayGuard(maxClockSkewMs: 1_000)
        #expect(tight.admit(beacon("b", sequence: 1, sentAtMs: now - 1_001), nowWallMs: now) == .stale)
    }

    @Test func aFullTableRefusesNewSenders() {
        var guardian = ReplayGuard(maximumSenders: 2)
        #expect(guardian.admit(beacon("a", sequence: 1), nowWallMs: now) == .fresh)
        #expect(guardian.admit(beacon("b", sequence: 1), nowWallMs: now) == .fresh)
        #expect(guardian.admit(beacon("c", sequence: 1), nowWallMs: now) == .stale)
        #expect(guardian.admit(beacon("a", sequence: 2), nowWallMs: now) == .fresh)
    }
}

/// BeaconIntake: decode → member check → replay guard → detector, as the shell runs it.
@Suite struct PeerIntakeTests {
    let ms: UInt64 = 1_000_000

    func intake() -> BeaconIntake {
        BeaconIntake(selfID: "a", members: ["b", "c"], replay: ReplayGuard(),
                     detector: FailureDetector(members: ["b", "c"], intervalNanoseconds: 500 * ms, deadAfter: 3, rise: 2, start: 0))
    }

    func datagram(_ b: Beacon) -> [UInt8] { BeaconCodec.encode(b, mac: TestHMAC.mac) }

    @Test func anUnknownSenderIsRefusedBeforeTheReplayGuard() {
        var path = intake()
        #expect(path.receive(datagram(beacon("mallory", sequence: 1)), now: 0, nowWallMs: 5_000_000, mac: TestHMAC.mac) == .unknownSender("mallory"))
        #expect(path.replay.lastAccepted("mallory") == nil)
        // Its own beacon looped back is not a member either.
        #expect(path.receive(datagram(beacon("a", sequence: 1)), now: 0, nowWallMs: 5_000_000, mac: TestHMAC.mac) == .unknownSender("a"))
    }

    @Test func membersAreAcceptedOnceAndTheDetectorHearsThem() {
        var path = intake()
        let first = datagram(beacon("b", sequence: 1))
        #expect(path.receive(first, now: 0, nowWallMs: 5_000_000, mac: TestHMAC.mac) == .accepted(beacon("b", sequence: 1), []))
        #expect(path.receive(first, now: 100 * ms, nowWallMs: 5_000_100, mac: TestHMAC.mac) == .refused("b", .replayed))
        let second = beacon("b", sequence: 2)
        #expect(path.receive(datagram(second), now: 500 * ms, nowWallMs: 5_000_500, mac: TestHMAC.mac)
                == .accepted(second, [FailureDetector.Transition(id: "b", online: true)]))
        #expect(path.receive(datagram(beacon("b", sequence: 3, sentAtMs: 0)), now: 600 * ms, nowWallMs: 5_000_600, mac: TestHMAC.mac) == .refused("b", .stale))
        #expect(path.receive(first, now: 0, nowWallMs: 5_000_000, mac: TestHMAC.otherMAC) == .rejected(.badMAC))
    }
}

/// FailureDetector on a manual clock: 500 ms × dead_after 3 = 1.5 s; rise 2.
@Suite struct PeerDetectorTests {
    static let ms: UInt64 = 1_000_000
    let ms = PeerDetectorTests.ms
    let t0: UInt64 = 10_000 * PeerDetectorTests.ms

    func detector(rise: Int = 2, members: [String] = ["b", "c"]) -> FailureDetector {
        FailureDetector(members: members, intervalNanoseconds: 500 * ms, deadAfter: 3, rise: rise, start: t0)
    }

    @Test func membersStartOffLineAndRiseAfterRiseBeacons() {
        var d = detector()
        #expect(!d.isOnline("b") && d.lastHeardNanoseconds("b") == nil)
        #expect(d.heard("b", now: t0) == [])
        #expect(!d.isOnline("b"))
        #expect(d.heard("b", now: t0 + 500 * ms) == [.init(id: "b", online: true)])
        #expect(d.isOnline("b") && d.onlineIDs == ["b"])
        #expect(d.heard("b", now: t0 + 1000 * ms) == [])
        #expect(d.heard("nobody", now: t0) == [])
    }

    @Test func theRiseCountNeedsEachBeaconWithinTheDeadline() {
        var d = detector()
        d.heard("b", now: t0)
        // 1.5 s after the previous one: the count starts again.
        #expect(d.heard("b", now: t0 + 1500 * ms) == [])
        #expect(!d.isOnline("b"))
        // 1.499 s after the previous one: it counts.
        #expect(d.heard("b", now: t0 + 2999 * ms) == [.init(id: "b", online: true)])
        var one = detector(rise: 1)
        #expect(one.heard("c", now: t0) == [.init(id: "c", online: true)])
    }

    @Test func silent1499msIsAliveAnd1500msIsDead() {
        var d = detector()
        d.heard("b", now: t0)
        d.heard("b", now: t0 + 500 * ms)
        let last = t0 + 500 * ms
        #expect(d.tick(now: last + 1499 * ms) == [])
        #expect(d.isOnline("b"))
        #expect(d.tick(now: last + 1500 * ms) == [.init(id: "b", online: false)])
        #expect(!d.isOnline("b"))
        #expect(d.tick(now: last + 2000 * ms) == [])
        #expect(d.silenceNanoseconds("b", now: last + 2000 * ms) == 2000 * ms)
        #expect(d.lastHeardNanoseconds("b") == last)
        // Back: `rise` beacons again.
        #expect(d.heard("b", now: last + 3000 * ms) == [])
        #expect(d.heard("b", now: last + 3500 * ms) == [.init(id: "b", online: true)])
    }

    @Test func aLateBeaconWithoutATickFirstTakesTheMemberDown() {
        var d = detector()
        d.heard("b", now: t0)
        d.heard("b", now: t0 + 500 * ms)
        #expect(d.heard("b", now: t0 + 2000 * ms) == [.init(id: "b", online: false)])
        var one = detector(rise: 1)
        one.heard("b", now: t0)
        #expect(one.heard("b", now: t0 + 1500 * ms) == [.init(id: "b", online: false), .init(id: "b", online: true)])
    }

    @Test func anIsolatedPeerIsOneThatHearsNobody() {
        var d = detector()
        // Just started: not isolated until it has run for the deadline.
        #expect(!d.isIsolated(now: t0 + 1499 * ms))
        #expect(d.isIsolated(now: t0 + 1500 * ms))
        // One beacon from anyone (even one not yet on-line) ends the isolation, for 1.5 s.
        d.heard("c", now: t0 + 1600 * ms)
        #expect(!d.isIsolated(now: t0 + 1600 * ms))
        #expect(!d.isIsolated(now: t0 + 3099 * ms))
        #expect(d.isIsolated(now: t0 + 3100 * ms))
        // No members: never isolated (a group of one stands for itself).
        #expect(!detector(members: []).isIsolated(now: t0 + 100_000 * ms))
    }
}
