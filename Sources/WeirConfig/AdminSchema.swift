import Foundation
import TOMLKit

// `[admin] token` and `token_file`: the admin API's token, inline or read from a file at every load.

extension Schema {
    /// `token`: an inline token of at least `AdminSettings.minimumTokenLength` characters.
    static var adminTokenKey: KeySpec<AdminState> {
        KeySpec("token") { value, site, reader, state in
            state.tokenLocation = site.location
            guard let text = Rule.string.check(value, site, &reader) else { return false }
            guard text.count >= AdminSettings.minimumTokenLength else {
                reader.fail(site, "must be at least \(AdminSettings.minimumTokenLength) characters, found \(text.count); "
                            + "generate one with: \(ValueRules.secretCommand) (or leave token out: one is then "
                            + "generated at first start and kept in [global] state_dir as admin.token)")
                return false
            }
            guard !text.contains(where: { $0.isWhitespace || $0.isNewline }) else {
                reader.fail(site, "must not contain spaces or line breaks (it is sent in an Authorization header)")
                return false
            }
            state.settings.token = text
            return true
        }
    }

    /// `token_file`: a file holding the token, read at every load (start and reload).
    static var adminTokenFileKey: KeySpec<AdminState> {
        KeySpec("token_file") { value, site, reader, state in
            state.tokenFileLocation = site.location
            guard let path = Rule.string.check(value, site, &reader) else { return false }
            guard !path.isEmpty else {
                reader.fail(site, "must not be empty, e.g. token_file = \"/etc/weir/admin.token\"")
                return false
            }
            switch ValueRules.readSecretFile(path) {
            case .success(let token):
                state.settings.token = token
                state.settings.tokenFile = path
                return true
            case .failure(let problem):
                reader.fail(site, problem.message)
                return false
            }
        }
    }
}

extension Schema {
    /// `address = "unix:/absolute/path"`: nil when `value` is not of that form (the numeric-address
    /// rule reads it), else whether the path is valid.
    static func unixAdminAddress(_ value: TOMLValueConvertible, _ site: Site, _ reader: inout Reader,
                                 _ state: inout AdminState) -> Bool? {
        guard let text = value.string, text.hasPrefix("unix:") else { return nil }
        let path = String(text.dropFirst(5))
        guard path.hasPrefix("/"), path.utf8.count <= 107, !path.hasSuffix("/") else {
            reader.fail(site, "invalid Unix socket address \"\(ValueRules.clip(text))\"; give an absolute path of at most 107 bytes, "
                        + "e.g. address = \"unix:/run/weir/admin.sock\"")
            return false
        }
        state.settings.address = nil
        state.settings.unixSocket = path
        state.location = site.location
        return true
    }

    /// `socket_mode`: the Unix socket's permissions as an octal string such as "0660".
    static var adminSocketModeKey: KeySpec<AdminState> {
        KeySpec("socket_mode") { value, site, reader, state in
            guard let text = Rule.string.check(value, site, &reader) else { return false }
            guard (3...4).contains(text.count), let mode = Int(text, radix: 8), mode <= 0o777 else {
                reader.fail(site, "expected permissions in octal such as \"0660\" or \"0600\", found \"\(ValueRules.clip(text))\"")
                return false
            }
            state.settings.socketMode = mode
            return true
        }
    }
}

extension Merger {
    /// `token` and `token_file` both written (in any files): one error at `token_file`.
    mutating func checkAdminToken() {
        guard let inline = admin.tokenLocation, let fileKey = admin.tokenFileLocation else { return }
        let (file, key) = Self.split(fileKey)
        fail(file, key, "token and token_file are both set (token at \(inline)); set only one of them")
    }
}
