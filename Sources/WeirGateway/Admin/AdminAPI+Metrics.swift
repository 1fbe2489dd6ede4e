import WeirConfig

/// `GET /metrics`: the Prometheus text exposition (Metrics/MetricsScrape.swift), on the control thread.
extension AdminAPI {
    func metricsAnswer() -> Answer {
        let scrape = MetricsScrape(generation: generation(), stats: stats, sticky: sticky, now: clock(), wallMs: wallMs(),
                                   group: groupWithHops(), lastReload: lastReload(), lastReloadSeconds: lastReloadSeconds(),
                                   certificates: certificateExpiries(generation().tls, generation().configuration))
        return Answer(status: 200, contentType: PrometheusText.contentType, body: scrape.render())
    }
}

/// Per listener certificate of `configuration`: its listener, file and notAfter (Unix seconds);
/// certificates whose time cannot be read are left out.
func certificateExpiries(_ tls: TLSSetup, _ configuration: WeirConfiguration) -> [(listener: String, file: String, notAfter: Int64)] {
    var out: [(listener: String, file: String, notAfter: Int64)] = []
    for (i, context) in tls.listeners.enumerated() {
        guard let context, i < configuration.listeners.count else { continue }
        for entry in context.certificateExpiries {
            if let t = entry.notAfter { out.append((configuration.listeners[i].name, entry.file, t)) }
        }
    }
    return out
}
