import Testing
import WeirConfig
@testable import WeirGateway

@Suite struct HandOverEnvironmentTests {
    private func address(_ text: String) -> SocketAddress { SocketAddress.parse(text)! }

    @Test func aProcessNotStartedByAnUpgradeHasNoHandOver() throws {
        #expect(try HandOverEnvironment.parse(["PATH": "/usr/bin"]) == nil)
    }

    @Test func theVariablesRoundTripWithIPv4AndIPv6Addresses() throws {
        let handOver = HandOverEnvironment(sockets: [.init(fd: 4, address: address("127.0.0.1:8080")),
                                                     .init(fd: 5, address: address("127.0.0.1:8080")),
                                                     .init(fd: 6, address: address("[::1]:8443"))],
                                           channel: 3, previousPID: 1234)
        #expect(handOver.variables == ["WEIR_INHERITED_SOCKETS": "4=127.0.0.1:8080,5=127.0.0.1:8080,6=[::1]:8443",
                                       "WEIR_UPGRADE_READY_FD": "3", "WEIR_UPGRADE_FROM": "1234"])
        #expect(try HandOverEnvironment.parse(handOver.variables) == handOver)
    }

    @Test func noSocketsIsAValidHandOver() throws {
        let parsed = try HandOverEnvironment.parse(["WEIR_UPGRADE_READY_FD": "3", "WEIR_INHERITED_SOCKETS": ""])
        #expect(parsed == HandOverEnvironment(sockets: [], channel: 3, previousPID: nil))
    }

    @Test(arguments: [
        (["WEIR_INHERITED_SOCKETS": "4=127.0.0.1:80"], "WEIR_INHERITED_SOCKETS set without WEIR_UPGRADE_READY_FD"),
        (["WEIR_UPGRADE_READY_FD": "1"], "WEIR_UPGRADE_READY_FD=1: not a descriptor number (3 or more)"),
        (["WEIR_UPGRADE_READY_FD": "3", "WEIR_INHERITED_SOCKETS": "4:127.0.0.1:80"],
         "WEIR_INHERITED_SOCKETS: 4:127.0.0.1:80 is not DESCRIPTOR=ADDRESS, e.g. 4=127.0.0.1:8080"),
        (["WEIR_UPGRADE_READY_FD": "3", "WEIR_INHERITED_SOCKETS": "4=localhost:80"],
         "WEIR_INHERITED_SOCKETS: localhost:80 (descriptor 4) is not a numeric address such as 127.0.0.1:8080 or [::1]:8443"),
        (["WEIR_UPGRADE_READY_FD": "3", "WEIR_INHERITED_SOCKETS": "4=127.0.0.1:80,4=127.0.0.1:81"],
         "WEIR_INHERITED_SOCKETS: descriptor 4 appears twice"),
        (["WEIR_UPGRADE_READY_FD": "3", "WEIR_INHERITED_SOCKETS": "3=127.0.0.1:80"],
         "WEIR_INHERITED_SOCKETS: descriptor 3 appears twice"),
        (["WEIR_UPGRADE_READY_FD": "3", "WEIR_UPGRADE_FROM": "me"], "WEIR_UPGRADE_FROM=me: not a pid"),
    ])
    func aMalformedHandOverIsRefusedNamingTheVariable(environment: [String: String], message: String) {
        #expect(throws: HandOverEnvironment.Problem(description: message)) { try HandOverEnvironment.parse(environment) }
    }

    @Test func theChildEnvironmentReplacesAnEarlierHandOverAndKeepsTheRest() {
        let handOver = HandOverEnvironment(sockets: [.init(fd: 4, address: address("0.0.0.0:80"))], channel: 3, previousPID: 77)
        let env = handOver.childEnvironment(current: ["PATH=/bin", "WEIR_UPGRADE_READY_FD=9", "WEIR_UPGRADE_FROM=5",
                                                      "NOTIFY_SOCKET=/run/systemd/notify", "WEIR_INHERITED_SOCKETS=10=0.0.0.0:80"])
        #expect(env == ["PATH=/bin", "NOTIFY_SOCKET=/run/systemd/notify",
                        "WEIR_INHERITED_SOCKETS=4=0.0.0.0:80", "WEIR_UPGRADE_FROM=77", "WEIR_UPGRADE_READY_FD=3"])
    }

    /// Every inherited socket of a listener goes to exactly one worker, whether the new process has
    /// fewer workers than the old (some take several: none is left with unaccepted connections),
    /// as many, or more (the extra workers get none and bind their own).
    @Test(arguments: [(2, 2), (4, 2), (3, 2), (2, 4), (1, 3), (0, 2), (5, 1)])
    func spreadGivesEverySocketToExactlyOneWorker(count: Int, workers: Int) {
        let shares = (0..<workers).map { HandOverEnvironment.spread(count: count, workers: workers, worker: $0) }
        #expect(shares.flatMap { $0 }.sorted() == Array(0..<count))
        for (w, share) in shares.enumerated() { #expect(share.allSatisfy { $0 % workers == w }) }
    }

    @Test func spreadExamples() {
        #expect(HandOverEnvironment.spread(count: 4, workers: 2, worker: 1) == [1, 3])
        #expect(HandOverEnvironment.spread(count: 1, workers: 2, worker: 1) == [])
    }

    @Test func workersTakeTheirShareOfTheInheritedSocketsOfTheirListenersAddress() {
        let a = address("127.0.0.1:8080"), b = address("[::1]:8443"), gone = address("127.0.0.1:9")
        UpgradeSockets.offer([.init(fd: 10, address: a), .init(fd: 11, address: a), .init(fd: 12, address: a),
                              .init(fd: 13, address: b), .init(fd: 14, address: gone)], workers: 2)
        #expect(UpgradeSockets.take(address: a, worker: 0) == [10, 12])
        #expect(UpgradeSockets.take(address: a, worker: 1) == [11])
        #expect(UpgradeSockets.take(address: b, worker: 0) == [13])
        #expect(UpgradeSockets.take(address: b, worker: 1) == [])
        #expect(UpgradeSockets.take(address: address("127.0.0.1:1"), worker: 0) == [])
        #expect(UpgradeSockets.unclaimed().map(\.fd) == [14])
        #expect(UpgradeSockets.unclaimed().isEmpty)
    }
}
