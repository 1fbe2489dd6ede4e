import Testing
@testable import WeirBalance

/// The beacon datagram: round trip, and every way a datagram is refused.
@Suite struct PeerBeaconTests {
    static let sample = Beacon(sender: "peer-b.dc1", incarnation: 1_764_600_000_123, sequence: 42,
                               sentAtMs: 1_764_600_012_345, load: 0.625, capacity: 20, state: .up,
                               serves: ["/banking/*", "/api/"], addresses: ["198.51.100.2/24"],
                               holding: ["198.51.100.3/24"], standsInFor: ["peer-a", "peer-c"])

    func encode(_ beacon: Beacon = sample) -> [UInt8] { BeaconCodec.encode(beacon, mac: TestHMAC.mac) }
    func decode(_ datagram: [UInt8]) -> Result<Beacon, BeaconCodec.Rejection> { BeaconCodec.decode(datagram, mac: TestHMAC.mac) }

    /// A datagram with a valid MAC over `body` (for bodies `encode` would never write).
    func signed(_ body: [UInt8]) -> [UInt8] { body + TestHMAC.mac(body) }
    func body(_ datagram: [UInt8]) -> [UInt8] { Array(datagram.dropLast(32)) }

    @Test func roundTrip() {
        let datagram = encode()
        #expect(Array(datagram.prefix(4)) == Array("WRB".utf8) + [1])
        #expect(decode(datagram) == .success(Self.sample))
        var minimal = Beacon(sender: "a", incarnation: 0, sequence: 0, sentAtMs: -5, load: 0, capacity: 1, state: .maint)
        #expect(decode(encode(minimal)) == .success(minimal))
        #expect(encode(minimal).count == BeaconCodec.minimumSize)
        minimal.load = 3.5
        #expect(decode(encode(minimal)) == .success(minimal))
    }

    @Test func layoutIsBigEndianWithFloat64Load() {
        let d = encode()
        #expect(Array(d[4..<12]) == [0, 0, 0x01, 0x9A, 0xDA, 0x5B, 0x2E, 0x7B])   // 1_764_600_000_123
        #expect(Array(d[12..<20]) == [0, 0, 0, 0, 0, 0, 0, 42])
        #expect(Array(d[28..<36]) == [0x3F, 0xE4, 0, 0, 0, 0, 0, 0])            // 0.625
        #expect(Array(d[36..<41]) == [0, 0, 0, 20, 0])
        #expect(d[41] == 10 && Array(d[42..<52]) == Array("peer-b.dc1".utf8))
    }

    @Test func aTamperedByteAnywhereIsRejected() {
        let datagram = encode()
        for i in datagram.indices {
            for flip: UInt8 in [0x01, 0x80, 0xFF] {
                var tampered = datagram
                tampered[i] ^= flip
                let expected: BeaconCodec.Rejection = i < 3 ? .badMagic : i == 3 ? .unsupportedVersion : .badMAC
                #expect(decode(tampered) == .failure(expected), "byte \(i) ^ \(flip)")
            }
        }
    }

    @Test func aTruncatedDatagramAtEveryLengthIsRejected() {
        let datagram = encode()
        for length in 0..<datagram.count {
            let result = decode(Array(datagram.prefix(length)))
            if case .success = result { Issue.record("accepted \(length) of \(datagram.count) bytes") }
            if length < BeaconCodec.minimumSize { #expect(result == .failure(.truncated)) }
        }
    }

    @Test func theWrongSecretIsABadMAC() {
        #expect(BeaconCodec.decode(encode(), mac: TestHMAC.otherMAC) == .failure(.badMAC))
        #expect(decode(BeaconCodec.encode(Self.sample, mac: TestHMAC.otherMAC)) == .failure(.badMAC))
    }

    @Test func oversizedDatagramsAreRefusedBeforeAnythingElse() {
        #expect(decode([UInt8](repeating: 0, count: BeaconCodec.maximumSize + 1)) == .failure(.tooLarge))
        #expect(decode(encode() + [UInt8](repeating: 0, count: BeaconCodec.maximumSize)) == .failure(.tooLarge))
    }

    @Test func otherVersionsAndMagicAreNamed() {
        var d = encode()
        d[3] = BeaconCodec.loadVersion + 1
        #expect(decode(d) == .failure(.unsupportedVersion))
        d = encode()
        d[0] = UInt8(ascii: "X")
        #expect(decode(d) == .failure(.badMagic))
        #expect(BeaconCodec.Rejection.badMAC.description.contains("MAC"))
        #expect(Set([BeaconCodec.Rejection.truncated, .badMagic, .unsupportedVersion, .malformed, .tooLarge, .badMAC].map(\.description)).count == 6)
    }

    @Test func authenticatedButBrokenBodiesAreTruncatedOrMalformed() {
        let good = body(encode())
        // A trailing byte after the last list.
        #expect(decode(signed(good + [0])) == .failure(.malformed))
        // The body cut inside the lists: a length runs past the end.
        #expect(decode(signed(Array(good.dropLast(3)))) == .failure(.truncated))
        // Unknown state.
        var b = good
        b[40] = 4
        #expect(decode(signed(b)) == .failure(.malformed))
        // Capacity 0 and above the limit.
        b = good
        b[36..<40] = [0, 0, 0, 0]
        #expect(decode(signed(b)) == .failure(.malformed))
        b[36..<40] = [0, 0x0F, 0x42, 0x41]     // 1_000_001
        #expect(decode(signed(b)) == .failure(.malformed))
        // NaN, infinite and negative loads.
        for bits: UInt64 in [0x7FF8_0000_0000_0000, 0x7FF0_0000_0000_0000, 0xBFF0_0000_0000_0000] {
            b = good
            b[28..<36] = ArraySlice((0..<8).map { UInt8(truncatingIfNeeded: bits >> UInt64(56 - 8 * $0)) })
            #expect(decode(signed(b)) == .failure(.malformed))
        }
        // An empty sender, and one with a byte outside [A-Za-z0-9._-].
        b = good
        b[41] = 0
        #expect(decode(signed(b)) != .success(Self.sample))
        #expect(decode(signed(Array(good[0..<41]) + [0, 0, 0, 0, 0, 0])) == .failure(.malformed))
        b = good
        b[42] = UInt8(ascii: "/")
        #expect(decode(signed(b)) == .failure(.malformed))
    }

    @Test func countsAndLengthsAboveTheLimitsAreMalformed() {
        let header = Array(body(encode())[0..<41]) + [1, UInt8(ascii: "a")]
        let path = [UInt8(ascii: "/")]
        // 33 paths.
        #expect(decode(signed(header + [33] + (0..<33).flatMap { _ in [1] + path } + [0, 0, 0])) == .failure(.malformed))
        // A 129-byte path.
        #expect(decode(signed(header + [1, 129] + [UInt8](repeating: 0x2F, count: 129) + [0, 0, 0])) == .failure(.malformed))
        // 17 addresses; a 50-byte address.
        #expect(decode(signed(header + [0, 17] + (0..<17).flatMap { _ in [1, 0x31] } + [0, 0])) == .failure(.malformed))
        #expect(decode(signed(header + [0, 1, 50] + [UInt8](repeating: 0x31, count: 50) + [0, 0])) == .failure(.malformed))
        // 33 stand-in ids; a 65-byte sender.
        #expect(decode(signed(header + [0, 0, 0, 33] + (0..<33).flatMap { _ in [1, 0x61] })) == .failure(.malformed))
        let longSender = Array(body(encode())[0..<41]) + [65] + [UInt8](repeating: 0x61, count: 65) + [0, 0, 0, 0]
        #expect(decode(signed(longSender)) == .failure(.malformed))
        // A control character in a path.
        #expect(decode(signed(header + [1, 2, 0x2F, 0x0A, 0, 0, 0])) == .failure(.malformed))
        // At the limits it decodes.
        let full = header + [32] + (0..<32).flatMap { _ in [1] + path } + [16] + (0..<16).flatMap { _ in [1, 0x31] } + [0, 32] + (0..<32).flatMap { _ in [1, 0x61] }
        #expect((try? decode(signed(full)).get())?.standsInFor.count == 32)
    }

    @Test func encodeClipsTheRunTimeFields() {
        var beacon = Self.sample
        beacon.load = .nan
        beacon.holding = (0..<40).map { "198.51.100.\($0)/24" } + ["bad address"]
        let decoded = try? decode(encode(beacon)).get()
        #expect(decoded?.load == BeaconCodec.maximumLoad)
        #expect(decoded?.holding == Array(beacon.holding.prefix(16)))
        beacon.load = -1
        #expect((try? decode(encode(beacon)).get())?.load == 0)
        beacon.load = .infinity
        #expect((try? decode(encode(beacon)).get())?.load == BeaconCodec.maximumLoad)
    }

    @Test func encodeDropsHoldingThatDoesNotFitAndStaysWithinMaximumSize() {
        var beacon = Self.sample
        beacon.serves = (0..<10).map { "/" + String(repeating: "p", count: 100) + "\($0)" }
        beacon.holding = (0..<16).map { _ in "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128" }
        #expect(BeaconCodec.problem(with: beacon) == nil)
        let datagram = encode(beacon)
        #expect(datagram.count <= BeaconCodec.maximumSize)
        let decoded = try? decode(datagram).get()
        #expect(decoded != nil)
        #expect((decoded?.holding.count ?? 99) < 16)
        #expect(decoded?.serves == beacon.serves)
    }

    @Test func problemNamesWhatCannotBeEncoded() {
        var beacon = Self.sample
        beacon.sender = "peer b"
        #expect(BeaconCodec.problem(with: beacon) != nil)
        beacon = Self.sample
        beacon.capacity = 0
        #expect(BeaconCodec.problem(with: beacon) != nil)
        beacon = Self.sample
        beacon.serves = (0..<33).map { "/p\($0)" }
        #expect(BeaconCodec.problem(with: beacon) != nil)
        beacon = Self.sample
        beacon.addresses = [String(repeating: "1", count: 50)]
        #expect(BeaconCodec.problem(with: beacon) != nil)
        beacon = Self.sample
        beacon.standsInFor = ["ok", "not/ok"]
        #expect(BeaconCodec.problem(with: beacon) != nil)
        beacon = Self.sample
        beacon.serves = (0..<32).map { "/" + String(repeating: "p", count: 120) + "\($0)" }
        #expect(BeaconCodec.problem(with: beacon)?.contains("bytes") == true)
        #expect(BeaconCodec.problem(with: Self.sample) == nil)
    }
}
