import WeirConfig
import WeirGateway
import WeirIO

/// Builds a process's `GroupRuntime` from its configuration: the group secret (configured, or
/// generated into state_dir), and an `AddressKeeper` when this host adds or takes over addresses.
public enum PeerSetup {
    /// Precondition: `configuration.group` is set. Throws when a generated secret can be neither
    /// read nor written (the message names the path).
    public static func runtime(_ configuration: WeirConfiguration, log: @escaping (String) -> Void) throws -> GroupRuntime {
        let group = configuration.group!
        let key: [UInt8]
        if let secret = group.secret {
            key = Array(secret.utf8)
        } else {
            key = try StateSecret.resolve(fileName: "group.secret", stateDirectory: configuration.global.stateDirectory,
                                          what: "peer beacons", configure: "[group] secret",
                                          generatedNote: "copy this file to every member's state_dir (beacons under another secret are refused)",
                                          log: log)
        }
        let needsAddresses = !(configuration.peer?.addresses.isEmpty ?? true) || group.members.contains { !$0.takeover.isEmpty }
        let keeper = needsAddresses && configuration.peer != nil ? AddressKeeper(log: log) : nil
        return GroupRuntime(configuration: configuration, key: key, keeper: keeper, log: log,
                            startNanoseconds: MonotonicTime.nanoseconds(), wallMilliseconds: WallClock.milliseconds())
    }
}
