/// What a reload of conf.d (with the runtime state laid over it) came to: whether the new snapshot is in
/// service, and the line an operator reads (what changed, or the file and key that stopped it).
public struct ReloadResult: Sendable, Equatable {
    public var ok: Bool
    public var message: String

    public init(ok: Bool, message: String) {
        self.ok = ok
        self.message = message
    }
}
