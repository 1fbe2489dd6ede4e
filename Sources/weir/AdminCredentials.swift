import ArgumentParser
import Foundation
import WeirConfig

/// The admin token a command sends (README, "Admin API security"), first found of: `--token`, the
/// environment's `WEIR_ADMIN_TOKEN`, `[admin] token` / `token_file` of `-c DIR`, the `admin.token`
/// kept in that configuration's `state_dir` (without `-c`: the default state directory). Nil when
/// there is none (reads on a loopback listener need none; a state change is then answered 401).
func adminToken(_ token: String?, directory: String?) throws -> String? {
    if let token, !token.isEmpty { return token }
    let environment = ProcessInfo.processInfo.environment
    if let fromEnvironment = environment["WEIR_ADMIN_TOKEN"], !fromEnvironment.isEmpty { return fromEnvironment }
    var stateDirectory = GlobalSettings.stateDirectory(environment: environment)
    if let directory {
        let configuration = try ConfigOptions(directory: directory).load()
        if let configured = configuration.admin.token { return configured }
        stateDirectory = configuration.global.stateDirectory
    }
    let path = (stateDirectory as NSString).appendingPathComponent("admin.token")
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    let kept = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    return kept.isEmpty ? nil : kept
}

/// The help of every command's `--token` option.
let adminTokenHelp: ArgumentHelp =
    "Admin token (default: $WEIR_ADMIN_TOKEN, else [admin] token/token_file of -c DIR, else state_dir/admin.token)."
