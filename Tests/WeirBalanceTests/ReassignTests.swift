import Testing
import WeirBalance
import WeirConfig

/// The exclusion rule of `assign?failed=ID` (source document 004), on a manual clock.
@Suite struct ExclusionTableTests {
    static let second: UInt64 = 1_000_000_000

    @Test func anExclusionLastsItsDurationAndARepeatedReportRenewsIt() {
        var table = ExclusionTable(durationNanoseconds: 60 * Self.second, capacity: 10)
        table.exclude(server: 2, for: "k", now: 100 * Self.second)
        #expect(table.excluded(for: "k", now: 100 * Self.second) == [2])
        #expect(table.excluded(for: "k", now: 160 * Self.second - 1) == [2])
        #expect(table.excluded(for: "k", now: 160 * Self.second) == [])
        table.exclude(server: 2, for: "k", now: 150 * Self.second)
        #expect(table.excluded(for: "k", now: 200 * Self.second) == [2])
        #expect(table.excluded(for: "k", now: 210 * Self.second) == [])
    }

    @Test func exclusionsArePerClientAndAClientCanExcludeSeveralServers() {
        var table = ExclusionTable(durationNanoseconds: 60 * Self.second, capacity: 10)
        table.exclude(server: 3, for: "a", now: 0)
        table.exclude(server: 1, for: "a", now: 10 * Self.second)
        table.exclude(server: 0, for: "b", now: 0)
        #expect(table.excluded(for: "a", now: 20 * Self.second) == [1, 3])
        #expect(table.excluded(for: "b", now: 20 * Self.second) == [0])
        #expect(table.excluded(for: "c", now: 20 * Self.second) == [])
        // Each server's exclusion expires on its own.
        #expect(table.excluded(for: "a", now: 65 * Self.second) == [1])
    }

    @Test func theTableIsBoundedExpiredEntriesGoFirstThenTheOneThatEndsFirst() {
        var table = ExclusionTable(durationNanoseconds: 60 * Self.second, capacity: 2)
        table.exclude(server: 0, for: "old", now: 0)
        table.exclude(server: 0, for: "mid", now: 30 * Self.second)
        // "old" has expired at 70 s: it makes room, "mid" stays.
        table.exclude(server: 1, for: "new", now: 70 * Self.second)
        #expect(table.clientCount == 2)
        #expect(table.excluded(for: "mid", now: 70 * Self.second) == [0])
        #expect(table.excluded(for: "new", now: 70 * Self.second) == [1])
        // Nothing has expired at 80 s: "mid" (ends at 90 s) is dropped for "newer".
        table.exclude(server: 2, for: "newer", now: 80 * Self.second)
        #expect(table.clientCount == 2)
        #expect(table.excluded(for: "mid", now: 80 * Self.second) == [])
        #expect(table.excluded(for: "new", now: 80 * Self.second) == [1])
        #expect(table.excluded(for: "newer", now: 80 * Self.second) == [2])
        // A known client adds servers without evicting anyone.
        table.exclude(server: 0, for: "new", now: 80 * Self.second)
        #expect(table.clientCount == 2 && table.excluded(for: "newer", now: 80 * Self.second) == [2])
    }

    @Test func reportsAreCountedPerServerAndHandedToTheProbeHook() {
        let reports = FailureReports(servers: 3, durationNanoseconds: Self.second, capacity: 5)
        let probed = Probed()
        reports.setProbeHook { probed.add($0) }
        reports.report(server: 1, for: "a", now: 0)
        reports.report(server: 1, for: "b", now: 0)
        reports.report(server: 7, for: "b", now: 0)          // no such server: ignored
        #expect(reports.count(server: 1) == 2 && reports.count(server: 0) == 0 && reports.count(server: 7) == 0)
        #expect(probed.servers == [1, 1])
        #expect(reports.excluded(for: "a", now: Self.second - 1) == [1])
        #expect(reports.excluded(for: "a", now: Self.second) == [])
    }
}

final class Probed: @unchecked Sendable {
    private(set) var servers: [Int] = []
    func add(_ server: Int) { servers.append(server) }
}

/// `assign?failed=ID` and `alive?server=ID` through `Decision.answer`.
@Suite struct ReassignAnswerTests {
    func config(exclusion: Duration = .seconds(60)) -> WeirConfiguration {
        bankConfiguration(discovery: DiscoverySettings(failedExclusion: exclusion))
    }

    func assigned(_ verdict: Verdict) -> Assignment? {
        guard case .local(.assignment(let a)) = verdict else { return nil }
        return a
    }

    @Test func aReportedServerIsNotAssignedToThatClientUntilTheExclusionEnds() throws {
        let gateway = Asker(config())
        // Round robin over a, b, c; client 192.0.2.1 reports a.
        for _ in 0..<6 {
            let a = try #require(assigned(gateway.ask("/.well-known/weir/assign?path=/other&failed=a")))
            #expect(a.id != "a" && a.failed == 0, "\(a)")
        }
        for _ in 0..<6 {
            #expect(assigned(gateway.ask("/.well-known/weir/assign?path=/other"))?.id != "a")
        }
        // Another client still gets a.
        let others = (0..<3).compactMap { _ in assigned(gateway.ask("/.well-known/weir/assign?path=/other", client: "192.0.2.9"))?.id }
        #expect(Set(others) == ["a", "b", "c"])
        #expect(gateway.snapshot.failureReports.count(server: 0) == 6)
        // The report never changes the server's health.
        #expect(gateway.snapshot.servers[0].condition == .up)
        gateway.clock.advance(milliseconds: 60_000)
        let after = (0..<3).compactMap { _ in assigned(gateway.ask("/.well-known/weir/assign?path=/other"))?.id }
        #expect(Set(after) == ["a", "b", "c"])
    }

    @Test func aClientWithAPinIsKnownByItsSessionWhichTheNewAssignmentKeeps() throws {
        let gateway = Asker(config())
        let first = try #require(assigned(gateway.ask("/.well-known/weir/assign?path=/bank/")))
        let token = try #require(first.token)
        let again = try #require(assigned(gateway.ask("/.well-known/weir/assign?path=/bank/&failed=\(first.id)",
                                                      cookie: token, client: "192.0.2.50")))
        #expect(again.id != first.id && again.failed == first.server)
        #expect(gateway.pin(try #require(again.token))?.session == gateway.pin(token)?.session)
        // The same session from another address is still excluded; the first address without the pin is not.
        for _ in 0..<4 {
            #expect(assigned(gateway.ask("/.well-known/weir/assign?path=/bank/", cookie: token, client: "192.0.2.77"))?.id != first.id)
        }
        let plain = (0..<6).compactMap { _ in assigned(gateway.ask("/.well-known/weir/assign?path=/bank/", client: "192.0.2.50"))?.id }
        #expect(plain.contains(first.id))
    }

    @Test func whenEveryServerIsExcludedTheAnswerIs503AndTheReportStillCounts() {
        let gateway = Asker(config())
        for id in ["a", "b"] { _ = gateway.ask("/.well-known/weir/assign?path=/other&failed=\(id)") }
        #expect(assigned(gateway.ask("/.well-known/weir/assign?path=/other&failed=c")) == nil)
        #expect(gateway.ask("/.well-known/weir/assign?path=/other") == .reject(status: 503, reason: "no server available for /other"))
        #expect(gateway.snapshot.failureReports.count(server: 2) == 1)
    }

    @Test func anUnknownFailedServerIs400() {
        let gateway = Asker(config())
        #expect(gateway.ask("/.well-known/weir/assign?failed=zz") == .reject(status: 400, reason: "failed= names no server (zz)"))
        #expect(gateway.ask("/.well-known/weir/assign?failed=") == .reject(status: 400, reason: "failed= names no server ()"))
    }

    @Test func aliveAnswersTheServersConditionAndRejectsBadQueries() {
        let gateway = Asker(config())
        #expect(gateway.ask("/.well-known/weir/alive?server=b") == .local(.alive(ServerAvailability(id: "b", available: true, state: "up"))))
        gateway.snapshot.servers[1].setAdminCondition(.drain)
        #expect(gateway.ask("/.well-known/weir/alive?server=b") == .local(.alive(ServerAvailability(id: "b", available: false, state: "drain"))))
        gateway.snapshot.servers[2].setHealth(up: false, now: gateway.clock.nowNanoseconds)
        #expect(gateway.ask("/.well-known/weir/alive?server=c") == .local(.alive(ServerAvailability(id: "c", available: false, state: "down"))))
        #expect(gateway.ask("/.well-known/weir/alive?server=zz") == .reject(status: 404, reason: "no server zz"))
        #expect(gateway.ask("/.well-known/weir/alive") == .reject(status: 400, reason: "server= is missing (alive?server=ID)"))
        #expect(gateway.ask("/.well-known/weir/alive?server=") == .reject(status: 400, reason: "server= is missing (alive?server=ID)"))
        let moved = Asker(bankConfiguration(discovery: DiscoverySettings(alivePath: "/up")))
        #expect(moved.ask("/up?server=a") == .local(.alive(ServerAvailability(id: "a", available: true, state: "up"))))
        let off = Asker(bankConfiguration(discovery: DiscoverySettings(alivePath: nil)))
        #expect(off.ask("/.well-known/weir/alive?server=a") == .forward(server: 0))
    }
}
