import Foundation
import Testing
@testable import WeirConfig

/// Every error of the sticky-transaction, redirect-mode and discovery keys, with its exact text.
@Suite struct StickyErrorTests {
    /// Errors of `a.toml` = the base followed by a route "r" (pool "demo") with `routeKeys` and one
    /// `[[route.sticky]]` table holding `sticky` (when given).
    func routeErrors(_ routeKeys: String = "", sticky: String? = nil) -> [String] {
        let table = sticky.map { "[[route.sticky]]\n\($0)\n" } ?? ""
        return errorLines(appending: "[[route]]\nname = \"r\"\npool = \"demo\"\n\(routeKeys)\n\(table)")
    }

    /// Errors of `a.toml` = the base followed by `[sticky]` holding `keys`.
    func stickyErrors(_ keys: String) -> [String] {
        errorLines(appending: "[sticky]\n\(keys)\n")
    }

    // MARK: [[route.sticky]]

    @Test func stickyPathMustEndInSlashStar() {
        let form = ##"expected a path starting with "/" and ending in "/*" (no other "*", no spaces, "?" or "#"), such as "/banking/*""##
        for path in ["/banking", "/banking/", "/banking*", "banking/*", "/a/*/b/*", "/*/x", "/bank ing/*", "/a?/*", ""] {
            #expect(routeErrors(sticky: "path = \"\(path)\"") == [
                #"a.toml: route[1].sticky[0].path: invalid sticky path "\#(path)"; \#(form)"#,
            ])
        }
        #expect(routeErrors(sticky: #"complete = ["/banking/logout"]"#) == [
            #"a.toml: route[1].sticky[0].path: missing required key, e.g. path = "/banking/*""#,
        ])
        #expect(routeErrors(sticky: "path = 1") == [
            "a.toml: route[1].sticky[0].path: expected a string, found an integer (1)",
        ])
    }

    @Test func stickyPathOutsideTheRoute() {
        #expect(routeErrors(#"path = "/api/""#, sticky: #"path = "/banking/*""#) == [
            #"a.toml: route[1].sticky[0].path: sticky path "/banking/*" is outside the route's path "/api/"; its requests never reach this route (move the rule to a [[route]] whose path covers it)"#,
        ])
    }

    @Test func duplicateStickyPath() {
        #expect(routeErrors(sticky: "path = \"/banking/*\"\n[[route.sticky]]\npath = \"/banking/*\"\nby = \"source\"") == [
            #"a.toml: route[1].sticky[1].path: duplicate sticky path "/banking/*" in this route; already used by route[1].sticky[0].path"#,
        ])
    }

    @Test func completePathsMustStartWithASlash() {
        let form = ##"expected a path starting with "/" (no spaces, "?" or "#") such as "/banking/logout", or a pattern with "*" such as "/banking/receipt/*""##
        #expect(routeErrors(sticky: "path = \"/banking/*\"\ncomplete = [\"/banking/logout\", \"banking/receipt/*\", \"\", 3]") == [
            #"a.toml: route[1].sticky[0].complete[1]: invalid path "banking/receipt/*"; \#(form)"#,
            #"a.toml: route[1].sticky[0].complete[2]: invalid path ""; \#(form)"#,
            "a.toml: route[1].sticky[0].complete[3]: \(form), found an integer (3)",
        ])
        #expect(routeErrors(sticky: "path = \"/banking/*\"\ncomplete = \"/banking/logout\"") == [
            #"a.toml: route[1].sticky[0].complete: expected an array of paths such as ["/banking/logout", "/banking/receipt/*"], found a string ("/banking/logout")"#,
        ])
    }

    @Test func badBinding() {
        #expect(routeErrors(sticky: "path = \"/banking/*\"\nby = \"ip\"") == [
            #"a.toml: route[1].sticky[0].by: unknown binding "ip"; supported bindings: "cookie", "source""#,
        ])
        #expect(routeErrors(sticky: "path = \"/banking/*\"\nby = \"cookies\"") == [
            #"a.toml: route[1].sticky[0].by: unknown binding "cookies" (did you mean "cookie"?); supported bindings: "cookie", "source""#,
        ])
    }

    @Test func badCookieName() {
        let form = #"expected a cookie name such as "weir_pin" (letters, digits and !#$%&'*+-.^_`|~; no spaces, "=" or ";")"#
        for name in ["weir pin", "pin=1", "a;b", "", "pïn"] {
            #expect(routeErrors(sticky: "path = \"/banking/*\"\ncookie = \"\(name)\"") == [
                #"a.toml: route[1].sticky[0].cookie: invalid cookie name "\#(name)"; \#(form)"#,
            ])
        }
    }

    @Test func idleTimeoutTooSmall() {
        #expect(routeErrors(sticky: "path = \"/banking/*\"\nidle_timeout = \"999ms\"") == [
            #"a.toml: route[1].sticky[0].idle_timeout: must be at least 1s, found "999ms""#,
        ])
        #expect(routeErrors(sticky: "path = \"/banking/*\"\nidle_timeout = \"0s\"") == [
            #"a.toml: route[1].sticky[0].idle_timeout: expected a duration such as "10s" or "250ms" (a positive whole number followed by ms, s, m or h), found "0s""#,
        ])
    }

    @Test func unknownAndMisplacedStickyRuleKeys() {
        #expect(routeErrors(sticky: "path = \"/banking/*\"\ncompleted = []") == [
            #"a.toml: route[1].sticky[0].completed: unknown key (did you mean "complete"?)"#,
        ])
        #expect(routeErrors(sticky: "path = \"/banking/*\"\npool = \"demo\"") == [
            "a.toml: route[1].sticky[0].pool: unknown key; pool belongs in [[route]], not [[route.sticky]]",
        ])
        #expect(routeErrors(sticky: "path = \"/banking/*\"\nsecret_file = \"/x\"") == [
            "a.toml: route[1].sticky[0].secret_file: unknown key; secret_file belongs in [sticky], not [[route.sticky]]",
        ])
        #expect(routeErrors("idle_timeout = \"5m\"") == [
            "a.toml: route[1].idle_timeout: unknown key; idle_timeout belongs in [[route.sticky]], not [[route]]",
        ])
    }

    @Test func stickyTablesOfTheWrongShape() {
        #expect(errorLines(appending: "[[route]]\nname = \"r\"\npool = \"demo\"\n[route.sticky]\npath = \"/a/*\"\n") == [
            "a.toml: route[1].sticky: expected an array of tables ([[route.sticky]]), found a table; write [[route.sticky]], not [route.sticky]",
        ])
        #expect(errorLines([("a.toml", baseTOML), ("b.toml", "[[route.sticky]]\npath = \"/a/*\"\n")]) == [
            "b.toml: route.sticky: [[route.sticky]] must follow a [[route]] in the same file",
        ])
        #expect(errorLines(appending: "[[sticky]]\npath = \"/a/*\"\n") == [
            "a.toml: sticky: expected a table ([sticky]), found an array; to pin a route's path to one server, write [[route.sticky]] after the [[route]]",
        ])
    }

    // MARK: mode and redirect_status

    @Test func badMode() {
        #expect(routeErrors(#"mode = "redirct""#) == [
            #"a.toml: route[1].mode: unknown mode "redirct" (did you mean "redirect"?); supported modes: "proxy", "redirect""#,
        ])
        #expect(errorLines(appending: "[[listener]]\nname = \"l\"\naddress = \"127.0.0.1:8081\"\nmode = \"tunnel\"\n") == [
            #"a.toml: listener[1].mode: unknown mode "tunnel"; supported modes: "proxy", "redirect""#,
        ])
        #expect(routeErrors("mode = true") == [
            "a.toml: route[1].mode: expected a string, found a boolean (true)",
        ])
    }

    @Test func redirectStatusNotInTheSet() {
        for status in [301, 200, 304, 399] {
            #expect(routeErrors("redirect_status = \(status)") == [
                "a.toml: route[1].redirect_status: must be 302, 303, 307 or 308, found \(status)",
            ])
        }
        #expect(routeErrors(#"redirect_status = "307""#) == [
            #"a.toml: route[1].redirect_status: expected an integer, found a string ("307")"#,
        ])
    }

    // MARK: [sticky]

    @Test func shortSecret() {
        #expect(stickyErrors(#"secret = "REPLACE-ME""#) == [
            "a.toml: sticky.secret: must be at least 32 characters, found 10; generate one with: openssl rand -hex 32 (or leave secret out: one is then generated at first start and kept in [global] state_dir)",
        ])
        #expect(stickyErrors("secret = \"\(String(repeating: "x", count: 31))\"") == [
            "a.toml: sticky.secret: must be at least 32 characters, found 31; generate one with: openssl rand -hex 32 (or leave secret out: one is then generated at first start and kept in [global] state_dir)",
        ])
        #expect(stickyErrors("secret = 12345") == [
            "a.toml: sticky.secret: expected a string, found an integer (12345)",
        ])
    }

    @Test func secretAndSecretFileBothSet() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try String(repeating: "f", count: 64).write(toFile: directory + "/s", atomically: true, encoding: .utf8)
        let secret = String(repeating: "k", count: 32)
        #expect(stickyErrors("secret = \"\(secret)\"\nsecret_file = \"\(directory)/s\"") == [
            "a.toml: sticky.secret_file: secret and secret_file are both set (secret at a.toml: sticky.secret); set only one of them",
        ])
        // Across files too.
        #expect(errorLines([("a.toml", baseTOML + "[sticky]\nsecret_file = \"\(directory)/s\"\n"),
                            ("b.toml", "[sticky]\nsecret = \"\(secret)\"\n")]) == [
            "a.toml: sticky.secret_file: secret and secret_file are both set (secret at b.toml: sticky.secret); set only one of them",
        ])
    }

    @Test func missingSecretFile() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/missing.secret"
        #expect(stickyErrors("secret_file = \"\(path)\"") == [
            #"a.toml: sticky.secret_file: cannot read secret file "\#(path)": it does not exist; create it with: openssl rand -hex 32 > \#(path)"#,
        ])
        // A path the shell would split is quoted in the suggested command.
        let spaced = directory + "/my secret"
        #expect(stickyErrors("secret_file = \"\(spaced)\"") == [
            #"a.toml: sticky.secret_file: cannot read secret file "\#(spaced)": it does not exist; create it with: openssl rand -hex 32 > '\#(spaced)'"#,
        ])
        #expect(stickyErrors(#"secret_file = """#) == [
            #"a.toml: sticky.secret_file: must not be empty, e.g. secret_file = "/etc/weir/sticky.secret""#,
        ])
    }

    @Test func shortOrEmptySecretFile() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let short = directory + "/short.secret"
        try "  0123456789\n".write(toFile: short, atomically: true, encoding: .utf8)
        #expect(stickyErrors("secret_file = \"\(short)\"") == [
            #"a.toml: sticky.secret_file: secret file "\#(short)" holds 10 bytes (after trimming whitespace); the secret must be at least 32 bytes; write a new one with: openssl rand -hex 32 > \#(short)"#,
        ])
        let empty = directory + "/empty.secret"
        try " \n\n".write(toFile: empty, atomically: true, encoding: .utf8)
        #expect(stickyErrors("secret_file = \"\(empty)\"") == [
            #"a.toml: sticky.secret_file: secret file "\#(empty)" is empty; write a secret into it with: openssl rand -hex 32 > \#(empty)"#,
        ])
        let binary = directory + "/binary.secret"
        try Data((0..<40).map { _ in UInt8(0xff) }).write(to: URL(fileURLWithPath: binary))
        #expect(stickyErrors("secret_file = \"\(binary)\"") == [
            #"a.toml: sticky.secret_file: secret file "\#(binary)" is not valid UTF-8 text; write a new secret with: openssl rand -hex 32 > \#(binary)"#,
        ])
    }

    @Test func unreadableSecretFile() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(stickyErrors("secret_file = \"\(directory)\"") == [
            #"a.toml: sticky.secret_file: cannot read secret file "\#(directory)": it is a directory; name a file holding the secret"#,
        ])
        // Without read permission (root reads every file, so this part only runs for other users).
        let locked = directory + "/locked.secret"
        try String(repeating: "l", count: 64).write(toFile: locked, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: locked)
        if !FileManager.default.isReadableFile(atPath: locked) {
            #expect(stickyErrors("secret_file = \"\(locked)\"") == [
                #"a.toml: sticky.secret_file: cannot read secret file "\#(locked)" (check its permissions)"#,
            ])
        }
    }

    @Test func sourceTableSizeOutOfRange() {
        #expect(stickyErrors("source_table_size = 0") == [
            "a.toml: sticky.source_table_size: must be between 1 and 10000000, found 0",
        ])
        #expect(stickyErrors("source_table_size = 10000001") == [
            "a.toml: sticky.source_table_size: must be between 1 and 10000000, found 10000001",
        ])
    }

    @Test func unknownAndMisplacedStickySettings() {
        #expect(stickyErrors(#"secrte = "x""#) == [
            #"a.toml: sticky.secrte: unknown key (did you mean "secret"?)"#,
        ])
        #expect(stickyErrors(#"path = "/banking/*""#) == [
            "a.toml: sticky.path: unknown key; path belongs in [[route.sticky]], not [sticky]",
        ])
        #expect(errorLines(appending: "[global]\nsecret = \"x\"\n") == [
            "a.toml: global.secret: unknown key; secret belongs in [sticky], not [global]",
        ])
        #expect(errorLines([("a.toml", baseTOML), ("b.toml", "source_table_size = 5\n")]) == [
            "b.toml: source_table_size: unknown top-level key; source_table_size belongs in [sticky]",
        ])
        #expect(errorLines(appending: "[stickey]\nsecret = \"x\"\n") == [
            "a.toml: stickey: unknown table (did you mean [sticky]?)",
        ])
    }

    @Test func stickySettingSetInTwoFiles() {
        #expect(errorLines([("a.toml", baseTOML + "[sticky]\nsource_table_size = 5\n"),
                            ("b.toml", "[sticky]\nsource_table_size = 6\n")]) == [
            "b.toml: sticky.source_table_size: already set in a.toml; each [sticky] key may be set in only one file",
        ])
    }

    // MARK: [discovery]

    @Test func discoveryPathsMustStartWithASlash() {
        let servers = ##"expected a path starting with "/" (no spaces, "?", "#" or "*") such as "/.well-known/weir/servers", or "off" to turn the endpoint off"##
        let assign = ##"expected a path starting with "/" (no spaces, "?", "#" or "*") such as "/.well-known/weir/assign", or "off" to turn the endpoint off"##
        #expect(errorLines(appending: "[discovery]\nservers_path = \"servers\"\nassign_path = \"/a?b\"\n") == [
            #"a.toml: discovery.servers_path: invalid path "servers"; \#(servers)"#,
            #"a.toml: discovery.assign_path: invalid path "/a?b"; \#(assign)"#,
        ])
        #expect(errorLines(appending: "[discovery]\nservers_path = \"/s/*\"\nassign_path = \"\"\n") == [
            #"a.toml: discovery.servers_path: invalid path "/s/*"; \#(servers)"#,
            #"a.toml: discovery.assign_path: invalid path ""; \#(assign)"#,
        ])
        #expect(errorLines(appending: "[discovery]\nservers_path = false\n") == [
            "a.toml: discovery.servers_path: \(servers), found a boolean (false)",
        ])
        #expect(errorLines(appending: "[discovery]\nserver_path = \"/x\"\n") == [
            #"a.toml: discovery.server_path: unknown key (did you mean "servers_path"?)"#,
        ])
    }

    @Test func discoveryPathsMustDiffer() {
        #expect(errorLines(appending: "[discovery]\nservers_path = \"/weir\"\nassign_path = \"/weir\"\n") == [
            #"a.toml: discovery.assign_path: must differ from discovery.servers_path ("/weir"); each endpoint needs a path of its own"#,
        ])
        // Against the other endpoint's default.
        #expect(errorLines(appending: "[discovery]\nservers_path = \"/.well-known/weir/assign\"\n") == [
            #"a.toml: discovery.servers_path: must differ from discovery.assign_path (default "/.well-known/weir/assign"); each endpoint needs a path of its own"#,
        ])
        // An invalid path is reported once, not also compared (it keeps its default meanwhile).
        #expect(errorLines(appending: "[discovery]\nservers_path = \"x\"\nassign_path = \"/.well-known/weir/servers\"\n") == [
            ##"a.toml: discovery.servers_path: invalid path "x"; expected a path starting with "/" (no spaces, "?", "#" or "*") such as "/.well-known/weir/servers", or "off" to turn the endpoint off"##,
        ])
        // Written in two files: reported at the assign_path.
        #expect(errorLines([("a.toml", baseTOML + "[discovery]\nassign_path = \"/w\"\n"),
                            ("b.toml", "[discovery]\nservers_path = \"/w\"\n")]) == [
            #"a.toml: discovery.assign_path: must differ from discovery.servers_path ("/w"); each endpoint needs a path of its own"#,
        ])
    }

    // MARK: [global] state_dir, [limits] redirect_body_bytes, rewrite_body_types

    @Test func emptyStateDirectory() {
        let form = #"expected a directory such as "/var/lib/weir" (a relative path is relative to the working directory)"#
        #expect(errorLines(appending: "[global]\nstate_dir = \"\"\n") == [
            "a.toml: global.state_dir: must not be empty; \(form)",
        ])
        #expect(errorLines(appending: "[global]\nstate_dir = \"  \"\n") == [
            "a.toml: global.state_dir: must not be empty; \(form)",
        ])
        #expect(errorLines(appending: "[global]\nstate_dir = 1\n") == [
            "a.toml: global.state_dir: expected a string, found an integer (1)",
        ])
    }

    @Test func redirectBodyBytesOutOfRange() {
        #expect(errorLines(appending: "[limits]\nredirect_body_bytes = -1\n") == [
            "a.toml: limits.redirect_body_bytes: must be between 0 and 1073741824, found -1",
        ])
        #expect(errorLines(appending: "[limits]\nredirect_body_bytes = 1073741825\n") == [
            "a.toml: limits.redirect_body_bytes: must be between 0 and 1073741824, found 1073741825",
        ])
    }

    @Test func badContentTypes() {
        let form = #"expected a content type such as "text/xml" or "application/wsdl+xml" (type/subtype, no parameters or wildcards)"#
        func poolErrors(_ value: String) -> [String] {
            errorLines(appending: "[[pool]]\nname = \"p\"\nrewrite_body_types = \(value)\n[[pool.server]]\nid = \"s\"\naddress = \"127.0.0.1:9002\"\n")
        }
        for type in ["text", "text/", "/xml", "text/html; charset=utf-8", "text/*", "*/*", "text/x/y", "text /html"] {
            #expect(poolErrors("[\"\(type)\"]") == [
                #"a.toml: pool[1].rewrite_body_types[0]: invalid content type "\#(type)"; \#(form)"#,
            ])
        }
        #expect(poolErrors(#"["text/xml", 1]"#) == [
            "a.toml: pool[1].rewrite_body_types[1]: \(form), found an integer (1)",
        ])
        #expect(poolErrors(#""text/html""#) == [
            #"a.toml: pool[1].rewrite_body_types: expected an array of content types such as ["text/html", "application/wsdl+xml"], found a string ("text/html")"#,
        ])
    }
}
