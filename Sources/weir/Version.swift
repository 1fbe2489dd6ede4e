import ArgumentParser
import CWeirBuild

/// The release and the commit it was built from (Sysroot/CWeirBuild/shim.h, scripts/build-stamp.sh).
enum BuildInfo {
    static let version = String(cString: weir_version())
    /// 12 hex digits (with "-dirty" when built from uncommitted changes), or "unknown" when built
    /// without `make` or outside a git checkout.
    static let commit = String(cString: weir_build_commit())
    /// What `weir version` and `weir --version` print: "weir 0.12.0 (commit 0123456789ab)".
    static let versionLine = "weir \(version) (commit \(commit))"
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version",
                                                    abstract: "Print the version and the commit this binary was built from.")

    func run() throws {
        print(BuildInfo.versionLine)
    }
}
