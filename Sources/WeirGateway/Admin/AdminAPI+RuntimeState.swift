import Foundation
import WeirBalance
import WeirConfig

// Runtime changes that persist (`<state_dir>/runtime.json`, see `RuntimeStateStore`):
//
// - drain / maint / enable and mode switches act at once on the live state and are then kept (a file that
//   cannot be written does not undo them: the answer says `"persisted":false`);
// - weights and servers added or removed need a new snapshot: they are kept first (nothing changes when the
//   file cannot be written), then the `reload` hook builds the snapshot; without the hook they wait for the
//   next reload or restart (202). A reload that fails puts the state back as it was;
// - `DELETE /pools/{name}/servers/{id}` drains the server at once and keeps its removal: it leaves the pool at
//   the next reload or restart, so its pinned transactions may finish meanwhile; `?now=1` reloads at once
//   (requests in flight finish on the old snapshot; pins to it are re-balanced).

extension AdminAPI {
    /// `POST /servers/{id}/weight?value=N`: the weight as `[[pool.server]] weight` takes it (1...256).
    func setWeight(id: String, query: String) -> Answer {
        guard let index = snapshot.serverIndex(id: id) else { return text(404, "no server \(id)") }
        guard let raw = LocalEndpoints.queryValue("value", in: query) else {
            return text(400, "give the weight as value=N (1...256), e.g. POST /servers/\(id)/weight?value=3")
        }
        let weight: Int
        switch RuntimeState.weight(raw) {
        case .success(let w): weight = w
        case .failure(let errors): return text(400, RuntimeState.fieldMessages(errors).joined(separator: "\n"))
        }
        let pool = poolName(ofServer: index)
        return keepThenReload("weight of server \(id) set to \(weight)") { $0.setWeight(weight, pool: pool, id: id) }
    }

    /// `POST /pools/{name}/servers?id=ID&address=IP:PORT[&weight=N&capacity=N&public_url=URL&group=N&max_conns=N]`.
    func addServer(pool: String, query: String) -> Answer {
        guard let p = snapshot.poolIndex(named: pool) else { return text(404, "no pool \(pool)") }
        if let problem = RuntimeState.fixedPoolProblem(snapshot.pools[p].config, in: snapshot.configuration) {
            return text(409, "cannot add a server: \(problem)")
        }
        let fields = Self.queryPairs(query)
        let server: Server
        switch RuntimeState.server(fields: fields, source: "POST /pools/\(pool)/servers") {
        case .success(let s): server = s
        case .failure(let errors): return text(400, RuntimeState.fieldMessages(errors).joined(separator: "\n"))
        }
        let removed = runtimeState?.state.removed.contains { $0.id == server.id } ?? false
        if let existing = snapshot.serverIndex(id: server.id), !removed {
            return text(409, "id: server \(server.id) already exists (pool \(poolName(ofServer: existing))); server ids are unique across all pools")
        }
        let entry = RuntimeState.AddedServer(pool: pool, server: server)
        return keepThenReload("server \(server.id) (\(server.address)) added to pool \(pool)") { $0.add(entry) }
    }

    /// `DELETE /pools/{name}/servers/{id}[?now=1]`: drains it at once; it leaves at the next reload (now: at once).
    func removeServer(pool: String, id: String, now: Bool) -> Answer {
        guard let p = snapshot.poolIndex(named: pool) else { return text(404, "no pool \(pool)") }
        guard let index = snapshot.pools[p].servers.first(where: { snapshot.servers[$0].config.id == id }) else {
            // Added since the last load, not in service yet: forgetting it is all there is to do.
            if let store = runtimeState, store.state.added.contains(where: { $0.pool == pool && $0.id == id }) {
                return keepThenReload("server \(id) (added, not yet in service) forgotten") { $0.remove(pool: pool, id: id) }
            }
            return text(404, "pool \(pool) has no server \(id)")
        }
        if let problem = RuntimeState.fixedPoolProblem(snapshot.pools[p].config, in: snapshot.configuration) {
            return text(409, "cannot remove a server: \(problem)")
        }
        let leaving = Set((runtimeState?.state.removed ?? []).filter { $0.pool == pool }.map(\.id) + [id])
        guard snapshot.pools[p].servers.contains(where: { !leaving.contains(snapshot.servers[$0].config.id) }) else {
            return text(409, "server \(id) is the last server of pool \(pool) (a pool needs one); add another first")
        }
        guard let store = runtimeState else { return notKept }
        if let error = store.update(keepOnFailure: false, { $0.remove(pool: pool, id: id) }) {
            return text(500, "nothing changed: cannot write \(store.path): \(error)")
        }
        snapshot.servers[index].setAdminCondition(.drain)
        log(LogLevel.notice.tag + "weir: server \(id): removed from pool \(pool) (admin API); draining until it leaves")
        guard now, let reload else {
            return text(202, "server \(id) is draining; it leaves pool \(pool) at the next reload or restart"
                        + (now ? "" : " (DELETE ...?now=1 to remove it at once)"))
        }
        return reloadAnswer("server \(id) removed from pool \(pool)", reload: reload, undo: nil)
    }

    /// `GET /state`: the runtime state, its file, and the entries the last load could not apply.
    func stateDocument() -> Answer {
        guard let store = runtimeState else { return notKept }
        return Answer(status: 200, body: StateDocument(file: store.path, state: store.state, not_applied: store.notApplied).encoded())
    }

    /// `DELETE /state[/SECTION[/KEY]]`: forgets entries; conf.d applies again from the next reload (at once
    /// with the reload hook).
    func clearState(section: String?, key: String?) -> Answer {
        guard runtimeState != nil else { return notKept }
        if let section, !RuntimeState.sections.contains(section) {
            return text(404, "no state section \(section); use \(RuntimeState.sections.joined(separator: ", "))")
        }
        var cleared = 0
        let what = ["state"] + [section, key].compactMap { $0 }
        return keepThenReload("\(what.joined(separator: " ")) cleared", unchanged: { cleared == 0 ? "nothing to clear in \(what.joined(separator: "/"))" : nil }) {
            cleared = $0.clear(section: section, key: key)
        }
    }

    // MARK: - Keeping and reloading

    /// The JSON fragment for an answer after a live change: empty when it was kept (the answer is the one it
    /// always was) or there is no store; `"persisted":false,"persist_error":"...",` when the file could not be
    /// written.
    func keepLive(_ change: (inout RuntimeState) -> Void) -> String {
        guard let store = runtimeState else { return "" }
        guard let error = store.update(keepOnFailure: true, change) else { return "" }
        return "\"persisted\":false,\"persist_error\":\(Self.jsonString("cannot write \(store.path): \(error)")),"
    }

    /// Keeps `change`, then has the snapshot rebuilt (see the file comment). `unchanged` may turn a change that
    /// changed nothing into a 404 with its message.
    private func keepThenReload(_ what: String, unchanged: () -> String? = { nil },
                                _ change: (inout RuntimeState) -> Void) -> Answer {
        guard let store = runtimeState else { return notKept }
        let before = store.state
        if let error = store.update(keepOnFailure: false, change) {
            return text(500, "nothing changed: cannot write \(store.path): \(error)")
        }
        if let message = unchanged() { return text(404, message) }
        log(LogLevel.notice.tag + "weir: \(what) (admin API; kept in \(store.path))")
        guard let reload else { return text(202, "\(what): saved; takes effect at the next reload or restart") }
        return reloadAnswer(what, reload: reload, undo: before)
    }

    /// Runs the reload; when it fails, the state is put back to `undo` (when given).
    private func reloadAnswer(_ what: String, reload: () -> ReloadResult, undo: RuntimeState?) -> Answer {
        let result = reload()
        if result.ok { return text(200, "\(what): in effect; \(result.message)") }
        if let undo, let store = runtimeState { store.restore(undo) }
        return text(500, "\(what): not applied, the reload failed: \(result.message)"
                    + (undo == nil ? "; kept for the next reload that succeeds" : "; the runtime state is as before"))
    }

    private var notKept: Answer { text(503, "runtime changes are not kept by this process (no state directory)") }

    /// The name of the pool server `index` belongs to.
    func poolName(ofServer index: Int) -> String {
        snapshot.pools.first { $0.servers.contains(index) }?.name ?? ""
    }

    /// Every `name=value` pair of `query`, percent-decoded, in order.
    static func queryPairs(_ query: String) -> [(String, String)] {
        query.split(separator: "&").map { pair in
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = QueryString.percentDecoded(kv[0]) ?? String(kv[0])
            return (name, kv.count > 1 ? QueryString.percentDecoded(kv[1]) ?? String(kv[1]) : "")
        }
    }

    static func jsonString(_ text: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        return String(decoding: (try? encoder.encode(text)) ?? Data("\"\"".utf8), as: UTF8.self)
    }
}
