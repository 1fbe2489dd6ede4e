import Testing
import WeirBalance
@testable import WeirGateway

/// The register of users (issue 11, documents 001/000): a pin counts as a user only once its client
/// has presented it back; candidates expire quickly and are bounded apart from the users. The wall
/// clock is the `nowMs` each call is given (a manual clock).
@Suite struct UserRegisterTests {
    static let key = [UInt8](repeating: 7, count: 32)

    func context(users: Int = 100, candidates: Int = 100, candidateMs: Int64 = 30_000) -> StickyContext {
        StickyContext(key: Self.key, capacity: users, unconfirmedCapacity: candidates, unconfirmedIdleMs: candidateMs)
    }

    func touch(_ key: String, server: Int = 0, presented: Bool, idleMs: Int64 = 1_200_000) -> RegisterChange {
        .touch(key: key, server: server, path: "/banking/*", idleMs: idleMs, presented: presented)
    }

    @Test func aPinCountsAsAUserOnlyOncePresentedBack() {
        let sticky = context()
        sticky.apply(touch("s1", presented: false), nowMs: 1_000)
        #expect(sticky.users(nowMs: 1_000) == [:])
        #expect(sticky.unconfirmed.counts(nowMs: 1_000) == [0: 1])
        #expect(sticky.pinnedServer(for: "s1", nowMs: 1_000) == 0)      // a candidate still pins
        sticky.apply(touch("s1", presented: true), nowMs: 2_000)
        #expect(sticky.users(nowMs: 2_000) == [0: 1])
        #expect(sticky.unconfirmed.counts(nowMs: 2_000) == [:])          // moved, not doubled
        // Renewed without "presented" (cannot happen from a plan, but must not demote it).
        sticky.apply(touch("s1", presented: false), nowMs: 3_000)
        #expect(sticky.users(nowMs: 3_000) == [0: 1] && sticky.unconfirmed.count == 0)
    }

    @Test func fiveOneShotClientsAreNoUsers() {
        let sticky = context()
        for i in 0..<5 { sticky.apply(touch("c\(i)", server: i % 2, presented: false), nowMs: 10_000) }
        #expect(sticky.users(nowMs: 10_000) == [:])
        #expect(sticky.unconfirmed.counts(nowMs: 10_000) == [0: 3, 1: 2])
    }

    @Test func candidatesExpireAfterTheirShortTimeoutUsersAfterTheRulesIdleTime() {
        let sticky = context(candidateMs: 30_000)
        sticky.apply(touch("cand", presented: false), nowMs: 0)
        sticky.apply(touch("user", presented: true), nowMs: 0)
        #expect(sticky.pinnedServer(for: "cand", nowMs: 30_000) == 0)
        #expect(sticky.pinnedServer(for: "cand", nowMs: 30_001) == nil)
        #expect(sticky.unconfirmed.counts(nowMs: 30_001) == [:])
        #expect(sticky.users(nowMs: 1_200_000) == [0: 1])
        #expect(sticky.users(nowMs: 1_200_001) == [:])
        // A rule idle time shorter than the candidate timeout wins.
        sticky.apply(touch("short", presented: false, idleMs: 2_000), nowMs: 0)
        #expect(sticky.pinnedServer(for: "short", nowMs: 2_001) == nil)
    }

    @Test func aFloodOfCandidatesCannotEvictUsers() {
        let sticky = context(users: 3, candidates: 4)
        for i in 0..<3 { sticky.apply(touch("u\(i)", presented: true), nowMs: 0) }
        for i in 0..<1_000 { sticky.apply(touch("f\(i)", server: 1, presented: false), nowMs: Int64(i)) }
        #expect(sticky.users(nowMs: 1_000) == [0: 3])
        #expect(sticky.unconfirmed.count == 4 && sticky.unconfirmed.evicted == 996)
        #expect(sticky.register.evicted == 0)
        // Beyond its own bound the users table drops its least recently used user, as before.
        sticky.apply(touch("u3", presented: true), nowMs: 1_000)
        #expect(sticky.register.count == 3 && sticky.register.evicted == 1 && sticky.pinnedServer(for: "u0", nowMs: 1_000) == nil)
    }

    @Test func completionRemovesFromEitherTable() {
        let sticky = context()
        sticky.apply(touch("a", presented: false), nowMs: 0)
        sticky.apply(touch("b", presented: true), nowMs: 0)
        sticky.apply(.remove(key: "a"), nowMs: 1)
        sticky.apply(.remove(key: "b"), nowMs: 1)
        #expect(sticky.register.count == 0 && sticky.unconfirmed.count == 0)
    }

    @Test func otherInstancesUsersAddUpButAreNotSentBack() {
        let sticky = context()
        sticky.apply(touch("a", server: 0, presented: true), nowMs: 0)
        let exchange = UserExchange(sticky)
        exchange.setRemote([0: 2, 1: 5])
        #expect(sticky.users(nowMs: 1) == [0: 3, 1: 5])
        #expect(exchange.local(nowMs: 1) == [0: 1])
        exchange.setRemote([:])
        #expect(sticky.users(nowMs: 1) == [0: 1])
    }
}
