import Testing
import WeirBalance
@testable import WeirConfig
@testable import WeirGateway

/// The Prometheus exposition (escaping, numbers, histograms) and the per-worker counters merged
/// at scrape time, carried across a reload by id.
@Suite struct MetricsTests {
    private func text(_ build: (inout PrometheusText) -> Void) -> String {
        var t = PrometheusText()
        build(&t)
        return String(decoding: t.bytes, as: UTF8.self)
    }

    @Test func labelValuesEscapeBackslashQuoteAndLineFeed() {
        let rendered = PrometheusText.labels(["pool": #"a\b"c"# + "\nd", "server": "s1"])
        #expect(String(decoding: rendered, as: UTF8.self) == #"pool="a\\b\"c\nd",server="s1""#)
    }

    @Test func helpAndTypeLinesPrecedeTheSamplesAndHelpIsEscaped() {
        let out = text { t in
            t.family("weir_x_total", .counter, "back\\slash and\nnewline")
            t.sample("weir_x_total", .int(3))
            t.sample("weir_x_total", PrometheusText.labels(["code": "2xx"]), .int(-4))
        }
        #expect(out == """
            # HELP weir_x_total back\\\\slash and\\nnewline
            # TYPE weir_x_total counter
            weir_x_total 3
            weir_x_total{code="2xx"} -4

            """)
    }

    @Test func numbersAreWrittenAsPrometheusParsesThem() {
        let out = text { t in
            for v in [0.25, 1.0, .nan, .infinity, -.infinity, 1e-7] { t.sample("g", .double(v)) }
            t.sample("c", .int(Int64.max))
            t.sample("c", PrometheusText.labels(["a": "b"]), count: UInt64.max)
        }
        #expect(out.split(separator: "\n").map(String.init) == [
            "g 0.25", "g 1", "g NaN", "g +Inf", "g -Inf", "g 1e-07",
            "c 9223372036854775807", #"c{a="b"} 9223372036854775807"#,
        ])
    }

    @Test func histogramBucketsAreCumulativeEndAtInfAndCountEqualsTheirTotal() {
        var counts = [UInt64](repeating: 0, count: LatencyBuckets.buckets)
        counts[0] = 2; counts[3] = 1; counts[14] = 4
        let out = text { t in
            t.histogram("weir_h_seconds", PrometheusText.labels(["pool": "p"]), counts: counts, sumMicroseconds: 41_250_000)
        }
        let lines = out.split(separator: "\n").map(String.init)
        #expect(lines.count == 17)
        #expect(lines[0] == #"weir_h_seconds_bucket{pool="p",le="0.0005"} 2"#)
        #expect(lines[2] == #"weir_h_seconds_bucket{pool="p",le="0.0025"} 2"#)
        #expect(lines[3] == #"weir_h_seconds_bucket{pool="p",le="0.005"} 3"#)
        #expect(lines[13] == #"weir_h_seconds_bucket{pool="p",le="10"} 3"#)
        #expect(lines[14] == #"weir_h_seconds_bucket{pool="p",le="+Inf"} 7"#)
        #expect(lines[15] == #"weir_h_seconds_sum{pool="p"} 41.25"#)
        #expect(lines[16] == #"weir_h_seconds_count{pool="p"} 7"#)
    }

    @Test func everyBoundIsInclusiveAndTheNextMicrosecondIsInTheNextBucket() {
        #expect(LatencyBuckets.index(microseconds: 0) == 0)
        for (i, bound) in LatencyBuckets.boundsMicroseconds.enumerated() {
            #expect(LatencyBuckets.index(microseconds: bound) == i)
            #expect(LatencyBuckets.index(microseconds: bound + 1) == i + 1)
        }
        #expect(LatencyBuckets.index(microseconds: .max) == 14)
        #expect(LatencyBuckets.labels.count == LatencyBuckets.boundsMicroseconds.count)
    }

    @Test func stripesOfEveryWorkerAreSummedAtScrape() {
        let block = MeterBlock(workers: 3, slots: ExchangeSlots.count)
        #expect(block.stride % 8 == 0)
        let stripes = (0..<3).map { block.stripe(worker: $0) }
        stripes[0].add(ExchangeSlots.responses + 1)
        stripes[1].add(ExchangeSlots.responses + 1, 4)
        stripes[2].add(ExchangeSlots.bytesOut, 100)
        stripes[0].observe(ExchangeSlots.duration, microseconds: 700)        // 0.001 bucket
        stripes[2].observe(ExchangeSlots.duration, microseconds: 20_000_000) // +Inf
        // A gauge goes down on another worker than the one that raised it: the sum is still right.
        stripes[0].add(ExchangeSlots.queued, 2)
        stripes[1].subtract(ExchangeSlots.queued)
        #expect(block.total(ExchangeSlots.responses + 1) == 5)
        #expect(block.total(ExchangeSlots.bytesOut) == 100)
        #expect(Int64(bitPattern: block.total(ExchangeSlots.queued)) == 1)
        let histogram = block.totals(ExchangeSlots.duration ..< ExchangeSlots.duration + LatencyBuckets.slots)
        #expect(histogram[1] == 1 && histogram[14] == 1 && histogram.prefix(15).reduce(0, +) == 2)
        #expect(histogram[LatencyBuckets.sumSlot] == 20_000_700)
    }

    private func configuration(_ servers: [(pool: String, id: String)]) throws -> WeirConfiguration {
        var toml = "[[listener]]\nname = \"public\"\naddress = \"127.0.0.1:8080\"\n"
        for pool in Set(servers.map(\.pool)).sorted() {
            toml += "[[pool]]\nname = \"\(pool)\"\n"
            for (i, s) in servers.enumerated() where s.pool == pool {
                toml += "[[pool.server]]\nid = \"\(s.id)\"\naddress = \"192.0.2.\(i + 1):80\"\n"
            }
        }
        toml += "[[route]]\nname = \"default\"\npool = \"\(servers[0].pool)\"\n"
        return try ConfigLoader.parse(files: [(name: "a.toml", contents: toml)])
    }

    @Test func aReloadKeepsTheCountsOfServersThatStayAndDropsRemovedOnes() throws {
        let first = try configuration([("web", "a"), ("web", "b"), ("api", "c")])
        let before = GenerationMetrics(snapshot: RoutingSnapshot(configuration: first), listeners: first.listeners, workers: 2)
        let snapshot1 = RoutingSnapshot(configuration: first)
        let a1 = snapshot1.serverIndex(id: "a")!
        before.servers[a1].stripe(worker: 1).add(ExchangeSlots.responses + 1, 7)
        // b leaves, c moves to another pool (a new server there), d is new.
        let second = try configuration([("web", "a"), ("web", "c"), ("web", "d")])
        let snapshot2 = RoutingSnapshot(configuration: second)
        let after = GenerationMetrics(snapshot: snapshot2, listeners: second.listeners, workers: 2, previous: before)
        let a2 = snapshot2.serverIndex(id: "a")!, c2 = snapshot2.serverIndex(id: "c")!
        #expect(after.servers[a2] === before.servers[a1])
        #expect(after.servers[a2].total(ExchangeSlots.responses + 1) == 7)
        #expect(after.servers.count == 3)
        #expect(!before.servers.contains { $0 === after.servers[c2] })
        #expect(after.listeners[0] === before.listeners[0])
        let web1 = snapshot1.poolIndex(named: "web")!, web2 = snapshot2.poolIndex(named: "web")!
        #expect(after.pools[web2] === before.pools[web1])
    }

    @Test func aPoolIsItsServersPlusWhatServersThatLeftItCounted() throws {
        let first = try configuration([("web", "a"), ("web", "b")])
        let snapshot1 = RoutingSnapshot(configuration: first)
        let before = GenerationMetrics(snapshot: snapshot1, listeners: first.listeners, workers: 2)
        let web1 = snapshot1.poolIndex(named: "web")!
        WorkerMeters(before, worker: 0).servers[snapshot1.serverIndex(id: "a")!].add(ExchangeSlots.responses + 1, 3)
        WorkerMeters(before, worker: 1).servers[snapshot1.serverIndex(id: "b")!].add(ExchangeSlots.responses + 1, 5)
        WorkerMeters(before, worker: 1).pools[web1].add(ExchangeSlots.queued)
        #expect(before.poolTotals(web1, ExchangeSlots.responses + 1 ..< ExchangeSlots.responses + 2) == [8])
        // b leaves: the pool keeps its 5; the queue gauge is not a count and stays as it is.
        let second = try configuration([("web", "a")])
        let snapshot2 = RoutingSnapshot(configuration: second)
        let after = GenerationMetrics(snapshot: snapshot2, listeners: second.listeners, workers: 2, previous: before)
        let web2 = snapshot2.poolIndex(named: "web")!
        #expect(after.poolTotals(web2, ExchangeSlots.responses + 1 ..< ExchangeSlots.responses + 2) == [8])
        #expect(after.poolTotals(web2, ExchangeSlots.queued ..< ExchangeSlots.queued + 1) == [1])
        #expect(after.servers.count == 1)
    }

    @Test func statusClassesAreTheHundredsAndOtherForNoStatus() {
        #expect([101, 200, 204, 307, 404, 499, 502, 0, 600].map(WorkerMeters.statusClass) == [0, 1, 1, 2, 3, 3, 4, 5, 5])
    }
}
