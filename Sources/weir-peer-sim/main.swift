// `weir-peer-sim`: a discrete-event simulation of `weir peer`'s balancing among peers, to compare
// the figure-2 rule with and without the herding correction against simpler policies.
//
// Model: `peers` peers of capacity `capacity` each; requests arrive as one Poisson stream and land
// on a peer by uneven weights; service times are exponential and do not depend on load (an
// infinite-server model: the figures are about balance, not latency). Every peer sends a report
// (beacon) every 500 ms at its own phase, so the loads the others see are up to 500 ms old; a
// peer knows its own in-flight count exactly. A request is routed once, at the peer it lands on
// (a hop is a request served elsewhere). Every policy sees the same arrivals (separate seeded streams).
//
// Metrics, sampled every 10 ms after a 5 s warm-up: the time-averaged max/mean ratio of the
// peers' in-flight counts (1.00 = perfectly even), the share of time some peer is over capacity,
// and the share of requests that hop.
import Foundation
import WeirBalance

struct Options {
    var seed: UInt64 = 1
    var seconds: Double = 600
    var peers = 8
    var capacity = 20
    var utilisation = 0.65
    var meanServiceSeconds = 0.2
    var reportInterval = 0.5
    var firstLevel = 0.5
    var secondLevel = 0.2

    static func parse(_ arguments: [String]) -> Options {
        var options = Options()
        var rest = arguments.dropFirst()
        while let flag = rest.popFirst() {
            guard flag != "--help", flag != "-h" else { usage(0) }
            guard let value = rest.popFirst() else { usage(2) }
            switch flag {
            case "--seed":
                guard let seed = UInt64(value) else { usage(2) }
                options.seed = seed
            case "--seconds": options.seconds = number(value, in: 10...3600)
            case "--utilisation": options.utilisation = number(value, in: 0.05...1.5)
            default: usage(2)
            }
        }
        return options
    }

    static func number(_ text: String, in range: ClosedRange<Double>) -> Double {
        guard let value = Double(text), range.contains(value) else { usage(2) }
        return value
    }

    static func usage(_ status: Int32) -> Never {
        print("usage: weir-peer-sim [--seed N] [--seconds 10...3600 (simulated, default 600)] [--utilisation 0.05...1.5 (default 0.65)]")
        exit(status)
    }
}

/// SplitMix64: small, deterministic.
struct Random {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }
    mutating func exponential(mean: Double) -> Double { -log1p(-uniform()) * mean }
    mutating func below(_ bound: Int) -> Int { Int(uniform() * Double(bound)) }
}

/// A binary min-heap of (time, peer) departures.
struct Departures {
    private var items: [(time: Double, peer: Int)] = []
    var next: Double { items.first?.time ?? .infinity }

    mutating func push(_ time: Double, _ peer: Int) {
        items.append((time, peer))
        var i = items.count - 1
        while i > 0, items[(i - 1) / 2].time > items[i].time {
            items.swapAt(i, (i - 1) / 2)
            i = (i - 1) / 2
        }
    }

    mutating func pop() -> Int {
        let top = items[0].peer
        items.swapAt(0, items.count - 1)
        items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < items.count, items[l].time < items[m].time { m = l }
            if r < items.count, items[r].time < items[m].time { m = r }
            if m == i { return top }
            items.swapAt(i, m)
            i = m
        }
    }
}

enum Policy: CaseIterable {
    case figure2Herding, figure2, leastLoaded, random, local

    var name: String {
        switch self {
        case .figure2Herding: "figure 2 + herding correction"
        case .figure2: "figure 2, no herding correction"
        case .leastLoaded: "least-loaded on reported loads"
        case .random: "random peer"
        case .local: "no balancing (stay where it lands)"
        }
    }
}

struct Result {
    var maxOverMean: Double
    var overCapacityShare: Double
    var hopShare: Double
}

/// What every peer knows: its own in-flight count, the others' last reports, and (for the
/// herding correction) how many requests it has sent each since that report.
struct Group {
    let capacity: Int
    var inFlight: [Int]
    var reported: [Double]
    var routedSinceReport: [[Int]]   // [from][to]

    init(peers: Int, capacity: Int) {
        self.capacity = capacity
        inFlight = Array(repeating: 0, count: peers)
        reported = Array(repeating: 0, count: peers)
        routedSinceReport = Array(repeating: Array(repeating: 0, count: peers), count: peers)
    }

    func ownLoad(_ peer: Int) -> Double { Double(inFlight[peer]) / Double(capacity) }

    /// The loads `home` sees: its own exactly, the others as reported (corrected or not).
    func view(from home: Int, corrected: Bool) -> [Double] {
        reported.indices.map { i in
            if i == home { return ownLoad(i) }
            return corrected ? Herding.correctedLoad(reported: reported[i], capacity: capacity,
                                                     routedSinceReport: routedSinceReport[home][i]) : reported[i]
        }
    }

    mutating func report(_ peer: Int) {
        reported[peer] = ownLoad(peer)
        for from in routedSinceReport.indices { routedSinceReport[from][peer] = 0 }
    }
}

func route(_ policy: Policy, home: Int, group: Group, options: Options, random: inout Random) -> Int {
    switch policy {
    case .local: return home
    case .random: return random.below(group.inFlight.count)
    case .figure2, .figure2Herding:
        return ThresholdRule.choose(home: home, loads: group.view(from: home, corrected: policy == .figure2Herding),
                                    firstLevel: options.firstLevel, secondLevel: options.secondLevel)
    case .leastLoaded:
        let loads = group.view(from: home, corrected: false)
        var best = home                                  // ties stay home
        for i in loads.indices where loads[i] < loads[best] { best = i }
        return best
    }
}

func simulate(_ policy: Policy, _ options: Options) -> Result {
    let n = options.peers
    let weights: [Double] = (0..<n).map { pow(0.75, Double($0)) }    // each peer gets 3/4 of the previous one's share
    let total = weights.reduce(0, +)
    let cumulative = weights.indices.map { weights[0...$0].reduce(0, +) / total }
    let rate = options.utilisation * Double(n * options.capacity) / options.meanServiceSeconds

    var arrivals = Random(state: options.seed)
    var services = Random(state: options.seed &+ 0x51)
    var routing = Random(state: options.seed &+ 0xA3)
    var phases = Random(state: options.seed &+ 0xF7)
    var nextReport = (0..<n).map { _ in phases.uniform() * options.reportInterval }

    var group = Group(peers: n, capacity: options.capacity)
    var departures = Departures()
    var nextArrival = arrivals.exponential(mean: 1 / rate)
    let sampleStep = 0.01, warmUp = 5.0
    var nextSample = warmUp
    var samples = 0, ratioSum = 0.0, overCapacity = 0
    var requests = 0, hops = 0

    while true {
        let report = nextReport.indices.min { nextReport[$0] < nextReport[$1] }!
        let now = min(nextArrival, departures.next, nextReport[report], nextSample)
        if now > options.seconds { break }
        if now == departures.next {
            group.inFlight[departures.pop()] -= 1
        } else if now == nextArrival {
            let u = arrivals.uniform()
            let home = cumulative.firstIndex { u < $0 } ?? n - 1
            let target = route(policy, home: home, group: group, options: options, random: &routing)
            if target != home { hops += 1; group.routedSinceReport[home][target] += 1 }
            requests += 1
            group.inFlight[target] += 1
            departures.push(now + services.exponential(mean: options.meanServiceSeconds), target)
            nextArrival = now + arrivals.exponential(mean: 1 / rate)
        } else if now == nextReport[report] {
            group.report(report)
            nextReport[report] += options.reportInterval
        } else {
            let mean = Double(group.inFlight.reduce(0, +)) / Double(n)
            let peak = group.inFlight.max()!
            if mean > 0 { samples += 1; ratioSum += Double(peak) / mean }
            if peak > options.capacity { overCapacity += 1 }
            nextSample += sampleStep
        }
    }
    let sampled = max(1, Int(((options.seconds - warmUp) / sampleStep).rounded()))
    return Result(maxOverMean: ratioSum / Double(max(samples, 1)), overCapacityShare: Double(overCapacity) / Double(sampled),
                  hopShare: Double(hops) / Double(max(requests, 1)))
}

let options = Options.parse(CommandLine.arguments)
print("weir-peer-sim: \(options.peers) peers × capacity \(options.capacity), utilisation \(Int(options.utilisation * 100)) %, "
      + "mean service \(Int(options.meanServiceSeconds * 1000)) ms, reports every \(Int(options.reportInterval * 1000)) ms, "
      + "levels \(options.firstLevel)/\(options.secondLevel), \(Int(options.seconds)) s simulated, seed \(options.seed)")
print("")
print("| policy | max/mean load (time-avg) | time some peer > capacity | requests that hop |")
print("|---|---:|---:|---:|")
for policy in Policy.allCases {
    let r = simulate(policy, options)
    print("| \(policy.name) | \(String(format: "%.2f", r.maxOverMean)) | \(String(format: "%.1f %%", r.overCapacityShare * 100)) | \(String(format: "%.1f %%", r.hopShare * 100)) |")
}
