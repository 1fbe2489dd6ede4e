import XCTest
@testable import WeirPeer

/// Records command lines instead of running them; answers from a script of results.
final class RecordingRunner: CommandRunner {
    final class Started: RunningCommand {
        var result: CommandResult?
        var stopped = false
        func stop() { stopped = true }
    }

    var ran: [[String]] = []
    var startedCommands: [([String], Started)] = []
    var results: [CommandResult] = []
    var startFails = false

    func run(_ arguments: [String]) -> CommandResult {
        ran.append(arguments)
        return results.isEmpty ? CommandResult(status: 0, standardError: "") : results.removeFirst()
    }

    func start(_ arguments: [String]) throws -> RunningCommand {
        if startFails { throw CocoaError(.fileNoSuchFile) }
        let started = Started()
        startedCommands.append((arguments, started))
        return started
    }
}

final class AddressKeeperTests: XCTestCase {
    let v4 = ManagedAddress(cidr: "198.51.100.1/24", device: "eth0")
    let v6 = ManagedAddress(cidr: "2001:db8::1/64", device: "eth1")
    var runner = RecordingRunner()
    var lines: [String] = []

    func keeper() -> AddressKeeper {
        AddressKeeper(log: { self.lines.append($0) }, ipPath: "/sbin/ip", arpingPath: "/usr/bin/arping", runner: runner)
    }

    func testManagedAddressParts() {
        XCTAssertFalse(v4.isIPv6)
        XCTAssertTrue(v6.isIPv6)
        XCTAssertEqual(v4.address, "198.51.100.1")
        XCTAssertEqual(v6.address, "2001:db8::1")
        XCTAssertEqual(v4.description, "198.51.100.1/24 dev eth0")
    }

    func testHoldReplacesThenAnnouncesThreeTimes() {
        let k = keeper()
        XCTAssertTrue(k.hold(v4))
        XCTAssertEqual(runner.ran, [["/sbin/ip", "-4", "addr", "replace", "198.51.100.1/24", "dev", "eth0"]])
        XCTAssertEqual(runner.startedCommands.map(\.0),
                       [["/usr/bin/arping", "-q", "-U", "-c", "3", "-I", "eth0", "198.51.100.1"]])
        XCTAssertEqual(k.held, [v4])
        XCTAssertEqual(k.takeovers, 1)
        XCTAssertEqual(k.announcements, 1)
        XCTAssertEqual(k.failures, 0)
    }

    func testHoldingTwiceCountsOneTakeover() {
        let k = keeper()
        k.hold(v4)
        k.hold(v4)
        XCTAssertEqual(k.held, [v4])
        XCTAssertEqual(k.takeovers, 1)
        XCTAssertEqual(runner.ran.count, 2, "replace is idempotent, so it runs each time")
    }

    func testIPv6IsAddedWithoutDADAndNotAnnounced() {
        let k = keeper()
        XCTAssertTrue(k.hold(v6))
        XCTAssertEqual(runner.ran, [["/sbin/ip", "-6", "addr", "replace", "2001:db8::1/64", "dev", "eth1", "nodad"]])
        XCTAssertTrue(runner.startedCommands.isEmpty)
        k.refresh()
        XCTAssertEqual(lines.filter { $0.contains("not announced") }.count, 1, "said once")
    }

    func testFailedAddIsLoggedWithCommandAndStderrAndCounted() {
        runner.results = [CommandResult(status: 2, standardError: "RTNETLINK answers: Operation not permitted\n")]
        let k = keeper()
        XCTAssertFalse(k.hold(v4))
        XCTAssertEqual(k.held, [])
        XCTAssertEqual(k.failures, 1)
        XCTAssertEqual(k.takeovers, 0)
        XCTAssertTrue(runner.startedCommands.isEmpty, "nothing to announce")
        XCTAssertTrue(lines.contains { $0.contains("/sbin/ip -4 addr replace 198.51.100.1/24 dev eth0")
                                       && $0.contains("Operation not permitted") }, "\(lines)")
    }

    func testReleaseDeletesAndStopsItsAnnouncement() {
        let k = keeper()
        k.hold(v4)
        XCTAssertTrue(k.release(v4))
        XCTAssertEqual(runner.ran.last, ["/sbin/ip", "-4", "addr", "del", "198.51.100.1/24", "dev", "eth0"])
        XCTAssertTrue(runner.startedCommands[0].1.stopped)
        XCTAssertEqual(k.held, [])
        XCTAssertEqual(k.releases, 1)
    }

    func testReleasingAnAbsentAddressIsFine() {
        runner.results = [CommandResult(status: 2, standardError: "RTNETLINK answers: Cannot assign requested address\n")]
        let k = keeper()
        XCTAssertTrue(k.release(v4))
        XCTAssertEqual(k.failures, 0)
        XCTAssertEqual(k.releases, 0, "it was not held")
    }

    func testReleaseOnAMissingDeviceFails() {
        let k = keeper()
        k.hold(v4)
        runner.results = [CommandResult(status: 1, standardError: "Cannot find device \"eth0\"\n")]
        XCTAssertFalse(k.release(v4))
        XCTAssertEqual(k.failures, 1)
        XCTAssertEqual(k.held, [v4], "still ours as far as we know")
    }

    func testRefreshAnnouncesEachHeldAddressOnceUnlessStillAnnouncing() {
        let k = keeper()
        let other = ManagedAddress(cidr: "198.51.100.2/24", device: "eth0")
        k.hold(v4)
        k.hold(other)
        runner.startedCommands[0].1.result = CommandResult(status: 0, standardError: "")
        k.refresh()
        XCTAssertEqual(runner.startedCommands.count, 3, "the second one's announcement still runs")
        XCTAssertEqual(runner.startedCommands[2].0, ["/usr/bin/arping", "-q", "-U", "-c", "1", "-I", "eth0", "198.51.100.1"])
        XCTAssertEqual(k.announcements, 3)
    }

    func testFailedAnnouncementIsCountedWhenCollected() {
        let k = keeper()
        k.hold(v4)
        runner.startedCommands[0].1.result = CommandResult(status: 2, standardError: "arping: socket: Operation not permitted")
        k.refresh()
        XCTAssertEqual(k.failures, 1)
        XCTAssertTrue(lines.contains { $0.contains("arping -q -U -c 3 -I eth0 198.51.100.1") && $0.contains("not permitted") })
    }

    func testArpingThatCannotStartIsCounted() {
        runner.startFails = true
        let k = keeper()
        XCTAssertTrue(k.hold(v4), "the address is held even if it could not be announced")
        XCTAssertEqual(k.failures, 1)
        XCTAssertEqual(k.announcements, 0)
    }

    func testLocateFallsBackWhenAbsent() {
        XCTAssertEqual(AddressKeeper.locate("no-such-tool-weir", fallback: "/x/y"), "/x/y")
        XCTAssertTrue(AddressKeeper.locate("sh", fallback: "/nope").hasSuffix("/sh"))
    }

    /// The real runner: a missing executable is a failure, not a crash; stderr is captured.
    func testProcessRunnerReportsStatusAndStderr() throws {
        let result = ProcessRunner().run(["/bin/sh", "-c", "echo oops >&2; exit 3"])
        XCTAssertEqual(result, CommandResult(status: 3, standardError: "oops\n"))
        XCTAssertEqual(ProcessRunner().run(["/nonexistent/tool"]).status, -1)
        let started = try ProcessRunner().start(["/bin/sh", "-c", "sleep 0.2"])
        XCTAssertNil(started.result)
        let deadline = Date().addingTimeInterval(5)
        while started.result == nil && Date() < deadline { usleep(20_000) }
        XCTAssertEqual(started.result?.status, 0)
    }
}
