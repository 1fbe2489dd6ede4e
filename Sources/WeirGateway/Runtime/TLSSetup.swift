import Foundation
import WeirConfig
import WeirIO

/// The TLS contexts a configuration asks for, built once at start (and reloaded on SIGHUP).
struct TLSSetup: @unchecked Sendable {
    /// Per listener: its server context, or nil for plain HTTP.
    let listeners: [TLSServerContext?]
    /// Per pool: the client context for its servers, or nil for plain HTTP.
    let pools: [TLSClientContext?]
    /// Per server (snapshot order): the name verified and sent as SNI.
    let serverNames: [String]

    /// Loads every certificate and key. Throws an `IOError` naming the file and OpenSSL's reason.
    init(_ configuration: WeirConfiguration) throws {
        listeners = try configuration.listeners.map { listener in
            guard let tls = listener.tls else { return nil }
            return try TLSServerContext(
                default: CertificateFiles(cert: tls.defaultCertificate.cert, key: tls.defaultCertificate.key),
                sni: tls.sniCertificates.map { CertificateFiles(cert: $0.cert, key: $0.key) },
                profile: tls.profile == .modern ? .modern : .intermediate, ocspFile: tls.ocspFile,
                http2: listener.http2)
        }
        pools = try configuration.pools.map { pool in
            guard let tls = pool.tls, tls.enabled else { return nil }
            let client = tls.clientCert.flatMap { cert in tls.clientKey.map { CertificateFiles(cert: cert, key: $0) } }
            return try TLSClientContext(caFile: tls.caFile, verify: tls.verify, clientCertificate: client)
        }
        serverNames = configuration.pools.flatMap { pool in
            pool.servers.map { server in
                if let name = pool.tls?.serverName { return name }
                if let url = server.publicURL, let host = URLComponents(string: url)?.host, !host.isEmpty { return host }
                return server.address.host
            }
        }
    }
}
