import WeirBalance
import WeirConfig
import WeirIO

/// Runs the lending rule (`LendingRule`, source document 000) on the control thread: at each tick
/// it reads the loads of the pools that may borrow and of the servers that may be lent, and carries
/// out the moves by writing each server's lent mark (what `PolicyState.pick` reads). Every move is
/// logged; counts are in `/status` (`times_lent`, `lent_in`, `lent_out`). Nothing runs when no
/// server has `can_serve` covering a route of another pool.
final class LendingService {
    private let loop: EventLoop
    private let snapshot: RoutingSnapshot
    private let clock: BalanceClock
    private let log: (String) -> Void
    private var rule = LendingRule()
    private var timer: LoopTimer?

    init(loop: EventLoop, snapshot: RoutingSnapshot, clock: BalanceClock, log: @escaping (String) -> Void) {
        self.loop = loop
        self.snapshot = snapshot
        self.clock = clock
        self.log = log
    }

    /// The tick: a quarter of the shortest lend_after, between 50 ms and 1 s (the time condition is
    /// met at most one tick late).
    var tickMilliseconds: Int64 {
        let shortest = snapshot.pools.filter { !$0.lendable.isEmpty }.map { $0.config.lendAfter.milliseconds }.min() ?? 1000
        return min(1000, max(50, shortest / 4))
    }

    /// Starts the periodic evaluation (a no-op when no pool can borrow).
    func start() {
        guard snapshot.pools.contains(where: { !$0.lendable.isEmpty }) else { return }
        let timer = LoopTimer(loop: loop, repeating: true) { [unowned self] in self.tick() }
        timer.schedule(milliseconds: tickMilliseconds)
        self.timer = timer
    }

    func stop() { timer?.cancel() }

    /// One evaluation: the rule's moves at the current time, carried out and logged.
    func tick() {
        let now = clock.nowNanoseconds
        let moves = rule.evaluate(borrowers: snapshot.lendingBorrowers(now: now),
                                  candidates: snapshot.lendingCandidates(now: now), now: now)
        for move in moves { apply(move) }
    }

    private func apply(_ move: LendingRule.Move) {
        switch move {
        case .lend(let server, let pool):
            let state = snapshot.servers[server]
            state.setLent(to: pool)
            log(LogLevel.notice.tag + "weir: lending: server \(state.config.id) (pool \(ownPool(server))) lent to pool \(snapshot.pools[pool].name): "
                + "its servers stayed at or above lend_level for lend_after")
        case .giveBack(let server, let pool, let reason):
            let state = snapshot.servers[server]
            state.setLent(to: nil)
            log(LogLevel.notice.tag + "weir: lending: server \(state.config.id) given back by pool \(snapshot.pools[pool].name) to pool "
                + "\(ownPool(server)) (\(reason.rawValue))")
        }
    }

    private func ownPool(_ server: Int) -> String {
        snapshot.pools.first { $0.servers.contains(server) }?.name ?? "?"
    }
}
