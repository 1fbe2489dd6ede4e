import Foundation

extension GlobalSettings {
    /// The built-in `state_dir` for this process: `$STATE_DIRECTORY`, which systemd sets from the
    /// unit's `StateDirectory=` (and `make run` sets for the demo), else `"/var/lib/weir"`.
    static func stateDirectoryFromEnvironment() -> String {
        stateDirectory(environment: ProcessInfo.processInfo.environment)
    }

    /// The first entry of an absolute `STATE_DIRECTORY` (systemd joins several with ":"), else
    /// `"/var/lib/weir"`: the default never depends on the working directory.
    public static func stateDirectory(environment: [String: String]) -> String {
        let first = environment["STATE_DIRECTORY"].flatMap { $0.split(separator: ":").first.map(String.init) }
        guard let first, first.hasPrefix("/") else { return "/var/lib/weir" }
        return first
    }
}
