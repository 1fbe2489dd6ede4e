import Foundation
import Testing
@testable import WeirConfig

/// Fake PEM files in a fresh temporary directory (the loader only checks that a PEM file has a "-----BEGIN " line;
/// the gateway validates the real contents when it starts). Call `remove()` when done.
struct TLSFiles {
    static let certificatePEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    static let keyPEM = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"
    /// The start of a DER certificate: binary, not PEM.
    static let der = Data([0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00, 0xff])

    let directory: String

    /// Creates `cert.pem`, `key.pem`, `other.pem`, `other.key`, `ca.pem`, `client.pem`, `client.key` (PEM),
    /// `cert.der` (DER) and `response.ocsp` (DER).
    init() throws {
        directory = try makeTemporaryDirectory()
        for name in ["cert.pem", "other.pem", "ca.pem", "client.pem"] {
            try Self.certificatePEM.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
        }
        for name in ["key.pem", "other.key", "client.key"] {
            try Self.keyPEM.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
        }
        for name in ["cert.der", "response.ocsp"] {
            try Self.der.write(to: URL(fileURLWithPath: directory + "/" + name))
        }
    }

    /// The absolute path of `name` in the directory.
    func callAsFunction(_ name: String) -> String { directory + "/" + name }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

/// `[listener.tls]`, `[[listener.tls.sni]]`, `https_redirect` and `[pool.tls]`.
@Suite struct TLSTests {
    /// The base configuration followed by `extra`, parsed; it must be valid.
    func config(appending extra: String) throws -> WeirConfiguration {
        try parse([("a.toml", baseTOML + extra)])
    }

    @Test func defaults() throws {
        let config = try parse([("a.toml", baseTOML)])
        #expect(config.listeners[0].tls == nil)
        #expect(config.listeners[0].httpsRedirectPort == nil)
        #expect(config.pools[0].tls == nil)
        // The initializers use the same defaults.
        let listener = Listener(name: "l", address: SocketAddress(host: "127.0.0.1", port: 1))
        #expect(listener.tls == nil && listener.httpsRedirectPort == nil)
        #expect(Pool(name: "p", servers: []).tls == nil)
        let tls = ListenerTLS(defaultCertificate: .init(cert: "c.pem", key: "k.pem"))
        #expect(tls.sniCertificates == [])
        #expect(tls.profile == .intermediate)
        #expect(tls.ocspFile == nil)
        #expect(tls.hsts == nil)
        #expect(tls.ticketRotation == .seconds(12 * 3600))
        #expect(tls.handshakeTimeout == .seconds(10))
        #expect(ListenerTLS.minimumTicketRotation == .seconds(60))
        #expect(ListenerTLS.Profile.allCases.map(\.rawValue) == ["intermediate", "modern"])
        #expect(PoolTLS() == PoolTLS(enabled: true, caFile: nil, verify: true, serverName: nil, clientCert: nil,
                                     clientKey: nil))
    }

    @Test func listenerTLSWithOnlyCertAndKeyGetsEveryDefault() throws {
        let files = try TLSFiles()
        defer { files.remove() }
        let config = try config(appending: """
            [[listener]]
            name = "https"
            address = "127.0.0.1:8443"

            [listener.tls]
            cert = "\(files("cert.pem"))"
            key = "\(files("key.pem"))"

            """)
        let listener = try #require(config.listeners.last)
        #expect(listener == Listener(name: "https", address: SocketAddress(host: "127.0.0.1", port: 8443),
                                     tls: ListenerTLS(defaultCertificate: .init(cert: files("cert.pem"),
                                                                                key: files("key.pem")))))
    }

    @Test func everyListenerTLSKeyIsRead() throws {
        let files = try TLSFiles()
        defer { files.remove() }
        let config = try config(appending: """
            [[listener]]
            name = "https"
            address = "[::]:8443"
            max_connections = 500

            [listener.tls]
            cert = "\(files("cert.pem"))"
            key = "\(files("key.pem"))"
            profile = "modern"
            ocsp = "\(files("response.ocsp"))"
            hsts = "max-age=63072000; includeSubDomains; preload"
            ticket_rotation = "1m"
            handshake_timeout = "2500ms"

            [[listener.tls.sni]]
            cert = "\(files("other.pem"))"
            key = "\(files("other.key"))"

            [[listener.tls.sni]]
            cert = "\(files("client.pem"))"
            key = "\(files("client.pem"))"

            [[listener]]
            name = "redirect"
            address = "127.0.0.1:8081"
            https_redirect = 8443

            """)
        #expect(config.listeners.map(\.name) == ["public", "https", "redirect"])
        let tls = ListenerTLS(
            defaultCertificate: .init(cert: files("cert.pem"), key: files("key.pem")),
            sniCertificates: [.init(cert: files("other.pem"), key: files("other.key")),
                              .init(cert: files("client.pem"), key: files("client.pem"))],
            profile: .modern, ocspFile: files("response.ocsp"), hsts: "max-age=63072000; includeSubDomains; preload",
            ticketRotation: .seconds(60), handshakeTimeout: .milliseconds(2500))
        #expect(config.listeners[1] == Listener(name: "https", address: SocketAddress(host: "::", port: 8443),
                                                maxConnections: 500, tls: tls))
        #expect(config.listeners[2] == Listener(name: "redirect", address: SocketAddress(host: "127.0.0.1", port: 8081),
                                                httpsRedirectPort: 8443))
        #expect(config.listeners[0].tls == nil && config.listeners[0].httpsRedirectPort == nil)
    }

    @Test func acceptedHSTSValues() throws {
        let files = try TLSFiles()
        defer { files.remove() }
        for value in ["max-age=0", "max-age=31536000", #"max-age=\"300\""#, "includeSubDomains; MAX-AGE=300",
                      "max-age=300 ; preload"] {
            let config = try config(appending: """
                [[listener]]
                name = "https"
                address = "127.0.0.1:8443"
                [listener.tls]
                cert = "\(files("cert.pem"))"
                key = "\(files("key.pem"))"
                hsts = "\(value)"

                """)
            #expect(config.listeners.last?.tls?.hsts == value.replacingOccurrences(of: "\\\"", with: "\""))
        }
    }

    /// Relative paths are relative to the working directory and kept as written.
    @Test func relativePathsAreRelativeToTheWorkingDirectory() throws {
        let files = try TLSFiles()
        defer { files.remove() }
        let depth = FileManager.default.currentDirectoryPath.split(separator: "/").count
        let relative = String(repeating: "../", count: depth) + files.directory.dropFirst()
        let config = try config(appending: """
            [[listener]]
            name = "https"
            address = "127.0.0.1:8443"
            [listener.tls]
            cert = "\(relative)/cert.pem"
            key = "\(relative)/key.pem"

            """)
        #expect(config.listeners.last?.tls?.defaultCertificate == .init(cert: relative + "/cert.pem",
                                                                          key: relative + "/key.pem"))
    }

    @Test func poolTLSShortForm() throws {
        func pool(_ keys: String) throws -> Pool {
            let config = try config(appending: """
                [[pool]]
                name = "secure"
                \(keys)
                [[pool.server]]
                id = "secure-1"
                address = "192.0.2.5:443"

                """)
            return try #require(config.pools.last)
        }
        #expect(try pool("tls = true").tls == PoolTLS())
        #expect(try pool("tls = false").tls == nil)
        #expect(try pool("").tls == nil)
    }

    @Test func everyPoolTLSKeyIsRead() throws {
        let files = try TLSFiles()
        defer { files.remove() }
        func tls(_ keys: String) throws -> PoolTLS? {
            let config = try config(appending: """
                [[pool]]
                name = "secure"

                [pool.tls]
                \(keys)

                [[pool.server]]
                id = "secure-1"
                address = "192.0.2.5:443"
                public_url = "https://api.internal.example"

                """)
            return try #require(config.pools.last).tls
        }
        #expect(try tls("") == PoolTLS())
        #expect(try tls("""
            enabled = true
            ca_file = "\(files("ca.pem"))"
            verify = false
            server_name = "API.Internal.Example"
            client_cert = "\(files("client.pem"))"
            client_key = "\(files("client.key"))"
            """) == PoolTLS(enabled: true, caFile: files("ca.pem"), verify: false, serverName: "api.internal.example",
                            clientCert: files("client.pem"), clientKey: files("client.key")))
        // enabled = false keeps the (checked) settings; the gateway then connects in plain TCP.
        #expect(try tls("enabled = false\nca_file = \"\(files("ca.pem"))\"") == PoolTLS(enabled: false,
                                                                                     caFile: files("ca.pem")))
        // An IP address as server_name: IPv6 in canonical form.
        #expect(try tls(#"server_name = "192.0.2.5""#)?.serverName == "192.0.2.5")
        #expect(try tls(#"server_name = "FD00:0:0::5""#)?.serverName == "fd00::5")
    }

    /// The commented-out TLS examples in the shipped 10-listeners.toml and 20-pools.toml are valid once uncommented
    /// (with their /etc/weir/tls/ files replaced by fake ones).
    @Test func shippedTLSExamplesAreValid() throws {
        let confD = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("conf.d").path
        let files = try TLSFiles()
        defer { files.remove() }
        let tlsDirectory = files("tls")
        try FileManager.default.createDirectory(atPath: tlsDirectory, withIntermediateDirectories: true)
        for name in ["example.com.pem", "example.org.pem", "backend-ca.pem", "client.pem"] {
            try TLSFiles.certificatePEM.write(toFile: tlsDirectory + "/" + name, atomically: true, encoding: .utf8)
        }
        for name in ["example.com.key", "example.org.key", "client.key"] {
            try TLSFiles.keyPEM.write(toFile: tlsDirectory + "/" + name, atomically: true, encoding: .utf8)
        }
        try TLSFiles.der.write(to: URL(fileURLWithPath: tlsDirectory + "/example.com.ocsp"))
        let configDirectory = files("conf.d")
        try FileManager.default.createDirectory(atPath: configDirectory, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: confD) where name.hasSuffix(".toml") {
            var text = try String(contentsOfFile: confD + "/" + name, encoding: .utf8)
            if name == "10-listeners.toml" || name == "20-pools.toml" {
                // Uncomment every example line: "#   [table]", "#   [[table]]" and "#   key = value".
                text = text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
                    let isExample = line.wholeMatch(of: /#   (\[\[?[a-z.]+\]\]?|[a-z_]+ = .+)/) != nil
                    return isExample ? String(line.dropFirst(4)) : String(line)
                }.joined(separator: "\n")
                text = text.replacingOccurrences(of: "\"/etc/weir/tls/", with: "\"\(tlsDirectory)/")
            }
            try text.write(toFile: configDirectory + "/" + name, atomically: true, encoding: .utf8)
        }
        let config = try ConfigLoader.load(directory: configDirectory)
        #expect(config.listeners.map(\.name) == ["behind-lb", "https", "http-to-https", "h2c-local", "public"])
        // "behind-lb" is the PROXY protocol example (issue 13).
        #expect(config.listeners[0] == Listener(
            name: "behind-lb", address: SocketAddress(host: "0.0.0.0", port: 8081), proxyProtocol: true,
            proxyProtocolFrom: [NetworkPrefix(bytes: [198, 51, 100, 0], length: 24), NetworkPrefix(bytes: [127, 0, 0, 1], length: 32)]))
        #expect(config.listeners[1] == Listener(
            name: "https", address: SocketAddress(host: "0.0.0.0", port: 443),
            tls: ListenerTLS(defaultCertificate: .init(cert: tlsDirectory + "/example.com.pem",
                                                       key: tlsDirectory + "/example.com.key"),
                             sniCertificates: [.init(cert: tlsDirectory + "/example.org.pem",
                                                     key: tlsDirectory + "/example.org.key")],
                             profile: .intermediate, ocspFile: tlsDirectory + "/example.com.ocsp",
                             hsts: "max-age=63072000", ticketRotation: .seconds(12 * 3600),
                             handshakeTimeout: .seconds(10))))
        #expect(config.listeners[2] == Listener(name: "http-to-https", address: SocketAddress(host: "0.0.0.0", port: 80),
                                                httpsRedirectPort: 443))
        #expect(config.listeners[3].tls == nil && config.listeners[3].httpsRedirectPort == nil)
        // "peers" is the load_source = "beacons" example (issue 10); "banking" and "securities" the lending one.
        #expect(config.pools.map(\.name) == ["secure", "banking", "securities", "demo", "peers"])
        #expect(config.pools[1].lendLevel == 0.7 && config.pools[1].returnLevel == 0.4)
        #expect(config.pools[2].servers[0].canServe == ["/banking/*", "/securities/*"])
        #expect(config.pools[0].tls == PoolTLS(enabled: true, caFile: tlsDirectory + "/backend-ca.pem", verify: true,
                                               serverName: "api.internal.example",
                                               clientCert: tlsDirectory + "/client.pem",
                                               clientKey: tlsDirectory + "/client.key"))
        #expect(config.pools[1].tls == nil)
    }
}
