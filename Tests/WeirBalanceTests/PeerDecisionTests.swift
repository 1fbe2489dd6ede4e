import Testing
import WeirBalance

/// The figure-2 rule at a peer (home = the local app, index 0) and the herding correction.
@Suite struct PeerDecisionTests {
    func choose(_ loads: [Double]) -> Int {
        ThresholdRule.choose(home: 0, loads: loads, firstLevel: 0.50, secondLevel: 0.20)
    }

    @Test func patentExampleAtAPeer() {
        // This peer (home) at 60 %, peers at 30 % and 45 %: to the 30 % one; at 45 % and 50 %: stays.
        #expect(choose([0.60, 0.30, 0.45]) == 1)
        #expect(choose([0.60, 0.45, 0.50]) == 0)
        #expect(choose([0.49, 0.00, 0.00]) == 0)
    }

    @Test func herdingCorrectionChangesTheChoiceAfterNRoutedRequests() {
        // Peer 1 reported 30 % of capacity 20. Each request sent there adds 1/20 = 5 % until its next
        // report: after 2 it counts 40 % (60 − 40 = exactly the second level: still moves); after 3
        // it counts 45 % and this peer keeps the request.
        let reported = [0.60, 0.30, 0.45]
        func choice(after routed: Int) -> Int {
            choose([reported[0], Herding.correctedLoad(reported: reported[1], capacity: 20, routedSinceReport: routed), reported[2]])
        }
        #expect(choice(after: 0) == 1)
        #expect(choice(after: 1) == 1)
        #expect(choice(after: 2) == 1)
        #expect(choice(after: 3) == 0)
        // Without the correction every request of the interval would go to peer 1.
        var routed = 0
        for _ in 0..<10 where choice(after: routed) == 1 { routed += 1 }
        #expect(routed == 3)
    }

    @Test func correctedLoadIsReportedPlusRoutedOverCapacity() {
        #expect(Herding.correctedLoad(reported: 0.25, capacity: 4, routedSinceReport: 1) == 0.5)
        #expect(Herding.correctedLoad(reported: 0.25, capacity: 0, routedSinceReport: 1) == 1.25)
        #expect(Herding.correctedLoad(reported: 0.25, capacity: 100, routedSinceReport: 0) == 0.25)
    }
}
