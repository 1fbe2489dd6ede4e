import Testing
import Foundation
import Glibc
import Synchronization
import COpenSSL
@testable import WeirIO

/// Throw-away self-signed P-256 certificates (valid until 2126) for TLS context tests: "weir.test" with
/// "*.weir.test", and "other.test". Test data only; no test verifies a chain.
enum TestCertificates {
    static let weirCert = """
-----BEGIN CERTIFICATE-----
MIIBoTCCAUigAwIBAgIUWIy/IsYDti/FU0GXidqsfhPMifwwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJd2Vpci50ZXN0MCAXDTI2MTIwMTA4MzgyMFoYDzIxMjYxMTA3
MDgzODIwWjAUMRIwEAYDVQQDDAl3ZWlyLnRlc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAARqMg6eVODQvrTagZoMfwecVJa9pUyChb6hvp01jUuk+IyGOZKxFRUz
8OwCZah3EZr6wDhNvtekIqd0uOVVPrt0o3YwdDAdBgNVHQ4EFgQU9isQUjzXchhQ
qS04XXH3uz3V6a8wHwYDVR0jBBgwFoAU9isQUjzXchhQqS04XXH3uz3V6a8wDwYD
VR0TAQH/BAUwAwEB/zAhBgNVHREEGjAYggl3ZWlyLnRlc3SCCyoud2Vpci50ZXN0
MAoGCCqGSM49BAMCA0cAMEQCIA+F5zyf/oj40A8XoYziW6B+GPa48F7pJjmYDv9M
TrBUAiAJGqiRTY7hFoljoLQik4xELfG7jAKD1YEZqK2eT3HkNg==
-----END CERTIFICATE-----
"""
    static let weirKey = """
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQghYPFMMOHabKzBZXv
EplRCrvrp5+BTTDBeuvkhB6BcMihRANCAARqMg6eVODQvrTagZoMfwecVJa9pUyC
hb6hvp01jUuk+IyGOZKxFRUz8OwCZah3EZr6wDhNvtekIqd0uOVVPrt0
-----END PRIVATE KEY-----
"""
    static let otherCert = """
-----BEGIN CERTIFICATE-----
MIIBmDCCAT6gAwIBAgIUX/zhpTLLNCxUMdgN5NmT37zWRMEwCgYIKoZIzj0EAwIw
FTETMBEGA1UEAwwKb3RoZXIudGVzdDAgFw0yNjEyMDEwODM4MjBaGA8yMTI2MTEw
NzA4MzgyMFowFTETMBEGA1UEAwwKb3RoZXIudGVzdDBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABHUFD5Kqxvq7fxifLk8TMHkpfMD/kPT/3Uf2MejvkbFspTgW1u1J
xSYe3iAKRsvXAzKfPK5AE28vTUgTPUkXhLmjajBoMB0GA1UdDgQWBBSPRPwnlM9B
DOjT6k8w6H/iK1HsajAfBgNVHSMEGDAWgBSPRPwnlM9BDOjT6k8w6H/iK1HsajAP
BgNVHRMBAf8EBTADAQH/MBUGA1UdEQQOMAyCCm90aGVyLnRlc3QwCgYIKoZIzj0E
AwIDSAAwRQIhAJunzaG74CDdCWsmssY5eNnXhyOgGZ45tU5wFHIxVbaQAiBow8b7
TejoRcgOak+BUpz6pFtnQ7vLXZCrwK9Sv2qQdg==
-----END CERTIFICATE-----
"""
    static let otherKey = """
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQghEruZY5GrdRiX6+c
6OKvuAVZfjteDMwounQcHrDiZs6hRANCAAR1BQ+Sqsb6u38Yny5PEzB5KXzA/5D0
/91H9jHo75GxbKU4FtbtScUmHt4gCkbL1wMynzyuQBNvL01IEz1JF4S5
-----END PRIVATE KEY-----
"""

    /// Writes both pairs into a fresh temporary directory.
    static func write() throws -> (weir: CertificateFiles, other: CertificateFiles) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("weir-io-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        func file(_ name: String, _ text: String) throws -> String {
            let url = dir.appendingPathComponent(name)
            try (text + "\n").write(to: url, atomically: true, encoding: .utf8)
            return url.path
        }
        return (CertificateFiles(cert: try file("weir.pem", weirCert), key: try file("weir.key", weirKey)),
                CertificateFiles(cert: try file("other.pem", otherCert), key: try file("other.key", otherKey)))
    }
}

@Suite struct TLSContextTests {
    /// A reload of the gateway drops a listener's context object while its connections may still
    /// need it (SNI and ticket callbacks): each connection holds it, and the last one frees it
    /// (with its OpenSSL contexts and ticket keys: nothing leaks per reload).
    @Test func connectionsKeepTheirContextAliveAndTheLastOneFreesIt() throws {
        let files = try TestCertificates.write()
        let loop = try EventLoop()
        weak var released: TLSServerContext?
        var connection: Connection?
        do {
            let tls = try TLSServerContext(default: files.weir, sni: [files.other], profile: .intermediate, ocspFile: nil)
            released = tls
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            connection = Connection.accepted(loop: loop, fd: fd, peer: PeerAddress(host: "127.0.0.1", port: 1), tls: tls)
        }
        #expect(connection != nil)
        #expect(released != nil)      // the gateway let go; the connection has not
        connection?.close()
        connection = nil
        #expect(released == nil)
    }

    @Test func contextsAreChosenByExactThenWildcardNameAndTheDefaultForNone() throws {
        let files = try TestCertificates.write()
        let tls = try TLSServerContext(default: files.weir, sni: [files.other], profile: .intermediate, ocspFile: nil)
        func chosen(_ name: String?) -> OpaquePointer? { tls.context(for: name) }
        let defaultContext = try #require(chosen(nil))
        #expect(chosen("weir.test") == defaultContext)
        #expect(chosen("A.Weir.Test") == defaultContext)   // wildcard, case-insensitive
        let other = try #require(chosen("other.test"))
        #expect(other != defaultContext)
        #expect(chosen("b.a.weir.test") == nil)   // a wildcard covers one label
        #expect(chosen("unknown.test") == nil)
    }
}
