/// The outcome of a reload (SIGHUP, `POST /reload`, `weir reload`): whether the new configuration
/// took effect, and what the operator reads: what changed, or why nothing did.
public struct ReloadResult: Sendable, Equatable {
    public var ok: Bool
    public var message: String

    public init(ok: Bool, message: String) {
        self.ok = ok
        self.message = message
    }
}
