import Testing
@testable import WeirBalance
import WeirConfig

/// `[group] share_load`: beacon version 3 (requests in flight per server) and the summing of the
/// other gateways' fresh reports (manual clock: plain nanosecond values).
@Suite struct SharedLoadTests {
    static let second: UInt64 = 1_000_000_000
    /// dead_after 3 × interval 500 ms.
    static let maxAge: UInt64 = 1_500_000_000

    static func beacon(_ sender: String, incarnation: UInt64 = 1, sequence: UInt64, _ inFlight: [String: Int],
                       users: [Beacon.UserCount] = []) -> Beacon {
        Beacon(sender: sender, incarnation: incarnation, sequence: sequence, sentAtMs: 1_764_600_012_345, load: 0, capacity: 1,
               state: .up, users: users, inFlight: inFlight.sorted { $0.key < $1.key }.map { .init(server: $0.key, count: $0.value) })
    }

    func encode(_ beacon: Beacon) -> [UInt8] { BeaconCodec.encode(beacon, mac: TestHMAC.mac) }
    func decode(_ datagram: [UInt8]) -> Result<Beacon, BeaconCodec.Rejection> { BeaconCodec.decode(datagram, mac: TestHMAC.mac) }
    func signed(_ body: [UInt8]) -> [UInt8] { body + TestHMAC.mac(body) }

    // MARK: codec

    @Test func roundTripIsVersion3WithOrWithoutUsers() {
        let withUsers = Self.beacon("gw-a", sequence: 1, ["s1": 4, "s2": 1], users: [.init(server: "s1", count: 2)])
        let alone = Self.beacon("gw-a", sequence: 2, ["s1": 4])
        for b in [withUsers, alone] {
            let datagram = encode(b)
            #expect(datagram[3] == BeaconCodec.loadVersion)
            #expect(datagram.count == BeaconCodec.size(of: b))
            #expect(decode(datagram) == .success(b))
        }
        // The tail of `alone`: an empty users list, then one in-flight entry, then the MAC.
        #expect(Array(encode(alone).dropLast(BeaconCodec.macSize).suffix(1 + 1 + 1 + 2 + 4)) == [0, 1, 2, 0x73, 0x31, 0, 0, 0, 4])
        // Nothing in flight: the lower versions, as before (older builds read them).
        #expect(encode(Self.beacon("gw-a", sequence: 3, [:]))[3] == BeaconCodec.version)
        #expect(encode(Self.beacon("gw-a", sequence: 3, [:], users: [.init(server: "s1", count: 2)]))[3] == BeaconCodec.usersVersion)
    }

    @Test func olderVersionsStillParseAndNewerAreRefusedClearly() {
        let v1 = Self.beacon("gw-a", sequence: 1, [:])
        #expect(decode(encode(v1)) == .success(v1))
        // A gateway of an older build sharing only users: version 2, read as before (no in-flight).
        let v2 = Self.beacon("gw-a", sequence: 2, [:], users: [.init(server: "s1", count: 2)])
        #expect(encode(v2)[3] == BeaconCodec.usersVersion)
        #expect(decode(encode(v2)) == .success(v2))
        var body = Array(encode(v1).dropLast(BeaconCodec.macSize))
        body[3] = 4
        #expect(decode(signed(body)) == .failure(.unsupportedVersion))
        #expect(BeaconCodec.Rejection.unsupportedVersion.description.contains("versions 1 to 3"))
    }

    /// A build that reads versions 1 and 2 refuses version 3 on its version byte, before the MAC
    /// (as `unsupportedVersion`, logged and counted as "unsupported_version"). Were the byte
    /// rewritten to 2 and signed again, the v2 reader would still not take the in-flight list for
    /// users: the body is refused as malformed (an empty users list, or bytes after it).
    @Test func aVersion3BodyIsNeverReadAsVersion2() {
        for users in [[], [Beacon.UserCount(server: "s1", count: 2)]] {
            var body = Array(encode(Self.beacon("gw-a", sequence: 1, ["s1": 4], users: users)).dropLast(BeaconCodec.macSize))
            #expect(body[3] == BeaconCodec.loadVersion)
            body[3] = BeaconCodec.usersVersion
            #expect(decode(signed(body)) == .failure(.malformed))
        }
    }

    @Test func brokenInFlightListsAreRefused() {
        var body = Array(encode(Self.beacon("gw-a", sequence: 1, [:])).dropLast(BeaconCodec.macSize))
        body[3] = BeaconCodec.loadVersion
        #expect(decode(signed(body + [0, 0])) == .failure(.malformed))                        // empty in-flight list
        #expect(decode(signed(body + [0])) == .failure(.truncated))                           // no in-flight list at all
        #expect(decode(signed(body + [0, 1, 1, 0x61, 0xFF, 0xFF, 0xFF, 0xFF])) == .failure(.malformed))
        #expect(decode(signed(body + [0, 1, 1, 0x61, 0, 0, 0, 1, 0])) == .failure(.malformed))   // trailing byte
        if case .success = decode(signed(body + [0, 1, 1, 0x61, 0, 0, 0, 1])) {} else { Issue.record("refused a valid v3 body") }
    }

    @Test func encodeClipsInFlightToTheDatagramSize() {
        var big = Self.beacon("gw-a", sequence: 1, [:], users: (0..<40).map { .init(server: String(repeating: "u", count: 60) + "\($0)", count: 1) })
        big.inFlight = (0..<40).map { .init(server: String(repeating: "s", count: 60) + "\($0)", count: 3) }
        let datagram = encode(big)
        #expect(datagram.count <= BeaconCodec.maximumSize)
        guard case .success(let back) = decode(datagram) else { Issue.record("refused its own encoding"); return }
        #expect(back.inFlight.count < 40 && back.inFlight.map(\.server) == Array(big.inFlight.prefix(back.inFlight.count).map(\.server)))
    }

    // MARK: summing

    @Test func freshReportsAreSummedAndStaleOnesAreNot() {
        var shared = SharedLoad(maxAgeNanoseconds: Self.maxAge, selfID: "gw-a")
        shared.record(Self.beacon("gw-b", sequence: 1, ["s1": 3, "s2": 1]), now: 10 * Self.second)
        shared.record(Self.beacon("gw-c", sequence: 1, ["s1": 2]), now: 11 * Self.second)
        #expect(shared.sums(now: 11 * Self.second) == ["s1": 5, "s2": 1])
        // gw-b's report is 1.5 s old at 11.5 s: it no longer counts; gw-c's still does.
        #expect(shared.sums(now: 11 * Self.second + Self.second / 2) == ["s1": 2])
        #expect(!shared.isFresh("gw-b", now: 11 * Self.second + Self.second / 2) && shared.isFresh("gw-c", now: 12 * Self.second))
        #expect(shared.sums(now: 13 * Self.second) == [:])
    }

    @Test func aSilentGatewayDropsOutAfterDeadAfterAndCountsAgainWhenItReturns() {
        var shared = SharedLoad(maxAgeNanoseconds: Self.maxAge, selfID: "gw-a")
        shared.record(Self.beacon("gw-b", sequence: 1, ["s1": 4]), now: 0)
        #expect(shared.sums(now: Self.maxAge - 1) == ["s1": 4])
        #expect(shared.sums(now: Self.maxAge) == [:])
        shared.record(Self.beacon("gw-b", sequence: 2, ["s1": 6]), now: 5 * Self.second)
        #expect(shared.sums(now: 5 * Self.second) == ["s1": 6])
        // A beacon with nothing in flight (v1/v2, or its last one when stopping) says none.
        shared.record(Self.beacon("gw-b", sequence: 3, [:]), now: 5 * Self.second + 1)
        #expect(shared.sums(now: 5 * Self.second + 1) == [:])
    }

    @Test func aRestartedGatewayReplacesItsReportAndOldOnesAreIgnored() {
        var shared = SharedLoad(maxAgeNanoseconds: Self.maxAge, selfID: "gw-a")
        shared.record(Self.beacon("gw-b", incarnation: 100, sequence: 50, ["s1": 9]), now: 0)
        // The new incarnation starts at sequence 1: it replaces the report, not adds to it.
        let recorded1 = shared.record(Self.beacon("gw-b", incarnation: 200, sequence: 1, ["s1": 1]), now: 1)
        #expect(recorded1)
        #expect(shared.sums(now: 1) == ["s1": 1])
        // The old incarnation, or a repeated sequence, changes nothing.
        let recorded2 = shared.record(Self.beacon("gw-b", incarnation: 100, sequence: 51, ["s1": 9]), now: 2)
        #expect(!recorded2)
        let recorded3 = shared.record(Self.beacon("gw-b", incarnation: 200, sequence: 1, ["s1": 7]), now: 2)
        #expect(!recorded3)
        #expect(shared.sums(now: 2) == ["s1": 1])
    }

    /// `share_users`: the pins of the other gateways' registers, summed exactly like their
    /// requests in flight (fresh reports only, a restart replaces, a goodbye without users clears).
    @Test func usersAreSummedTheSameWayAsInFlight() {
        var shared = SharedLoad(maxAgeNanoseconds: Self.maxAge, selfID: "gw-a")
        shared.record(Self.beacon("gw-b", sequence: 1, ["s1": 1], users: [.init(server: "s1", count: 3), .init(server: "s2", count: 1)]), now: 0)
        shared.record(Self.beacon("gw-c", sequence: 1, [:], users: [.init(server: "s1", count: 2)]), now: Self.second)
        #expect(shared.userSums(now: Self.second) == ["s1": 5, "s2": 1])
        #expect(shared.sums(now: Self.second) == ["s1": 1])
        // gw-b silent past its deadline: neither its users nor its in-flight count; gw-c's do.
        #expect(shared.userSums(now: Self.maxAge) == ["s1": 2] && shared.sums(now: Self.maxAge) == [:])
        // gw-b back (a new incarnation after a restart, fewer users): counted again, replaced.
        shared.record(Self.beacon("gw-b", incarnation: 2, sequence: 1, [:], users: [.init(server: "s2", count: 4)]), now: 2 * Self.second)
        #expect(shared.userSums(now: 2 * Self.second) == ["s1": 2, "s2": 4])
        // gw-c's last beacon when stopping carries no users: it stops counting at once.
        shared.record(Self.beacon("gw-c", sequence: 2, [:]), now: 2 * Self.second)
        #expect(shared.userSums(now: 2 * Self.second) == ["s2": 4])
        // Its own beacon never adds its own pins a second time.
        shared.record(Self.beacon("gw-a", sequence: 9, [:], users: [.init(server: "s2", count: 7)]), now: 2 * Self.second)
        #expect(shared.userSums(now: 2 * Self.second) == ["s2": 4])
    }

    @Test func thisGatewaysOwnBeaconIsNeverRecorded() {
        var shared = SharedLoad(maxAgeNanoseconds: Self.maxAge, selfID: "gw-a")
        // Its own beacon (a listener entry pointing back at itself): its count is already local.
        let recorded = shared.record(Self.beacon("gw-a", sequence: 1, ["s1": 4]), now: 0)
        #expect(!recorded)
        #expect(shared.sums(now: 0) == [:] && shared.counts(of: "gw-a") == nil)
        shared.record(Self.beacon("gw-b", sequence: 1, ["s1": 4]), now: 0)
        #expect(shared.sums(now: 0) == ["s1": 4])
    }

    @Test func aReportHeardAfterTheCallersClockIsFresh() {
        // `now` before `heardAt` (a caller passing an older reading): still fresh, no wrap-around.
        var shared = SharedLoad(maxAgeNanoseconds: Self.maxAge, selfID: "gw-a")
        shared.record(Self.beacon("gw-b", sequence: 1, ["s1": 2]), now: 5 * Self.second)
        #expect(shared.sums(now: 4 * Self.second) == ["s1": 2])
    }

    // MARK: the load the rules see

    @Test func effectiveLoadIsOwnPlusRemoteInFlight() {
        let server = ServerState(config: Server(id: "s1", address: SocketAddress(host: "127.0.0.1", port: 9001), capacity: 10), index: 0)
        for _ in 0..<3 { server.requestStarted() }
        #expect(abs(server.effectiveLoad(now: 1) - 0.3) < 1e-9)
        server.setRemoteInFlight(3)
        #expect(server.groupInFlightCount == 6 && server.inFlightCount == 3)
        #expect(abs(server.effectiveLoad(now: 1) - 0.6) < 1e-9)
        // The threshold rule at first level 0.5 keeps home at 0.3 but hands off at 0.6.
        #expect(ThresholdRule.choose(home: 0, loads: [0.3, 0], firstLevel: 0.5, secondLevel: 0.2) == 0)
        #expect(ThresholdRule.choose(home: 0, loads: [server.effectiveLoad(now: 1), 0], firstLevel: 0.5, secondLevel: 0.2) == 1)
        server.setRemoteInFlight(-2)
        #expect(server.remoteInFlightCount == 0)
    }
}
