import Foundation
import Testing
@testable import WeirConfig

/// `[admin] token` and `token_file` (issue 13): accepted forms and the exact errors, each naming file and key.
@Suite struct AdminTokenConfigTests {
    private let token = String(repeating: "t", count: 32)

    @Test func anInlineTokenIsKept() throws {
        let configuration = try parse([("a.toml", baseTOML + "[admin]\ntoken = \"\(token)\"\n")])
        #expect(configuration.admin.token == token && configuration.admin.tokenFile == nil)
    }

    @Test func aTokenFileIsReadAtLoad() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("weir-admin-token-conf-\(getpid())").path
        try Data((token + "\n").utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let configuration = try parse([("a.toml", baseTOML + "[admin]\ntoken_file = \"\(path)\"\n")])
        #expect(configuration.admin.token == token && configuration.admin.tokenFile == path)
    }

    @Test func aMissingTokenFileNamesFileAndKey() {
        #expect(errorLines(appending: "[admin]\ntoken_file = \"/nonexistent/admin.token\"\n") == [
            "a.toml: admin.token_file: cannot read secret file \"/nonexistent/admin.token\": it does not exist; "
                + "create it with: openssl rand -hex 32 > /nonexistent/admin.token",
        ])
    }

    @Test func aShortTokenIsRefused() {
        #expect(errorLines(appending: "[admin]\ntoken = \"short\"\n") == [
            "a.toml: admin.token: must be at least 32 characters, found 5; generate one with: openssl rand -hex 32 "
                + "(or leave token out: one is then generated at first start and kept in [global] state_dir as admin.token)",
        ])
    }

    @Test func bothKeysAreOneError() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("weir-admin-token-both-\(getpid())").path
        try Data(token.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(errorLines(appending: "[admin]\ntoken = \"\(token)\"\ntoken_file = \"\(path)\"\n") == [
            "a.toml: admin.token_file: token and token_file are both set (token at a.toml: admin.token); set only one of them",
        ])
    }

    @Test func aUnixSocketAddressAndItsMode() throws {
        let configuration = try parse([("a.toml", baseTOML + "[admin]\naddress = \"unix:/run/weir/admin.sock\"\nsocket_mode = \"0660\"\n")])
        #expect(configuration.admin.address == nil && configuration.admin.unixSocket == "/run/weir/admin.sock")
        #expect(configuration.admin.socketMode == 0o660)
        #expect(try parse([("a.toml", baseTOML)]).admin.socketMode == 0o600)
    }

    @Test func badUnixSocketAddressesAndModes() {
        #expect(errorLines(appending: "[admin]\naddress = \"unix:run/admin.sock\"\n") == [
            "a.toml: admin.address: invalid Unix socket address \"unix:run/admin.sock\"; give an absolute path of at most 107 bytes, "
                + "e.g. address = \"unix:/run/weir/admin.sock\"",
        ])
        #expect(errorLines(appending: "[admin]\nsocket_mode = \"rw\"\n") == [
            "a.toml: admin.socket_mode: expected permissions in octal such as \"0660\" or \"0600\", found \"rw\"",
        ])
        #expect(errorLines(appending: "[admin]\nsocket_mode = \"1777\"\n").count == 1)
    }
}
