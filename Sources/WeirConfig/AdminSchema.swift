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

extension Merger {
    /// `token` and `token_file` both written (in any files): one error at `token_file`.
    mutating func checkAdminToken() {
        guard let inline = admin.tokenLocation, let fileKey = admin.tokenFileLocation else { return }
        let (file, key) = Self.split(fileKey)
        fail(file, key, "token and token_file are both set (token at \(inline)); set only one of them")
    }
}
