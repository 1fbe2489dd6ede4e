import Testing
import WeirBalance
import WeirConfig

/// Each policy's distribution over 10,000 picks, with fixed loads.
@Suite struct PolicyDistributionTests {
    let clock = ManualClock()

    func snapshot(_ policy: PolicyName, _ servers: [Server], configure: @escaping (inout Pool) -> Void = { _ in }) -> RoutingSnapshot {
        RoutingSnapshot(configuration: configuration(pools: [pool("p", policy, servers, configure: configure)],
                                                     routes: [Route(name: "r", pool: "p")]),
                        clock: clock)
    }

    func three(weights: [Int] = [1, 1, 1]) -> [Server] {
        [server("a", port: 1, weight: weights[0]), server("b", port: 2, weight: weights[1]), server("c", port: 3, weight: weights[2])]
    }

    /// Counts picks per server over `n` decisions; `client` gives each decision's client address.
    func counts(_ snap: RoutingSnapshot, _ n: Int = 10_000, seed: UInt64 = 7, client: (Int) -> String = { _ in "192.0.2.1" }) -> [Int] {
        var state = PolicyState(snapshot: snap, seed: seed)
        var counts = [Int](repeating: 0, count: snap.servers.count)
        for i in 0..<n {
            guard case .forward(let s, _) = decide(snap, &state, now: clock.nowNanoseconds, client: client(i)) else {
                Issue.record("no pick")
                return counts
            }
            counts[s] += 1
        }
        return counts
    }

    func setInFlight(_ snap: RoutingSnapshot, _ values: [Int]) {
        for (server, value) in values.enumerated() {
            while snap.servers[server].inFlightCount < value { snap.servers[server].requestStarted() }
            while snap.servers[server].inFlightCount > value { snap.servers[server].requestFinished() }
        }
    }

    @Test func roundRobinWeightsAreExactInEveryCycle() {
        let snap = snapshot(.roundRobin, three(weights: [3, 2, 1]))
        var state = PolicyState(snapshot: snap)
        var counts = [0, 0, 0]
        for pick in 1...10_002 {
            guard case .forward(let s, _) = decide(snap, &state, now: clock.nowNanoseconds) else { Issue.record("no pick"); return }
            counts[s] += 1
            if pick % 6 == 0 { #expect(counts == [pick / 2, pick / 3, pick / 6]) }
        }
    }

    @Test func leastLoadWithFixedLoadsPicksOnlyTheLightest() {
        let snap = snapshot(.leastLoad, three())
        setInFlight(snap, [50, 10, 90])
        #expect(counts(snap) == [0, 10_000, 0])
    }

    @Test func leastLoadSpreadsEqualLoadsEvenly() {
        let snap = snapshot(.leastLoad, three())
        setInFlight(snap, [20, 20, 20])
        let c = counts(snap)
        for count in c { #expect(abs(count - 3333) <= 1) }
    }

    @Test func leastLoadUsesFreshReports() {
        let snap = snapshot(.leastLoad, three())
        snap.servers[1].recordReport(load: 0.9, state: nil, now: clock.nowNanoseconds)
        setInFlight(snap, [30, 0, 40])
        #expect(counts(snap, 100) == [100, 0, 0])
    }

    @Test func powerOfTwoChoicesFavoursLightServersWithoutStarvingTheMiddle() {
        let snap = snapshot(.p2c, three())
        setInFlight(snap, [10, 50, 90])
        let c = counts(snap)
        // Pairs are uniform: {0.1,0.5}→0.1, {0.1,0.9}→0.1, {0.5,0.9}→0.5: 2/3, 1/3, 0.
        #expect(c[2] <= 1_100)
        #expect(c[0] >= 5_500)
        #expect(c[1] >= 2_800)          // not least-load in disguise
        #expect(c[0] <= 7_200)
    }

    @Test func powerOfTwoChoicesIsDeterministicForASeedAndVariesAcrossSeeds() {
        let snap = snapshot(.p2c, three())
        var a = PolicyState(snapshot: snap, seed: 1), b = PolicyState(snapshot: snap, seed: 1), c = PolicyState(snapshot: snap, seed: 2)
        var sameSeed = true, otherSeed = true
        for _ in 0..<100 {
            let x = decide(snap, &a, now: clock.nowNanoseconds), y = decide(snap, &b, now: clock.nowNanoseconds)
            let z = decide(snap, &c, now: clock.nowNanoseconds)
            if x != y { sameSeed = false }
            if x != z { otherSeed = false }
        }
        #expect(sameSeed)
        #expect(!otherSeed)
    }

    @Test func hashSendsTheSameKeyToTheSameServer() {
        let snap = snapshot(.hash, three())
        var state = PolicyState(snapshot: snap)
        var first: [String: Verdict] = [:]
        for round in 0..<5 {
            for i in 0..<100 {
                let client = "10.0.\(i).\(i * 7 % 256)"
                let verdict = decide(snap, &state, now: clock.nowNanoseconds, client: client)
                if round == 0 { first[client] = verdict } else { #expect(first[client] == verdict) }
            }
            // Loads do not matter to hash.
            setInFlight(snap, [round * 10, 0, 99])
        }
    }

    @Test func hashSpreadsTenThousandKeysEvenly() {
        let snap = snapshot(.hash, [server("a", port: 1), server("b", port: 2), server("c", port: 3), server("d", port: 4)])
        let c = counts(snap) { "10.\($0 / 65536).\($0 / 256 % 256).\($0 % 256)" }
        for count in c { #expect(abs(count - 2_500) <= 375, "counts \(c)") }      // ±15 % of even
    }

    @Test func hashOnAHeaderFallsBackToTheSourceAddress() {
        let snap = snapshot(.hash, three()) { $0.hashKey = .header("x-user") }
        var state = PolicyState(snapshot: snap)
        var byUser: [Verdict] = []
        for i in 0..<200 {
            // Same user from different addresses: same server.
            let a = decide(snap, &state, now: clock.nowNanoseconds, client: "10.0.0.\(i)", headers: ["x-user": "alice"])
            let b = decide(snap, &state, now: clock.nowNanoseconds, client: "10.0.1.\(i)", headers: ["x-user": "alice"])
            #expect(a == b)
            byUser.append(decide(snap, &state, now: clock.nowNanoseconds, headers: ["x-user": "user\(i)"]))
        }
        #expect(Set(byUser.map { "\($0)" }).count == 3)
        // No header: the client address decides, like hash_key = source.
        let source = snapshot(.hash, three())
        var sourceState = PolicyState(snapshot: source)
        for i in 0..<100 {
            #expect(decide(snap, &state, now: clock.nowNanoseconds, client: "172.16.0.\(i)")
                    == decide(source, &sourceState, now: clock.nowNanoseconds, client: "172.16.0.\(i)"))
        }
    }

    @Test func hashOnACookieOrThePath() {
        let cookie = snapshot(.hash, three()) { $0.hashKey = .cookie("sid") }
        var state = PolicyState(snapshot: cookie)
        var seen = Set<String>()
        for i in 0..<100 {
            let a = decide(cookie, &state, now: clock.nowNanoseconds, client: "10.0.0.\(i)", cookies: ["sid": "s\(i)"])
            let b = decide(cookie, &state, now: clock.nowNanoseconds, client: "10.9.9.\(i)", cookies: ["sid": "s\(i)"])
            #expect(a == b)
            seen.insert("\(a)")
        }
        #expect(seen.count == 3)

        let path = snapshot(.hash, three()) { $0.hashKey = .path }
        var pathState = PolicyState(snapshot: path)
        var paths = Set<String>()
        for i in 0..<100 {
            let a = decide(path, &pathState, path: "/item/\(i)", now: clock.nowNanoseconds, client: "192.0.2.1")
            let b = decide(path, &pathState, path: "/item/\(i)?q=\(i)", now: clock.nowNanoseconds, client: "192.0.2.2")
            #expect(a == b)
            paths.insert("\(a)")
        }
        #expect(paths.count == 3)
    }

    @Test func thresholdWithAllHomesLightSpreadsLikeHash() {
        let servers = [server("a", port: 1), server("b", port: 2), server("c", port: 3), server("d", port: 4)]
        let threshold = snapshot(.threshold, servers)
        let hash = snapshot(.hash, servers)
        var t = PolicyState(snapshot: threshold), h = PolicyState(snapshot: hash)
        var c = [0, 0, 0, 0]
        for i in 0..<10_000 {
            let client = "10.\(i / 65536).\(i / 256 % 256).\(i % 256)"
            let verdict = decide(threshold, &t, now: clock.nowNanoseconds, client: client)
            #expect(verdict == decide(hash, &h, now: clock.nowNanoseconds, client: client))
            if case .forward(let s, _) = verdict { c[s] += 1 }
        }
        for count in c { #expect(abs(count - 2_500) <= 375, "counts \(c)") }
    }

    @Test func rendezvousMovesOnlyTheKeysOfARemovedServer() {
        let four = snapshot(.hash, [server("a", port: 1), server("b", port: 2), server("c", port: 3), server("d", port: 4)])
        let three = snapshot(.hash, [server("a", port: 1), server("b", port: 2), server("c", port: 3)])
        var s4 = PolicyState(snapshot: four), s3 = PolicyState(snapshot: three)
        for i in 0..<1_000 {
            let client = "10.2.\(i / 256).\(i % 256)"
            let before = decide(four, &s4, now: clock.nowNanoseconds, client: client)
            if before != .forward(server: 3) { #expect(decide(three, &s3, now: clock.nowNanoseconds, client: client) == before) }
        }
    }
}
