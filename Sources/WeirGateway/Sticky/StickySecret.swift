import Foundation
import WeirConfig
import WeirIO

/// The key that signs pin cookies: the configured secret, or one generated at first start into
/// `<state_dir>/sticky.secret` (mode 0600) and reused after restarts, so pins survive a restart.
enum StickySecret {
    /// Returns the key bytes. Throws when a generated secret can be neither read nor written
    /// (the message names the path). `log` is told when a secret is generated or reused.
    static func resolve(_ configuration: WeirConfiguration, log: (String) -> Void) throws -> [UInt8] {
        if let secret = configuration.sticky.secret { return Array(secret.utf8) }
        // Nothing signs pins without sticky rules: no state file for such a configuration.
        guard configuration.routes.contains(where: { !$0.sticky.isEmpty }) else { return Digest.randomBytes(32) }
        return try StateSecret.resolve(fileName: "sticky.secret", stateDirectory: configuration.global.stateDirectory,
                                       what: "sticky pins", configure: "[sticky] secret",
                                       generatedNote: "pins stay valid across restarts", log: log)
    }
}

/// A secret kept in the state directory: read when the file holds one (at least 32 characters),
/// else generated (32 random bytes as hex) and written with mode 0600.
public enum StateSecret {
    /// Returns the key bytes of `<stateDirectory>/<fileName>`. `what` names what it signs and
    /// `configure` the key that would set it, for the log lines and the error. Throws an error naming
    /// the path when the file can be neither read nor written.
    public static func resolve(fileName: String, stateDirectory: String, what: String, configure: String,
                               generatedNote: String, log: (String) -> Void) throws -> [UInt8] {
        let path = (stateDirectory as NSString).appendingPathComponent(fileName)
        let files = FileManager.default
        if let data = files.contents(atPath: path) {
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if text.utf8.count >= 32 {
                log("weir: \(what) signed with the secret kept in \(path)")
                return Array(text.utf8)
            }
            log(LogLevel.warning.tag + "weir: \(path) holds no usable secret (shorter than 32 characters): generating a new one")
        }
        do {
            try files.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let secret = Digest.hex(Digest.randomBytes(32))
            guard files.createFile(atPath: path, contents: Data((secret + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
                throw CocoaError(.fileWriteNoPermission)
            }
            log(LogLevel.notice.tag + "weir: no \(configure) configured: generated one into \(path) (mode 0600); \(generatedNote)")
            return Array(secret.utf8)
        } catch {
            throw IOError("cannot keep a generated secret for \(what) in \(path) (set [global] state_dir to a writable directory, or \(configure)): \(error)")
        }
    }
}
