import Foundation
import WeirBalance
import WeirHTTP

/// What a server says about itself in a probe response, like HAProxy's agent-check but in HTTP:
/// a `Weir-Load: 0.42` (or `42%`) header, or a JSON body `{"load": 0.42, "state": "drain"}` where
/// state is one of up, drain, maint, down. The header wins over the body.
struct LoadReport: Equatable {
    var load: Double?
    var state: ServerCondition?

    var isEmpty: Bool { load == nil && state == nil }

    /// Reads the report in `head` and `body`; an unparsable value is ignored (a server's bad report
    /// must not take it down; the probe's status check does that).
    init(head: ResponseHead, body: [UInt8]) {
        if let range = head.value(of: "weir-load") {
            load = Self.parseLoad(head.string(range))
        }
        guard body.first == UInt8(ascii: "{"),
              let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return }
        if load == nil {
            if let number = object["load"] as? NSNumber { load = max(0, number.doubleValue) }
            if let text = object["load"] as? String { load = Self.parseLoad(text) }
        }
        if let text = object["state"] as? String {
            switch text.lowercased() {
            case "up": state = .up
            case "drain": state = .drain
            case "maint": state = .maint
            case "down": state = .down
            default: break
            }
        }
    }

    /// "0.42" → 0.42, "42%" → 0.42; nil when neither.
    static func parseLoad(_ text: String) -> Double? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.hasSuffix("%") {
            return Double(trimmed.dropLast()).map { max(0, $0 / 100) }
        }
        return Double(trimmed).map { max(0, $0) }
    }
}
