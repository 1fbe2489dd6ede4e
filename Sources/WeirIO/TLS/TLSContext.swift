import Glibc
import COpenSSL

/// OpenSSL's error queue of this thread as one line (and cleared).
func openSSLErrors() -> String {
    var text = [CChar](repeating: 0, count: 1024)
    weir_ssl_errors(&text, 1024)
    return text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}

/// A certificate and key for a TLS listener (PEM paths; the certificate file may hold the chain).
public struct CertificateFiles: Sendable, Equatable {
    public var cert: String
    public var key: String
    public init(cert: String, key: String) {
        self.cert = cert
        self.key = key
    }
}

/// The TLS side of a listener: one OpenSSL context per certificate, the one chosen by SNI (exact
/// and wildcard names read from each certificate), the first as the default. TLS 1.2 and 1.3 only
/// (1.3 only with `modern`), Mozilla's intermediate cipher list and groups (X25519, P-256, P-384),
/// ALPN http/1.1, session resumption by tickets whose keys rotate, optional OCSP stapling. Shared
/// by every worker and immutable: a reload of the gateway's configuration builds new ones, and
/// every connection made from one holds it (`Connection`), so its contexts and ticket keys are
/// freed when the last of them is gone.
public final class TLSServerContext: @unchecked Sendable {
    public enum Profile: Sendable { case intermediate, modern }

    private struct Loaded: @unchecked Sendable {
        var contexts: [OpaquePointer]          // SSL_CTX*, [0] is the default
        var names: [(name: String, index: Int)] // lowercased; "*.example.com" for wildcards
    }

    private let defaultFiles: CertificateFiles
    private let sniFiles: [CertificateFiles]
    private let profile: Profile
    private let ocspFile: String?
    /// Whether ALPN offers `h2` before `http/1.1`.
    private let http2: Bool
    private let tickets: OpaquePointer    // weir_ticket_ring*
    /// Set once in `init`, read by any thread afterwards.
    private var loaded = Loaded(contexts: [], names: [])

    /// Loads every certificate. Throws an `IOError` naming the file and OpenSSL's reason when one
    /// cannot be used (unreadable, not PEM, key does not match).
    /// `http2`: ALPN selects `h2` when the client offers it (else only `http/1.1` is ever selected).
    public init(default defaultFiles: CertificateFiles, sni: [CertificateFiles], profile: Profile, ocspFile: String?,
                http2: Bool = false) throws {
        self.http2 = http2
        self.defaultFiles = defaultFiles
        sniFiles = sni
        self.profile = profile
        self.ocspFile = ocspFile
        guard let ring = weir_ticket_ring_new() else { throw IOError("tls: cannot allocate session ticket keys") }
        tickets = OpaquePointer(ring)
        loaded = try load()
    }

    /// Per certificate file (the default first, then the SNI ones): its notAfter time in Unix
    /// seconds (nil when it cannot be read). Any thread.
    public var certificateExpiries: [(file: String, notAfter: Int64?)] {
        zip([defaultFiles] + sniFiles, loaded.contexts).map { files, ctx in
            let t = weir_ssl_ctx_cert_not_after(ctx)
            return (files.cert, t >= 0 ? Int64(t) : nil)
        }
    }

    deinit {
        for ctx in loaded.contexts { SSL_CTX_free(ctx) }
        weir_ticket_ring_free(UnsafeMutablePointer<weir_ticket_ring>(tickets))
    }

    /// Rotates the session ticket keys (tickets sealed with the previous key stay valid until the next rotation).
    public func rotateTicketKeys() {
        weir_ticket_ring_rotate(UnsafeMutablePointer<weir_ticket_ring>(tickets))
    }

    /// A new server-side SSL for an accepted socket (retained: the caller frees it), or nil when
    /// OpenSSL cannot allocate one.
    func newSession(fd: Int32) -> OpaquePointer? {
        guard let ctx = context(for: nil), let ssl = SSL_new(ctx) else { return nil }
        SSL_set_fd(ssl, fd)
        SSL_set_accept_state(ssl)
        return ssl
    }

    /// The context for an SNI name (exact, then wildcard match), or for nil the default one; nil
    /// when no certificate names `serverName`. Valid while this object lives (not retained).
    func context(for serverName: String?) -> OpaquePointer? {
        Self.choose(serverName?.lowercased(), in: loaded)
    }

    private static func choose(_ name: String?, in loaded: Loaded) -> OpaquePointer? {
        guard let name else { return loaded.contexts.first }
        for entry in loaded.names where entry.name == name { return loaded.contexts[entry.index] }
        if let dot = name.firstIndex(of: ".") {
            let wildcard = "*" + name[dot...]
            for entry in loaded.names where entry.name == wildcard { return loaded.contexts[entry.index] }
        }
        return nil
    }

    private func load() throws -> Loaded {
        var contexts: [OpaquePointer] = []
        var names: [(String, Int)] = []
        do {
            for (i, files) in ([defaultFiles] + sniFiles).enumerated() {
                let ctx = try makeContext(files, isDefault: i == 0)
                contexts.append(ctx)
                var text = [CChar](repeating: 0, count: 8192)
                _ = weir_ssl_ctx_cert_names(ctx, &text, 8192)
                let list = text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
                for name in list.split(separator: "\n") { names.append((name.lowercased(), i)) }
            }
        } catch {
            for ctx in contexts { SSL_CTX_free(ctx) }
            throw error
        }
        return Loaded(contexts: contexts, names: names)
    }

    /// Key exchange groups, most preferred first: Mozilla's list for both profiles (OpenSSL's
    /// default would add X448, P-521 and the FFDHE groups).
    static let groups = "X25519:P-256:P-384"

    private static let intermediateCiphers =
        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
        + "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"

    private func makeContext(_ files: CertificateFiles, isDefault: Bool) throws -> OpaquePointer {
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_server_method()) else { throw IOError("tls: SSL_CTX_new: \(openSSLErrors())") }
        func fail(_ what: String) -> IOError {
            let error = IOError("tls: \(what): \(openSSLErrors())")
            SSL_CTX_free(ctx)
            return error
        }
        _ = weir_ssl_ctx_set_min_proto(ctx, profile == .modern ? weir_tls1_3_version() : weir_tls1_2_version())
        weir_ssl_ctx_set_modes(ctx)
        if profile == .intermediate, SSL_CTX_set_cipher_list(ctx, Self.intermediateCiphers) != 1 { throw fail("cipher list") }
        guard weir_ssl_ctx_set_groups(ctx, Self.groups) == 1 else { throw fail("key exchange groups") }
        guard SSL_CTX_use_certificate_chain_file(ctx, files.cert) == 1 else { throw fail("certificate \(files.cert)") }
        guard SSL_CTX_use_PrivateKey_file(ctx, files.key, SSL_FILETYPE_PEM) == 1 else { throw fail("key \(files.key)") }
        guard SSL_CTX_check_private_key(ctx) == 1 else { throw fail("key \(files.key) does not match certificate \(files.cert)") }
        if http2 { weir_ssl_ctx_alpn_h2(ctx) } else { weir_ssl_ctx_alpn_http11(ctx) }
        weir_ssl_ctx_server_cipher_order(ctx)
        weir_ssl_ctx_server_eof_ends_input(ctx)
        weir_ssl_ctx_server_session_cache(ctx)
        guard weir_ssl_ctx_use_ticket_ring(ctx, UnsafeMutablePointer<weir_ticket_ring>(tickets)) == 1 else { throw fail("session tickets") }
        if isDefault {
            weir_ssl_ctx_set_sni_cb(ctx, { ssl, _, arg in
                guard let ssl, let arg, let raw = SSL_get_servername(ssl, Int32(weir_tlsext_nametype_host())) else {
                    return Int32(weir_tlsext_err_ok())
                }
                let me = Unmanaged<TLSServerContext>.fromOpaque(arg).takeUnretainedValue()
                if let chosen = me.context(for: String(cString: raw)) {
                    SSL_set_SSL_CTX(ssl, chosen)   // takes its own reference
                }
                return Int32(weir_tlsext_err_ok())
            }, Unmanaged.passUnretained(self).toOpaque())
            if let ocspFile {
                let der: [UInt8]
                do { der = try readFile(ocspFile, failing: "tls: OCSP response \(ocspFile)") } catch { SSL_CTX_free(ctx); throw error }
                guard der.withUnsafeBufferPointer({ weir_ssl_ctx_staple(ctx, $0.baseAddress, $0.count) }) == 1 else {
                    throw fail("OCSP response \(ocspFile)")
                }
            }
        }
        return ctx
    }
}

/// The TLS side of a pool's server connections: verification against a CA file (or the system
/// store), the server's name checked and sent as SNI, an optional client certificate.
public final class TLSClientContext: @unchecked Sendable {
    private let ctx: OpaquePointer
    private let verify: Bool

    /// Throws an `IOError` naming the file and OpenSSL's reason when a file cannot be used.
    public init(caFile: String?, verify: Bool, clientCertificate: CertificateFiles?) throws {
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw IOError("tls: SSL_CTX_new: \(openSSLErrors())") }
        self.ctx = ctx
        self.verify = verify
        _ = weir_ssl_ctx_set_min_proto(ctx, weir_tls1_2_version())
        weir_ssl_ctx_set_modes(ctx)
        if verify {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
            let ok = caFile.map { SSL_CTX_load_verify_locations(ctx, $0, nil) } ?? SSL_CTX_set_default_verify_paths(ctx)
            guard ok == 1 else { throw IOError("tls: CA file \(caFile ?? "(system default)"): \(openSSLErrors())") }
        }
        if let client = clientCertificate {
            guard SSL_CTX_use_certificate_chain_file(ctx, client.cert) == 1 else { throw IOError("tls: client certificate \(client.cert): \(openSSLErrors())") }
            guard SSL_CTX_use_PrivateKey_file(ctx, client.key, SSL_FILETYPE_PEM) == 1,
                  SSL_CTX_check_private_key(ctx) == 1 else { throw IOError("tls: client key \(client.key): \(openSSLErrors())") }
        }
    }

    deinit { SSL_CTX_free(ctx) }

    /// A new client-side SSL on `fd` expecting `serverName` (a DNS name: sent as SNI and verified;
    /// an IP address: verified against the certificate's IP entries).
    func newSession(fd: Int32, serverName: String) -> OpaquePointer? {
        guard let ssl = SSL_new(ctx) else { return nil }
        SSL_set_fd(ssl, fd)
        SSL_set_connect_state(ssl)
        let isIP = serverName.contains(":") || serverName.allSatisfy { $0.isNumber || $0 == "." }
        if !isIP { _ = weir_ssl_set_sni(ssl, serverName) }
        if verify { _ = weir_ssl_expect_host(ssl, serverName, isIP ? 1 : 0) }
        _ = weir_ssl_set_alpn_http11(ssl)
        return ssl
    }
}

/// The whole file. Throws an `IOError` named `operation` with the errno value that stopped the
/// open or a read (EINTR is retried, so an interrupted read does not pass for the end of the file).
private func readFile(_ path: String, failing operation: String) throws -> [UInt8] {
    var fd: Int32 = -1
    switch SystemCall.run({ () -> Int32 in fd = open(path, O_RDONLY | O_CLOEXEC); return fd }) {
    case .done: break
    case .wouldBlock: throw IOError(operation, code: EAGAIN)
    case .failed(let code): throw IOError(operation, code: code)
    }
    defer { close(fd) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        switch SystemCall.run({ read(fd, &chunk, chunk.count) }) {
        case .done(0): return out
        case .done(let n): out += chunk[0..<n]
        case .wouldBlock: throw IOError(operation, code: EAGAIN)
        case .failed(let code): throw IOError(operation, code: code)
        }
    }
}
