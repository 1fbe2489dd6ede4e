import Testing
@testable import WeirBalance

/// Version 2 of the beacon: a gateway sharing its register of users appends its counts per server.
@Suite struct PeerBeaconUsersTests {
    static let sample = Beacon(sender: "gw-a", incarnation: 1_764_600_000_123, sequence: 7, sentAtMs: 1_764_600_012_345,
                               load: 0, capacity: 1, state: .up,
                               users: [.init(server: "s1", count: 3), .init(server: "s2", count: 70_000)])

    func encode(_ beacon: Beacon = sample) -> [UInt8] { BeaconCodec.encode(beacon, mac: TestHMAC.mac) }
    func decode(_ datagram: [UInt8]) -> Result<Beacon, BeaconCodec.Rejection> { BeaconCodec.decode(datagram, mac: TestHMAC.mac) }
    func signed(_ body: [UInt8]) -> [UInt8] { body + TestHMAC.mac(body) }

    @Test func roundTripIsVersion2AndWithoutUsersStaysVersion1() {
        let datagram = encode()
        #expect(datagram[3] == BeaconCodec.usersVersion)
        #expect(decode(datagram) == .success(Self.sample))
        #expect(datagram.count == BeaconCodec.size(of: Self.sample))
        // The tail: count, then id + UInt32 per entry, then the MAC.
        let tail = Array(datagram.dropLast(BeaconCodec.macSize).suffix(1 + 2 * (1 + 2 + 4)))
        #expect(tail == [2, 2, 0x73, 0x31, 0, 0, 0, 3, 2, 0x73, 0x32, 0, 1, 0x11, 0x70])
        var plain = Self.sample
        plain.users = []
        #expect(encode(plain)[3] == BeaconCodec.version)
        #expect(decode(encode(plain)) == .success(plain))
    }

    @Test func aTamperedByteAnywhereIsRejected() {
        let datagram = encode()
        for i in datagram.indices {
            var tampered = datagram
            tampered[i] ^= 0x04
            if case .success = decode(tampered) { Issue.record("accepted a change of byte \(i)") }
        }
    }

    @Test func aTruncatedDatagramAtEveryLengthIsRejected() {
        let datagram = encode()
        for length in 0..<datagram.count {
            if case .success = decode(Array(datagram.prefix(length))) { Issue.record("accepted \(length) of \(datagram.count) bytes") }
        }
        // Authenticated but cut inside the users list: truncated; an extra byte: malformed.
        let body = Array(encode().dropLast(BeaconCodec.macSize))
        #expect(decode(signed(Array(body.dropLast(2)))) == .failure(.truncated))
        #expect(decode(signed(body + [0])) == .failure(.malformed))
    }

    @Test func brokenUsersListsAreMalformed() {
        var plain = Self.sample
        plain.users = []
        var body = Array(encode(plain).dropLast(BeaconCodec.macSize))
        body[3] = BeaconCodec.usersVersion
        // Version 2 with an empty list (encode writes version 1 then), with 65 entries, a count above the limit.
        #expect(decode(signed(body + [0])) == .failure(.malformed))
        #expect(decode(signed(body + [65] + (0..<65).flatMap { _ in [1, 0x61, 0, 0, 0, 1] })) == .failure(.malformed))
        #expect(decode(signed(body + [1, 1, 0x61, 0xFF, 0xFF, 0xFF, 0xFF])) == .failure(.malformed))
        #expect(decode(signed(body + [1, 0, 0, 0, 0, 1])) == .failure(.malformed))       // empty server id
        // A version 1 beacon with a users list appended is a trailing byte: malformed.
        body[3] = BeaconCodec.version
        #expect(decode(signed(body + [1, 1, 0x61, 0, 0, 0, 1])) == .failure(.malformed))
    }

    @Test func encodeClipsUsersToTheLimitsAndTheDatagramSize() {
        var big = Self.sample
        big.users = (0..<100).map { Beacon.UserCount(server: String(repeating: "s", count: 60) + "\($0)", count: $0 == 0 ? -5 : 200_000_000) }
        let datagram = encode(big)
        #expect(datagram.count <= BeaconCodec.maximumSize)
        guard case .success(let back) = decode(datagram) else { Issue.record("refused its own encoding"); return }
        #expect(!back.users.isEmpty && back.users.count < 64)
        #expect(back.users[0].count == 0 && back.users.dropFirst().allSatisfy { $0.count == BeaconCodec.maximumUserCount })
        #expect(back.users.map(\.server) == Array(big.users.prefix(back.users.count).map(\.server)))
    }
}
