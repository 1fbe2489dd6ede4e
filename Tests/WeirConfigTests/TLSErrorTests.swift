import Foundation
import Testing
@testable import WeirConfig

/// Every error of `[listener.tls]`, `[[listener.tls.sni]]`, `https_redirect` and `[pool.tls]`, with its exact text.
@Suite struct TLSErrorTests {
    /// Errors of `a.toml` = the base followed by a listener "https" on 127.0.0.1:8443 with `listenerKeys` and, when
    /// given, a `[listener.tls]` table holding `tls` and a `[[listener.tls.sni]]` table per element of `sni`.
    func listenerErrors(_ listenerKeys: String = "", tls: String?, sni: [String] = []) -> [String] {
        let table = tls.map { "[listener.tls]\n\($0)\n" } ?? ""
        let sniTables = sni.map { "[[listener.tls.sni]]\n\($0)\n" }.joined()
        return errorLines(appending: """
            [[listener]]
            name = "https"
            address = "127.0.0.1:8443"
            \(listenerKeys)
            \(table)\(sniTables)
            """)
    }

    /// Errors of `a.toml` = the base followed by a pool "secure" whose `[pool.tls]` holds `tls`.
    func poolErrors(tls: String) -> [String] {
        errorLines(appending: """
            [[pool]]
            name = "secure"
            [pool.tls]
            \(tls)
            [[pool.server]]
            id = "secure-1"
            address = "192.0.2.5:443"

            """)
    }

    // MARK: cert and key

    @Test func missingCertOrKey() throws {
        let files = try TLSFiles()
        defer { files.remove() }
        #expect(listenerErrors(tls: "cert = \"\(files("cert.pem"))\"") == [
            #"a.toml: listener[1].tls.key: missing required key; cert is set, so key must name its private key, e.g. key = "/etc/weir/tls/example.com.key""#,
        ])
        #expect(listenerErrors(tls: #"profile = "modern""#) == [
            #"a.toml: listener[1].tls.cert: missing required key, e.g. cert = "/etc/weir/tls/example.com.pem""#,
            #"a.toml: listener[1].tls.key: missing required key, e.g. key = "/etc/weir/tls/example.com.key""#,
        ])
    }

    @Test func keyWithoutCert() throws {
        let files = try TLSFiles()
        defer { files.remove() }
        #expect(listenerErrors(tls: "key = \"\(files("key.pem"))\"") == [
            #"a.toml: listener[1].tls.cert: missing required key; key is set, so cert must name its certificate (with its chain), e.g. cert = "/etc/weir/tls/example.com.pem""#,
        ])
    }

    @Test func emptyOrMistypedPaths() throws {
        let files = try TLSFiles()
        defer { files.remove() }
        #expect(listenerErrors(tls: "cert = \"\"\nkey = \"\(files("key.pem"))\"") == [
            #"a.toml: listener[1].tls.cert: must not be empty, e.g. cert = "/etc/weir/tls/example.com.pem""#,
        ])
        #expect(listenerErrors(tls: "cert = \"\(files("cert.pem"))\"\nkey = 1") == [
            "a.toml: listener[1].tls.key: expected a string, found an integer (1)",
        ])
    }

    @Test func missingFile() throws {
        let files = try TLSFiles()
        defer { files.remove() }
        let missing = files("missing.pem")
        #expect(listenerErrors(tls: "cert = \"\(missing)\"\nkey = \"\(files("key.pem"))\"") == [
            #"a.toml: listener[1].tls.cert: cannot read certificate file "\#(missing)": it does not exist"#,
        ])
        // A relative path: the message says what it is relative to.
        let cwd = FileManager.default.currentDirectoryPath
        #expect(listenerErrors(tls: "cert = \"\(files("cert.pem"))\"\nkey = \"no-such-dir/key.pem\"") == [
            #"a.toml: listener[1].tls.key: cannot read key file "no-such-dir/key.pem": it does not exist (a relative path is relative to the working directory, \#(cwd))"#,
        ])
        #expect(listenerErrors(tls: "cert = \"\(files("cert.pem"))\"\nkey = \"\(files("key.pem"))\"\nocsp = \"\(missing)\"") == [
            #"a.toml: listener[1].tls.ocsp: cannot read OCSP response file "\#(missing)": it does not exist"#,
        ])
        #expect(poolErrors(tls: "ca_file = \"\(missing)\"") == [
            #"a.toml: pool[1].tls.ca_file: cannot read CA file "\#(missing)": it does not exist"#,
        ])
    }

    @Test func directoryOrUnreadableFile() throws {
        let files = try TLSFiles()
        defer { files.remove() }
        #expect(listenerErrors(tls: "cert = \"\(files.directory)\"\nkey = \"\(files("key.pem"))\"") == [
            #"a.toml: listener[1].tls.cert: cannot read certificate file "\#(files.directory)": it is a directory; name a PEM file"#,
        ])
        #expect(listenerErrors(tls: "cert = \"\(files("cert.pem"))\"\nkey = \"\(files("key.pem"))\"\nocsp = \"\(files.directory)\"") == [
            #"a.toml: listener[1].tls.ocsp: cannot read OCSP response file "\#(files.directory)": it is a directory; name a file holding a DER OCSP response"#,
        ])
        // Without read permission (root reads every file, so this part only runs for other users).
        let locked = files("locked.key")
        try TLSFiles.keyPEM.write(toFile: locked, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: locked)
        if !FileManager.default.isReadableFile(atPath: locked) {
            #expect(listenerErrors(tls: "cert = \"\(files("cert.pem"))\"\nkey = \"\(locked)\"") == [
                #"a.toml: listener[1].tls.key: cannot read key file "\#(locked)" (check its permissions)"#,
            ])
        }
    }

    @Test func nonPEMFiles() throws {
        let files = try TLSFiles()
        defer { files.remove() }
        let der = files("cert.der")
        #expect(listenerErrors(tls: "cert = \"\(der)\"\nkey = \"\(der)\"") == [
            #"a.toml: listener[1].tls.cert: certificate file "\#(der)" is not PEM (it has no "-----BEGIN " line); expected the certificate and its chain in PEM form (such as certbot's fullchain.pem); convert a DER certificate with: openssl x509 -inform der -in cert.der -out cert.pem"#,
            #"a.toml: listener[1].tls.key: key file "\#(der)" is not PEM (it has no "-----BEGIN " line); expected a private key in PEM form (such as certbot's privkey.pem); convert a DER key with: openssl pkey -inform der -in key.der -out key.pem"#,
        ])
        let empty = files("empty.pem")
        try "".write(toFile: empty, atomically: true, encoding: .utf8)
        #expect(poolErrors(tls: "ca_file = \"\(empty)\"\nclient_cert = \"\(der)\"\nclient_key = \"\(der)\"") == [
            #"a.toml: pool[1].tls.ca_file: CA file "\#(empty)" is not PEM (it has no "-----BEGIN " line); expected one or more CA certificates in PEM form; convert a DER certificate with: openssl x509 -inform der -in cert.der -out cert.pem"#,
            #"a.toml: pool[1].tls.client_cert: client certificate file "\#(der)" is not PEM (it has no "-----BEGIN " line); expected the client certificate and its chain in PEM form; convert a DER certificate with: openssl x509 -inform der -in cert.der -out cert.pem"#,
            #"a.toml: pool[1].tls.client_key: client key file "\#(der)" is not PEM (it has no "-----BEGIN " line); expected a private key in PEM form; convert a DER key with: openssl pkey -inform der -in key.der -out key.pem"#,
        ])
        // The OCSP response is DER: only its existence and readability are checked.
        #expect(listenerErrors(tls: "cert = \"\(files("cert.pem"))\"\nkey = \"\(files("key.pem"))\"\nocsp = \"\(der)\"") == [])
    }

    // MARK: [[listener.tls.sni]]

    @Test func sniEntryMissingKey() throws {
        let files = try TLSFiles()
        defer { files.remove() }
        let tls = "cert = \"\(files("cert.pem"))\"\nkey = \"\(files("key.pem"))\""
        #expect(listenerErrors(tls: tls, sni: ["cert = \"\(files("other.pem"))\""]) == [
            #"a.toml: listener[1].tls.sni[0].key: missing required key; cert is set, so key must name its private key, e.g. key = "/etc/weir/tls/example.com.key""#,
        ])
        #expect(listenerErrors(tls: tls, sni: ["cert = \"\(files("other.pem"))\"\nkey = \"\(files("other.key"))\"",
                                               "key = \"\(files("other.key"))\""]) == [
            #"a.toml: listener[1].tls.sni[1].cert: missing required key; key is set, so cert must name its certificate (with its chain), e.g. cert = "/etc/weir/tls/example.com.pem""#,
        ])
    }

    @Test func sniCertificateListedTwice() throws {
        let files = try TLSFiles()
        defer { files.remove() }
        let tls = "cert = \"\(files("cert.pem"))\"\nkey = \"\(files("key.pem"))\""
        let other = "cert = \"\(files("other.pem"))\"\nkey = \"\(files("other.key"))\""
        #expect(listenerErrors(tls: tls, sni: [other, other]) == [
            #"a.toml: listener[1].tls.sni[1].cert: certificate file "\#(files("other.pem"))" is already used by listener[1].tls.sni[0].cert; list each certificate once (the names in it choose it)"#,
        ])
        #expect(listenerErrors(tls: tls, sni: [tls]) == [
            #"a.toml: listener[1].tls.sni[0].cert: certificate file "\#(files("cert.pem"))" is already used by listener[1].tls.cert; list each certificate once (the names in it choose it)"#,
        ])
    }

    @Test func sniOfTheWrongShape() throws {
        let files = try TLSFiles()
        defer { files.remove() }
        let tls = "cert = \"\(files("cert.pem"))\"\nkey = \"\(files("key.pem"))\""
        #expect(listenerErrors("[listener.tls]\n\(tls)\n[listener.tls.sni]\n\(tls)", tls: nil) == [
            "a.toml: listener[1].tls.sni: expected an array of tables ([[listener.tls.sni]]), found a table; write [[listener.tls.sni]], not [listener.tls.sni]",
        ])
        let other = "cert = \"\(files("other.pem"))\"\nkey = \"\(files("other.key"))\""
        #expect(listenerErrors(tls: tls, sni: ["\(other)\nprofile = \"modern\"\ncerts = 1"]) == [
            #"a.toml: listener[1].tls.sni[0].certs: unknown key (did you mean "cert"?)"#,
            "a.toml: listener[1].tls.sni[0].profile: unknown key; profile belongs in [listener.tls], not [[listener.tls.sni]]",
        ])
    }

    // MARK: profile, hsts, ticket_rotation, handshake_timeout

    @Test func badProfile() throws {
        let files = try TLSFiles()
        defer { files.remove() }
        let tls = "cert = \"\(files("cert.pem"))\"\nkey = \"\(files("key.pem"))\""
        #expect(listenerErrors(tls: "\(tls)\nprofile = \"modrn\"") == [
            #"a.toml: listener[1].tls.profile: unknown profile "modrn" (did you mean "modern"?); supported profiles: "intermediate", "modern""#,
        ])
        #expect(listenerErrors(tls: "\(tls)\nprofile = \"old\"") == [
            #"a.toml: listener[1].tls.profile: unknown profile "old"; supported profiles: "intermediate", "modern""#,
        ])
    }

    @Test func badHSTS() throws {
        let files = try TLSFiles()
        defer { files.remove() }
        let tls = "cert = \"\(files("cert.pem"))\"\nkey = \"\(files("key.pem"))\""
        let form = #"expected a Strict-Transport-Security value with a max-age, such as "max-age=63072000" or "max-age=63072000; includeSubDomains; preload""#
        for value in ["63072000", "includeSubDomains", "max-age=", "max-age=-1", "max-age=1y", "max-age=1; max-age=2",
                      "max-age=1;", "max-age=1\\nX-Evil: 1"] {
            let shown = value  // a line break in the value is shown escaped, as written (one error per line)
            #expect(listenerErrors(tls: "\(tls)\nhsts = \"\(value)\"") == [
                #"a.toml: listener[1].tls.hsts: invalid hsts "\#(shown)"; \#(form)"#,
            ])
        }
        #expect(listenerErrors(tls: "\(tls)\nhsts = \"\"") == [
            #"a.toml: listener[1].tls.hsts: must not be empty; leave hsts out to add no Strict-Transport-Security header, or write e.g. hsts = "max-age=63072000""#,
        ])
        #expect(listenerErrors(tls: "\(tls)\nhsts = 63072000") == [
            "a.toml: listener[1].tls.hsts: expected a string, found an integer (63072000)",
        ])
    }

    @Test func ticketRotationTooSmall() throws {
        let files = try TLSFiles()
        defer { files.remove() }
        let tls = "cert = \"\(files("cert.pem"))\"\nkey = \"\(files("key.pem"))\""
        #expect(listenerErrors(tls: "\(tls)\nticket_rotation = \"59s\"") == [
            #"a.toml: listener[1].tls.ticket_rotation: must be at least 1m, found "59s""#,
        ])
        #expect(listenerErrors(tls: "\(tls)\nticket_rotation = \"12 hours\"") == [
            #"a.toml: listener[1].tls.ticket_rotation: expected a duration such as "10s" or "250ms" (a positive whole number followed by ms, s, m or h), found "12 hours""#,
        ])
        #expect(listenerErrors(tls: "\(tls)\nhandshake_timeout = \"0s\"") == [
            #"a.toml: listener[1].tls.handshake_timeout: expected a duration such as "10s" or "250ms" (a positive whole number followed by ms, s, m or h), found "0s""#,
        ])
    }

    // MARK: https_redirect

    @Test func httpsRedirectOnATLSListener() throws {
        let files = try TLSFiles()
        defer { files.remove() }
        let tls = "cert = \"\(files("cert.pem"))\"\nkey = \"\(files("key.pem"))\""
        #expect(listenerErrors("https_redirect = 443", tls: tls) == [
            "a.toml: listener[1].https_redirect: cannot be set on a TLS listener (this one has [listener.tls]); https_redirect sends a plain listener's requests to HTTPS: set it on a plain listener, e.g. one on port 80",
        ])
    }

    @Test func httpsRedirectOutOfRange() {
        for port in [0, 65536, -443] {
            #expect(listenerErrors("https_redirect = \(port)", tls: nil) == [
                "a.toml: listener[1].https_redirect: must be between 1 and 65535, found \(port)",
            ])
        }
        #expect(listenerErrors(#"https_redirect = "443""#, tls: nil) == [
            #"a.toml: listener[1].https_redirect: expected an integer, found a string ("443")"#,
        ])
        #expect(listenerErrors("https_redirect = 8443", tls: nil) == [
            "a.toml: listener[1].https_redirect: must not be this listener's own port (8443), which serves plain HTTP; name the port of the TLS listener, e.g. https_redirect = 443",
        ])
    }

    // MARK: [pool.tls]

    @Test func clientCertWithoutClientKey() throws {
        let files = try TLSFiles()
        defer { files.remove() }
        #expect(poolErrors(tls: "client_cert = \"\(files("client.pem"))\"") == [
            #"a.toml: pool[1].tls.client_key: missing; client_cert is set, so client_key must name its private key (set both or neither), e.g. client_key = "/etc/weir/tls/client.key""#,
        ])
        #expect(poolErrors(tls: "client_key = \"\(files("client.key"))\"") == [
            #"a.toml: pool[1].tls.client_cert: missing; client_key is set, so client_cert must name its certificate (with its chain) (set both or neither), e.g. client_cert = "/etc/weir/tls/client.pem""#,
        ])
    }

    @Test func badPoolTLSValues() {
        #expect(poolErrors(tls: #"verify = "no""#) == [
            #"a.toml: pool[1].tls.verify: expected true or false, found a string ("no")"#,
        ])
        #expect(poolErrors(tls: "enabled = 1") == [
            "a.toml: pool[1].tls.enabled: expected true or false, found an integer (1)",
        ])
        let form = #"expected a host name such as "api.internal.example" (no scheme, port or wildcard), or an IP address such as "192.0.2.5""#
        for name in ["https://api.example", "api.example:443", "*.example.com", "a b", "999.1.1.1", "[::1]"] {
            #expect(poolErrors(tls: "server_name = \"\(name)\"") == [
                #"a.toml: pool[1].tls.server_name: invalid server_name "\#(name)"; \#(form)"#,
            ])
        }
        #expect(poolErrors(tls: #"server_name = """#) == [
            "a.toml: pool[1].tls.server_name: must not be empty; leave server_name out to use the host of the server's public_url, or else its address",
        ])
    }

    @Test func poolTLSOfTheWrongShape() {
        func poolErrors(_ keys: String) -> [String] {
            errorLines(appending: "[[pool]]\nname = \"secure\"\n\(keys)\n[[pool.server]]\nid = \"s\"\naddress = \"192.0.2.5:443\"\n")
        }
        #expect(poolErrors(#"tls = "yes""#) == [
            #"a.toml: pool[1].tls: expected a table ([pool.tls]) or a boolean (tls = true), found a string ("yes")"#,
        ])
        #expect(poolErrors("[[pool.tls]]\nverify = true") == [
            "a.toml: pool[1].tls: expected a table ([pool.tls]) or a boolean (tls = true), found an array; write [pool.tls], not [[pool.tls]]",
        ])
        #expect(errorLines([("a.toml", baseTOML), ("b.toml", "[pool.tls]\nverify = true\n")]) == [
            "b.toml: pool.tls: [pool.tls] must follow a [[pool]] in the same file",
        ])
    }

    // MARK: Tables of the wrong shape, unknown and misplaced keys

    @Test func listenerTLSOfTheWrongShape() throws {
        let files = try TLSFiles()
        defer { files.remove() }
        #expect(listenerErrors("tls = true", tls: nil) == [
            "a.toml: listener[1].tls: expected a table ([listener.tls]) with cert and key, found a boolean (true)",
        ])
        #expect(listenerErrors("[[listener.tls]]\ncert = \"\(files("cert.pem"))\"", tls: nil) == [
            "a.toml: listener[1].tls: expected a table ([listener.tls]) with cert and key, found an array; write [listener.tls], not [[listener.tls]]",
        ])
        #expect(errorLines([("a.toml", baseTOML), ("b.toml", "[listener.tls]\ncert = \"\(files("cert.pem"))\"\n")]) == [
            "b.toml: listener.tls: [listener.tls] must follow a [[listener]] in the same file",
        ])
        #expect(errorLines([("a.toml", baseTOML), ("b.toml", "[[listener.tls.sni]]\ncert = \"\(files("cert.pem"))\"\n")]) == [
            "b.toml: listener.tls.sni: [[listener.tls.sni]] must follow a [[listener]] and its [listener.tls] in the same file",
        ])
    }

    @Test func unknownAndMisplacedTLSKeys() throws {
        let files = try TLSFiles()
        defer { files.remove() }
        let tls = "cert = \"\(files("cert.pem"))\"\nkey = \"\(files("key.pem"))\""
        #expect(listenerErrors(tls: "\(tls)\nprofil = \"modern\"") == [
            #"a.toml: listener[1].tls.profil: unknown key (did you mean "profile"?)"#,
        ])
        #expect(listenerErrors(tls: "\(tls)\nhttps_redirect = 443") == [
            "a.toml: listener[1].tls.https_redirect: unknown key; https_redirect belongs in [[listener]], not [listener.tls]",
        ])
        #expect(listenerErrors(tls: "\(tls)\nciphers = \"HIGH\"") == [
            "a.toml: listener[1].tls.ciphers: unknown key; known keys in [listener.tls]: cert, key, sni, profile, ocsp, hsts, ticket_rotation, handshake_timeout",
        ])
        #expect(listenerErrors("cert = \"\(files("cert.pem"))\"", tls: nil) == [
            "a.toml: listener[1].cert: unknown key; cert belongs in [listener.tls], not [[listener]]",
        ])
        #expect(poolErrors(tls: "verfy = false") == [
            #"a.toml: pool[1].tls.verfy: unknown key (did you mean "verify"?)"#,
        ])
        #expect(poolErrors(tls: "retries = 1") == [
            "a.toml: pool[1].tls.retries: unknown key; retries belongs in [[pool]], not [pool.tls]",
        ])
        #expect(errorLines(appending: "[[pool]]\nname = \"p\"\nca_file = \"/x\"\n[[pool.server]]\nid = \"s\"\naddress = \"192.0.2.5:443\"\n") == [
            "a.toml: pool[1].ca_file: unknown key; ca_file belongs in [pool.tls], not [[pool]]",
        ])
    }

    /// An invalid TLS listener is not added, but its name still counts (a route naming it gets no extra error).
    @Test func anInvalidTLSListenerKeepsItsName() {
        #expect(errorLines(appending: """
            [[listener]]
            name = "https"
            address = "127.0.0.1:8443"
            [listener.tls]
            profile = "modern"

            [[route]]
            name = "secure"
            pool = "demo"
            listener = "https"

            """) == [
            #"a.toml: listener[1].tls.cert: missing required key, e.g. cert = "/etc/weir/tls/example.com.pem""#,
            #"a.toml: listener[1].tls.key: missing required key, e.g. key = "/etc/weir/tls/example.com.key""#,
        ])
    }
}
