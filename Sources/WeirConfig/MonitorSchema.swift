import TOMLKit

// `[pool.monitor]`: a pool takes its servers' load and state from a monitoring endpoint as well as from its own
// probes (source document 003: the intermediary asks a monitoring server). The gateway polls it; see
// Sources/WeirGateway/Health/Monitor.swift.

/// `[pool.monitor]` (a table after its `[[pool]]`): where the pool's servers' load and state are read.
public struct PoolMonitor: Sendable, Equatable {
    /// `url` (required): `http://<numeric address>:<port>/<path>`, e.g. `"http://127.0.0.1:9500/status"`.
    public var url: String
    /// The address and request target taken from `url`.
    public var address: SocketAddress
    public var path: String
    /// `interval`: time between two polls. At least 100 ms. Default 2 seconds.
    public var interval: Duration
    /// `timeout`: a poll with no complete answer within this time fails. Shorter than `interval`. Default 1 second.
    public var timeout: Duration
    /// `max_age`: how long the last good answer's reports count (loads are then ignored, states cleared).
    /// Default nil: 3 × `interval`.
    public var maxAge: Duration?

    public init(url: String, address: SocketAddress, path: String, interval: Duration = .seconds(2),
                timeout: Duration = .seconds(1), maxAge: Duration? = nil) {
        self.url = url
        self.address = address
        self.path = path
        self.interval = interval
        self.timeout = timeout
        self.maxAge = maxAge
    }

    /// `max_age`, or 3 × `interval` when it is not set.
    public var effectiveMaxAge: Duration { maxAge ?? interval * 3 }

    /// `url` split into its address and path (path "/" when there is none); nil unless it is
    /// `http://` with a numeric address and a port.
    public static func parse(url: String) -> (address: SocketAddress, path: String)? {
        guard url.lowercased().hasPrefix("http://") else { return nil }
        let rest = url.dropFirst(7)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        guard let address = SocketAddress.parse(String(rest[..<slash])), address.port != 0 else { return nil }
        let path = slash == rest.endIndex ? "/" : String(rest[slash...])
        guard ValueRules.isValidRequestPath(path) else { return nil }
        return (address, path)
    }
}

/// A `[pool.monitor]` while it is read: `url` not yet seen (required).
struct MonitorDraft {
    var monitor = PoolMonitor(url: "", address: Schema.noAddress, path: "/")
}

extension Schema {
    static let monitorURLExample = #"url = "http://127.0.0.1:9500/status""#

    static var monitor: TableSpec<MonitorDraft> {
        TableSpec(header: "[pool.monitor]", keys: [
            KeySpec("url", missing: .required(monitorURLExample)) { value, site, reader, draft in
                let form = #"expected http://<numeric address>:<port>/<path>, such as "http://127.0.0.1:9500/status""#
                guard let url = Rule.text("monitor URL", form: form, normalized: { PoolMonitor.parse(url: $0) != nil ? $0 : nil })
                        .check(value, site, &reader),
                      let parts = PoolMonitor.parse(url: url) else { return false }
                draft.monitor.url = url
                draft.monitor.address = parts.address
                draft.monitor.path = parts.path
                return true
            },
            .key("interval", .duration(minimum: .milliseconds(100)), \.monitor.interval),
            .key("timeout", .duration(), \.monitor.timeout),
            .key("max_age", Rule.duration().some, \.monitor.maxAge),
        ], defaults: { MonitorDraft() }, neighbours: { [pool.asNeighbour] },
        check: { _, site, reader, draft in
            guard draft.monitor.timeout >= draft.monitor.interval else { return true }
            reader.fail(site.child("timeout"), "must be shorter than \(site.child("interval").key) "
                        + "(\(ValueRules.formatDuration(draft.monitor.interval))), found "
                        + "\"\(ValueRules.formatDuration(draft.monitor.timeout))\"")
            return false
        })
    }
}
