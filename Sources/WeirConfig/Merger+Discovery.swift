// `[discovery]` checks that the two-path check in `finish()` does not cover: alive_path (issue 11, 004).

extension Merger {
    /// `alive_path` must differ from `servers_path` and `assign_path` (each endpoint needs a path of
    /// its own). Reported at alive_path when it was written, else at the other key when that was.
    mutating func checkAlivePath() {
        guard !discovery.invalid, let alive = discovery.settings.alivePath else { return }
        let others = [("servers_path", discovery.settings.serversPath), ("assign_path", discovery.settings.assignPath)]
        guard let (other, _) = others.first(where: { $0.1 == alive }) else { return }
        let aliveWritten = discovery.locations["alive_path"] != nil
        let otherWritten = discovery.locations[other] != nil
        guard let location = discovery.locations[aliveWritten ? "alive_path" : other],
              (aliveWritten && otherWritten) || !incomplete else { return }
        let (file, key) = Self.split(location)
        let shown = "\(aliveWritten && otherWritten ? "" : "default ")\"\(ValueRules.clip(alive))\""
        fail(file, key, "must differ from discovery.\(aliveWritten ? other : "alive_path") (\(shown)); "
             + "each endpoint needs a path of its own")
    }
}
