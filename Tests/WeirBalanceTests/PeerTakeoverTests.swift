import Testing
@testable import WeirBalance

func permutations<T>(_ items: [T]) -> [[T]] {
    guard let first = items.first else { return [[]] }
    return permutations(Array(items.dropFirst())).flatMap { rest in
        (0...rest.count).map { i in var p = rest; p.insert(first, at: i); return p }
    }
}

/// TakeoverRule and TakeoverPlan: one stand-in per off-line owner, the same on every peer.
@Suite struct PeerTakeoverTests {
    @Test func everyPermutationOfCandidatesPicksTheSameStandIn() {
        let candidates = ["p1", "p2", "p3", "p4", "p5"]
        for owner in ["p0", "p6", "web-a", "web-b"] {
            let answers = Set(permutations(candidates).map { TakeoverRule.standIn(for: owner, candidates: $0) })
            #expect(answers.count == 1, "owner \(owner)")
            #expect(answers.first! != nil)
        }
        #expect(permutations(candidates).count == 120)
    }

    @Test func standInsSpreadOverCandidatesAndIgnoreTheOwnerAndDuplicates() {
        let candidates = ["p1", "p2", "p3", "p4"]
        let chosen = (0..<200).compactMap { TakeoverRule.standIn(for: "owner-\($0)", candidates: candidates) }
        #expect(Set(chosen) == Set(candidates))
        #expect(TakeoverRule.standIn(for: "x", candidates: []) == nil)
        #expect(TakeoverRule.standIn(for: "x", candidates: ["x"]) == nil)
        let one = TakeoverRule.standIn(for: "x", candidates: ["a", "b"])
        #expect(TakeoverRule.standIn(for: "x", candidates: ["b", "a", "b", "a", "x"]) == one)
    }

    /// Three peers a, b, c; b and c both stand in for a (each with its own device).
    let members: [String: TakeoverPlan.MemberView] = [
        "a": .init(standsInFor: [], addresses: ["198.51.100.1/24"]),
        "b": .init(standsInFor: ["a"], addresses: ["198.51.100.2/24"]),
        "c": .init(standsInFor: ["a"], addresses: ["198.51.100.3/24"]),
    ]
    let assume = ["a": ["198.51.100.1/24"]]

    func plan(_ selfID: String, online: Set<String>, isolated: Bool = false) -> Set<String> {
        TakeoverPlan.addressesToHold(selfID: selfID, isolated: isolated, online: online, members: members, assume: assume)
    }

    @Test func exactlyOneStandInTakesAnOffLineOwnersAddress() {
        let standIn = TakeoverRule.standIn(for: "a", candidates: ["b", "c"])!
        let other = standIn == "b" ? "c" : "b"
        #expect(plan(standIn, online: ["b", "c"]) == ["198.51.100.1/24"])
        #expect(plan(other, online: ["b", "c"]) == [])
        // The stand-in goes off-line too: the other one takes over.
        #expect(plan(other, online: [other]) == ["198.51.100.1/24"])
    }

    @Test func theOwnerReclaimsItsAddress() {
        for selfID in ["b", "c"] {
            #expect(plan(selfID, online: ["a", "b", "c"]) == [])
            #expect(plan(selfID, online: ["a"]) == [])
        }
    }

    @Test func anIsolatedPeerHoldsNothing() {
        for selfID in ["b", "c"] {
            #expect(plan(selfID, online: [], isolated: true) == [])
            #expect(plan(selfID, online: ["b", "c"], isolated: true) == [])
        }
        // Not isolated and alone: it stands in (it is the only candidate).
        #expect(plan("b", online: []) == ["198.51.100.1/24"])
    }

    @Test func anAddressAnOnLineMemberAnnouncesAsItsOwnIsNeverTaken() {
        var views = members
        views["c"] = .init(standsInFor: [], addresses: ["198.51.100.3/24", "198.51.100.1/24"])
        #expect(TakeoverPlan.addressesToHold(selfID: "b", isolated: false, online: ["c"], members: views, assume: assume) == [])
    }

    @Test func aMemberThatDoesNotStandInIsNoCandidate() {
        var views = members
        views["c"] = .init(standsInFor: [], addresses: ["198.51.100.3/24"])
        #expect(TakeoverPlan.addressesToHold(selfID: "b", isolated: false, online: ["b", "c"], members: views, assume: assume) == ["198.51.100.1/24"])
        // Self without an `assume` entry for the owner does not stand in.
        #expect(TakeoverPlan.addressesToHold(selfID: "b", isolated: false, online: [], members: views, assume: ["a": []]) == [])
    }
}

/// HopToken: "<sender>.<unix seconds>.<MAC>", URL-safe, ±30 s.
@Suite struct PeerHopTokenTests {
    let now: Int64 = 1_764_600_000_500
    func isMember(_ id: String) -> Bool { ["peer-b", "peer.c"].contains(id) }
    func verify(_ token: String, at ms: Int64? = nil, mac: ([UInt8]) -> [UInt8] = TestHMAC.mac) -> String? {
        HopToken.verify(token, isMember: isMember, nowWallMs: ms ?? now, mac: mac)
    }

    @Test func aTokenVerifiesToItsSenderAndIsURLSafe() {
        let token = HopToken.make(sender: "peer-b", nowWallMs: now, mac: TestHMAC.mac)
        #expect(token.hasPrefix("peer-b.1764600000."))
        #expect(token.utf8.allSatisfy(BeaconCodec.isIDByte))
        #expect(verify(token) == "peer-b")
        // A sender id with a dot still parses (split from the right).
        #expect(verify(HopToken.make(sender: "peer.c", nowWallMs: now, mac: TestHMAC.mac)) == "peer.c")
    }

    @Test func theAgeEdgesAreExact() {
        let token = HopToken.make(sender: "peer-b", nowWallMs: now, mac: TestHMAC.mac)   // 1764600000 s
        #expect(verify(token, at: 1_764_600_030_999) == "peer-b")
        #expect(verify(token, at: 1_764_600_031_000) == nil)
        #expect(verify(token, at: 1_764_599_970_000) == "peer-b")
        #expect(verify(token, at: 1_764_599_969_999) == nil)
    }

    @Test func forgedTamperedAndStrangersTokensAreRefused() {
        let token = HopToken.make(sender: "peer-b", nowWallMs: now, mac: TestHMAC.mac)
        #expect(verify(token, mac: TestHMAC.otherMAC) == nil)
        #expect(verify(HopToken.make(sender: "mallory", nowWallMs: now, mac: TestHMAC.mac)) == nil)
        var bytes = Array(token.utf8)
        for i in bytes.indices {
            let saved = bytes[i]
            bytes[i] = saved == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            #expect(verify(String(decoding: bytes, as: UTF8.self)) == nil, "byte \(i)")
            bytes[i] = saved
        }
        for bad in ["", "peer-b", "peer-b.1764600000", ".1764600000.x", "peer-b..x", "peer-b.-5.x", token + "A", token + ".", "peer b.1764600000.x"] {
            #expect(verify(bad) == nil, "\(bad)")
        }
    }
}
