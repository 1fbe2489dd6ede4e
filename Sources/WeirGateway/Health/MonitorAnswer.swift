import Foundation
import WeirBalance

/// What a monitoring endpoint (`[pool.monitor]`) said about servers, read from its JSON answer. Three
/// shapes are understood, so another Weir or a `weir peer` can serve as the monitor:
///
/// - `{"servers": {"<id>": {"load": 0.42, "state": "up|drain|maint|down"}}}` (the monitor shape);
/// - Weir's `GET /status`: `{"pools": [{"servers": [{"id": "a", "load": 0.42, "state": "up"}]}]}`;
/// - its `group` section: `{"group": {"members": [{"id": "a", "online": true, "load": 0.4, "state": "up"}]}}`
///   (a member that is not on-line counts as down).
///
/// `load` is a number (fraction of capacity) or a string such as `"42%"`; both keys are optional per
/// server. An entry with neither, or with values of the wrong type, is left out.
struct MonitorAnswer: Equatable {
    struct Report: Equatable {
        var load: Double?
        var state: ServerCondition?
    }

    /// Server id → its report, in no particular order.
    var reports: [String: Report]

    enum Failure: Error, Equatable {
        case notJSON
        case wrongShape(String)

        var reason: String {
            switch self {
            case .notJSON: return "the answer is not JSON"
            case .wrongShape(let why): return "unexpected JSON: \(why)"
            }
        }
    }

    /// Whether the answer says that every one of `ids` (a pool's servers) is down: a monitor that
    /// cannot see the servers must not take the whole pool out, so such states are ignored.
    func saysEveryServerDown<C: Collection>(of ids: C) -> Bool where C.Element == String {
        !ids.isEmpty && ids.allSatisfy { reports[$0]?.state == .down }
    }

    /// The same answer without its states (its loads still count).
    var withoutStates: MonitorAnswer {
        MonitorAnswer(reports: reports.mapValues { Report(load: $0.load, state: nil) })
    }

    /// Parses `body`; a failure when it is not a JSON object with at least one of the shapes.
    static func parse(_ body: [UInt8]) -> Result<MonitorAnswer, Failure> {
        guard let json = try? JSONSerialization.jsonObject(with: Data(body)) else { return .failure(.notJSON) }
        guard let object = json as? [String: Any] else { return .failure(.wrongShape("not an object")) }
        var reports: [String: Report] = [:]
        var recognized = false
        if let servers = object["servers"] {
            guard let table = servers as? [String: Any] else { return .failure(.wrongShape("\"servers\" is not an object")) }
            recognized = true
            for (id, entry) in table { if let report = report(entry) { reports[id] = report } }
        }
        if let pools = object["pools"] {
            guard let list = pools as? [Any] else { return .failure(.wrongShape("\"pools\" is not an array")) }
            recognized = true
            for pool in list {
                guard let servers = (pool as? [String: Any])?["servers"] as? [Any] else { continue }
                for entry in servers { add(entry, into: &reports) }
            }
        }
        if let group = object["group"] as? [String: Any], let members = group["members"] as? [Any] {
            recognized = true
            for entry in members { add(entry, into: &reports, onlineKey: true) }
        }
        guard recognized else { return .failure(.wrongShape("no \"servers\", \"pools\" or \"group\".\"members\"")) }
        return .success(MonitorAnswer(reports: reports))
    }

    /// Adds a list entry `{"id": ..., "load": ..., "state": ...}` (and `online`, for group members).
    private static func add(_ entry: Any, into reports: inout [String: Report], onlineKey: Bool = false) {
        guard let object = entry as? [String: Any], let id = object["id"] as? String, !id.isEmpty else { return }
        guard var report = report(object) ?? (onlineKey ? Report() : nil) else { return }
        if onlineKey, let online = object["online"] as? Bool, !online { report.state = .down }
        reports[id] = report
    }

    /// The load and state of one entry; nil when it has neither.
    private static func report(_ entry: Any) -> Report? {
        guard let object = entry as? [String: Any] else { return nil }
        var report = Report()
        if let number = object["load"] as? NSNumber {
            let value = number.doubleValue
            if value.isFinite { report.load = max(0, value) }
        } else if let text = object["load"] as? String {
            report.load = LoadReport.parseLoad(text)
        }
        if let text = object["state"] as? String { report.state = condition(text) }
        return report.load == nil && report.state == nil ? nil : report
    }

    private static func condition(_ text: String) -> ServerCondition? {
        switch text.lowercased() {
        case "up": return .up
        case "drain": return .drain
        case "maint": return .maint
        case "down": return .down
        default: return nil
        }
    }
}
