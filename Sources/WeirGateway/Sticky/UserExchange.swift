/// The register of users as a group runtime sees it (`[group] share_users`): this instance's
/// confirmed users to send, and the slot for what the other instances report, which the server
/// list and the admin register add to their own. Thread-safe (the register has its own locks).
public final class UserExchange: Sendable {
    private let sticky: StickyContext

    init(_ sticky: StickyContext) { self.sticky = sticky }

    /// Server index → confirmed, live users of this instance at wall time `nowMs`.
    public func local(nowMs: Int64) -> [Int: Int] { sticky.localUsers(nowMs: nowMs) }

    /// Replaces the users the other instances report (server index → their sum).
    public func setRemote(_ counts: [Int: Int]) { sticky.setRemoteUsers(counts) }
}
