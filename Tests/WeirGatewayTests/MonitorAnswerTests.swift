import Testing
import WeirBalance
@testable import WeirGateway

/// The JSON answers of a `[pool.monitor]` (issue 11, document 003).
@Suite struct MonitorAnswerTests {
    private func parse(_ text: String) -> Result<MonitorAnswer, MonitorAnswer.Failure> { MonitorAnswer.parse(Array(text.utf8)) }

    private func reports(_ text: String) -> [String: MonitorAnswer.Report]? {
        if case .success(let answer) = parse(text) { return answer.reports }
        return nil
    }

    @Test func theMonitorShape() {
        let r = reports(#"{"servers": {"a": {"load": 0.42, "state": "up"}, "b": {"load": "90%"}, "c": {"state": "DOWN"},"#
                        + #" "d": {"load": -1}, "e": {}, "f": 3, "g": {"load": [1], "state": "sleepy"}}}"#)
        #expect(r?["a"] == MonitorAnswer.Report(load: 0.42, state: .up))
        #expect(r?["b"] == MonitorAnswer.Report(load: 0.9, state: nil))
        #expect(r?["c"] == MonitorAnswer.Report(load: nil, state: .down))
        #expect(r?["d"] == MonitorAnswer.Report(load: 0, state: nil))
        #expect(r?["e"] == nil && r?["f"] == nil && r?["g"] == nil)
        #expect(reports(#"{"servers": {}}"#) == [:])
    }

    @Test func weirsOwnStatusDocument() {
        let r = reports(#"{"pools": [{"name": "p", "servers": [{"id": "a", "load": 0.1, "state": "drain", "healthy": true},"#
                        + #" {"id": "b", "load": 0, "state": "maint"}, {"load": 0.5}]}, {"name": "q"}],"#
                        + #" "totals": {"requests": 3}}"#)
        #expect(r == ["a": .init(load: 0.1, state: .drain), "b": .init(load: 0, state: .maint)])
    }

    @Test func aPeersGroupSectionWithOfflineMembersDown() {
        let r = reports(#"{"pools": [], "group": {"id": "gw", "members": [{"id": "p1", "online": true, "load": 0.3, "state": "up"},"#
                        + #" {"id": "p2", "online": false, "load": 0.2, "state": "up"}, {"id": "p3", "online": true, "state": null, "load": null}]}}"#)
        #expect(r?["p1"] == MonitorAnswer.Report(load: 0.3, state: .up))
        #expect(r?["p2"] == MonitorAnswer.Report(load: 0.2, state: .down))
        #expect(r?["p3"] == MonitorAnswer.Report())
    }

    @Test func garbageAndWrongShapesFail() {
        #expect(parse("") == .failure(.notJSON))
        #expect(parse("<html>oops</html>") == .failure(.notJSON))
        #expect(parse(#"{"servers": {"a": {"load": 0.4}"#) == .failure(.notJSON))
        #expect(parse("[1, 2]") == .failure(.wrongShape("not an object")))
        #expect(parse(#"{"load": 0.5}"#) == .failure(.wrongShape(#"no "servers", "pools" or "group"."members""#)))
        #expect(parse(#"{"servers": [1]}"#) == .failure(.wrongShape(#""servers" is not an object"#)))
        #expect(parse(#"{"pools": {"a": 1}}"#) == .failure(.wrongShape(#""pools" is not an array"#)))
    }

    @Test func anAnswerThatTakesTheWholePoolDownIsRecognised() {
        guard case .success(let all) = parse(#"{"servers": {"a": {"state": "down", "load": 0.5}, "b": {"state": "down"}}}"#),
              case .success(let some) = parse(#"{"servers": {"a": {"state": "down"}, "b": {"state": "drain"}}}"#) else {
            Issue.record("did not parse"); return
        }
        #expect(all.saysEveryServerDown(of: ["a", "b"]))
        #expect(!all.saysEveryServerDown(of: ["a", "b", "c"]))
        #expect(!some.saysEveryServerDown(of: ["a", "b"]))
        #expect(!all.saysEveryServerDown(of: [String]()))
        #expect(all.withoutStates.reports == ["a": .init(load: 0.5, state: nil), "b": .init(load: nil, state: nil)])
    }
}
