// The validated, immutable configuration snapshot produced by `ConfigLoader`.
//
// Every type here is a plain value (`Sendable`, `Equatable`). The loader fills in every default, so
// the gateway never has to know which keys an operator left out. The public initializers use the
// same defaults, which lets tests build configurations without TOML.

/// One complete, validated configuration: the merge of every `conf.d/*.toml` file.
public struct WeirConfiguration: Sendable, Equatable {
    /// Process-wide settings (`[global]`). Default: `GlobalSettings()`.
    public var global: GlobalSettings
    /// Timeouts (`[timeouts]`). Default: `Timeouts()`.
    public var timeouts: Timeouts
    /// Size limits (`[limits]`). Default: `Limits()`.
    public var limits: Limits
    /// The admin listener (`[admin]`). Default: `AdminSettings()`, i.e. 127.0.0.1:9090. The loader guarantees
    /// its address is not also a `[[listener]]` address.
    public var admin: AdminSettings
    /// Every `[[listener]]`, in file order then declaration order. The loader guarantees at least one,
    /// unique names and unique addresses (port 0, "any free port", is exempt from the address check).
    public var listeners: [Listener]
    /// Every `[[pool]]`, in file order then declaration order. Unique names; each has at least one server;
    /// server ids are unique across all pools.
    public var pools: [Pool]
    /// Every `[[route]]`, in file order then declaration order. The loader guarantees at least one,
    /// unique names, and that every `pool` / `listener` a route names exists.
    public var routes: [Route]
    /// The files the configuration was read from, in the order they were merged
    /// (for `ConfigLoader.load(directory:)`: the directory joined with the file name).
    public var sourceFiles: [String]
    /// Settings shared by every `[[route.sticky]]` rule (`[sticky]`). Default: `StickySettings()`, i.e. no
    /// secret configured (one is generated at first start and kept in `global.stateDirectory`).
    public var sticky: StickySettings
    /// The discovery endpoints (`[discovery]`). Default: `DiscoverySettings()`, i.e. both endpoints on, under
    /// `/.well-known/weir/`.
    public var discovery: DiscoverySettings
    /// `[peer]`: this host's peer module (run by `weir peer`). Default nil (not a peer). When set, the loader has
    /// appended the pool `group` (`PeerSettings.poolName`) to `pools` and, if the files had no `[[route]]`, the
    /// route `peer` (`/` on every listener) to `routes`; `group` is then set too.
    public var peer: PeerSettings?
    /// `[group]`: the beacon group this process belongs to (a peer, or a gateway listening to beacons).
    /// Default nil.
    public var group: GroupSettings?
    /// `[http2]`: the HTTP/2 attack guard's thresholds. Default: `HTTP2GuardSettings()`.
    public var http2Guard: HTTP2GuardSettings

    public init(global: GlobalSettings = GlobalSettings(), timeouts: Timeouts = Timeouts(), limits: Limits = Limits(),
                listeners: [Listener] = [], pools: [Pool] = [], routes: [Route] = [], sourceFiles: [String] = [],
                admin: AdminSettings = AdminSettings(), sticky: StickySettings = StickySettings(),
                discovery: DiscoverySettings = DiscoverySettings(), peer: PeerSettings? = nil,
                group: GroupSettings? = nil, http2Guard: HTTP2GuardSettings = HTTP2GuardSettings()) {
        self.global = global
        self.timeouts = timeouts
        self.limits = limits
        self.admin = admin
        self.listeners = listeners
        self.pools = pools
        self.routes = routes
        self.sourceFiles = sourceFiles
        self.sticky = sticky
        self.discovery = discovery
        self.peer = peer
        self.group = group
        self.http2Guard = http2Guard
    }
}

/// `[global]`: process-wide settings.
public struct GlobalSettings: Sendable, Equatable {
    /// `workers`: number of worker threads (event loops). 0 means one per CPU core. Range 0...1024. Default 0.
    public var workers: Int
    /// `max_connections`: maximum simultaneous client connections for the whole process, and the default
    /// for each listener's `max_connections`. Range 1...10_000_000. Default 20000.
    public var maxConnections: Int
    /// `drain_timeout`: on shutdown, how long in-flight requests may finish before connections are closed.
    /// Default 30 seconds.
    public var drainTimeout: Duration
    /// `access_log`: where access-log lines go: `"stdout"`, `"off"`, or an absolute file path. Default `.stdout`.
    public var accessLog: AccessLog
    /// `state_dir`: directory for the state Weir keeps across restarts (today: the sticky-pin secret generated
    /// at first start when `[sticky]` sets none). Non-empty; a relative path is relative to the working
    /// directory of the process (not to the configuration directory). The loader does not require it to exist
    /// (the gateway creates it when it first needs it). Default `defaultStateDirectory`: the unit's
    /// `StateDirectory` under systemd, else `"/var/lib/weir"`.
    public var stateDirectory: String
    /// `access_log_format`: `"weir"` (the default: the line Weir always wrote), `"combined"` (nginx/Apache)
    /// or `"json"` (one object per line). See LogSettings.swift and README "Logs".
    public var accessLogFormat: AccessLogFormat
    /// `log_level`: operational messages below this level are not written. Default `.info`.
    public var logLevel: LogLevel
    /// `log_format`: `"auto"` (the default: `journal` under systemd's journal), `"plain"` or `"journal"`.
    public var logFormat: LogFormat

    public init(workers: Int = 0, maxConnections: Int = 20000, drainTimeout: Duration = .seconds(30),
                accessLog: AccessLog = .stdout, stateDirectory: String = GlobalSettings.defaultStateDirectory,
                accessLogFormat: AccessLogFormat = .weir, logLevel: LogLevel = .info, logFormat: LogFormat = .auto) {
        self.workers = workers
        self.maxConnections = maxConnections
        self.drainTimeout = drainTimeout
        self.accessLog = accessLog
        self.stateDirectory = stateDirectory
        self.accessLogFormat = accessLogFormat
        self.logLevel = logLevel
        self.logFormat = logFormat
    }

    /// `$STATE_DIRECTORY` when systemd sets it (`StateDirectory=` of the unit; the first of a
    /// colon-separated list), else `"/var/lib/weir"`: never relative to the working directory.
    /// See StateDirectoryDefault.swift.
    public static var defaultStateDirectory: String { stateDirectoryFromEnvironment() }
}

/// Destination of the access log. TOML: `"stdout"`, `"off"`, or an absolute path such as `"/var/log/weir/access.log"`.
public enum AccessLog: Sendable, Equatable, Hashable {
    /// No access log.
    case off
    /// One line per request on standard output (the default).
    case stdout
    /// Appended to this absolute file path.
    case file(String)
}

/// `[timeouts]`. Every value is a positive `Duration`; TOML form is a string such as `"250ms"`, `"10s"`, `"5m"`, `"1h"`.
public struct Timeouts: Sendable, Equatable {
    /// `client_header`: time allowed for a client to send a complete request head. Default 10 seconds.
    public var clientHeader: Duration
    /// `client_idle`: how long a keep-alive client connection may sit idle between requests. Default 60 seconds.
    public var clientIdle: Duration
    /// `client_body`: longest silence of a client in the middle of its request body (the upload's own
    /// timeout; the server is not blamed for it). Default 60 seconds.
    public var clientBody: Duration
    /// `upstream_connect`: time allowed to establish a TCP connection to a backend server. Default 3 seconds.
    public var upstreamConnect: Duration
    /// `upstream_response`: time allowed for a backend to send its final response head after the whole
    /// request (body included) was sent; interim (1xx) responses do not extend it. Default 60 seconds.
    public var upstreamResponse: Duration
    /// `upstream_idle`: how long an idle pooled backend connection is kept before it is closed. Default 30 seconds.
    public var upstreamIdle: Duration
    /// `tunnel_idle`: how long an upgraded / tunnelled connection (e.g. WebSocket) may carry no bytes in either
    /// direction before it is closed. Default 300 seconds.
    public var tunnelIdle: Duration

    public init(clientHeader: Duration = .seconds(10), clientIdle: Duration = .seconds(60),
                clientBody: Duration = .seconds(60),
                upstreamConnect: Duration = .seconds(3), upstreamResponse: Duration = .seconds(60),
                upstreamIdle: Duration = .seconds(30), tunnelIdle: Duration = .seconds(300)) {
        self.clientHeader = clientHeader
        self.clientIdle = clientIdle
        self.clientBody = clientBody
        self.upstreamConnect = upstreamConnect
        self.upstreamResponse = upstreamResponse
        self.upstreamIdle = upstreamIdle
        self.tunnelIdle = tunnelIdle
    }
}

/// `[limits]`: sizes and counts.
public struct Limits: Sendable, Equatable {
    /// `max_request_line`: longest accepted request line in bytes (method, target, version, CRLF).
    /// Range 256...1_048_576. Default 8192.
    public var maxRequestLine: Int
    /// `max_header_bytes`: largest accepted request or response head in bytes. Range 1024...16_777_216. Default 65536.
    public var maxHeaderBytes: Int
    /// `max_header_count`: most header fields accepted in one head. Range 8...10_000. Default 100.
    public var maxHeaderCount: Int
    /// `upstream_idle_per_server`: most idle keep-alive connections kept per backend server, per worker.
    /// Range 1...4096. Default 1024.
    public var upstreamIdlePerServer: Int
    /// `buffer_bytes`: high watermark of buffered bytes per direction per connection; reading from the
    /// other side pauses above it. Range 4096...67_108_864. Default 262144.
    public var bufferBytes: Int
    /// `redirect_body_bytes`: in redirect mode a request body is read and discarded up to this many bytes
    /// (so the redirect can be sent on a connection that stays usable); a longer body is not read further and
    /// the connection is closed after the response. 0 means the connection is closed after any request that
    /// has a body. Range 0...1_073_741_824 (1 GiB). Default 1048576 (1 MiB).
    public var redirectBodyBytes: Int

    public init(maxRequestLine: Int = 8192, maxHeaderBytes: Int = 65536, maxHeaderCount: Int = 100,
                upstreamIdlePerServer: Int = 1024, bufferBytes: Int = 262_144, redirectBodyBytes: Int = 1_048_576) {
        self.maxRequestLine = maxRequestLine
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.upstreamIdlePerServer = upstreamIdlePerServer
        self.bufferBytes = bufferBytes
        self.redirectBodyBytes = redirectBodyBytes
    }
}

/// `[admin]`: the admin listener, which serves `GET /status` (what `weir status` prints).
public struct AdminSettings: Sendable, Equatable {
    /// `address`: numeric IP and port of the admin listener, or nil to turn it off (TOML `"off"`).
    /// Default 127.0.0.1:9090. A non-loopback address is allowed (it must be written explicitly).
    /// Port 0 (any free port) is accepted, which tests use.
    public var address: SocketAddress?
    /// The token that state-changing requests must carry (`Authorization: Bearer ...`): `token` as
    /// written, or the contents of `token_file` (read at every load, so a reload picks up a new one).
    /// nil: the gateway generates one into `<state_dir>/admin.token` (see README, "Admin API security").
    public var token: String?
    /// `token_file`: the file `token` was read from (for messages), or nil.
    public var tokenFile: String?
    /// `address = "unix:/path"`: the admin listener is this Unix-domain socket instead (`address` is
    /// then nil); its file permissions are the protection (no token is asked there).
    public var unixSocket: String?
    /// `socket_mode`: the permissions of `unixSocket`. Default 0600.
    public var socketMode: Int

    public init(address: SocketAddress? = AdminSettings.defaultAddress, token: String? = nil, tokenFile: String? = nil,
                unixSocket: String? = nil, socketMode: Int = 0o600) {
        self.address = address
        self.token = token
        self.tokenFile = tokenFile
        self.unixSocket = unixSocket
        self.socketMode = socketMode
    }

    /// The shortest token accepted (`token`, `token_file`): guessing must stay out of reach.
    public static let minimumTokenLength = 32

    /// 127.0.0.1:9090.
    public static let defaultAddress = SocketAddress(host: "127.0.0.1", port: 9090, isIPv6: false)
}

/// `[sticky]`: settings shared by every `[[route.sticky]]` rule. Like `[global]`, each key may be set in only
/// one file. Every key is optional.
///
/// Secret resolution: the loader resolves the effective secret into `secret`, whether it was written inline
/// (`secret`) or read from a file (`secret_file`); `secretFile` then keeps the file's path (for messages). When
/// neither key is set, `secret` and `secretFile` are nil and the gateway generates a secret at first start and
/// keeps it in `global.stateDirectory`, so pins survive restarts.
public struct StickySettings: Sendable, Equatable {
    /// The effective HMAC-SHA256 key for pin cookies: the value of `secret`, or the trimmed contents of
    /// `secret_file`. At least `minimumSecretLength` (32) characters. Default nil (generated at first start).
    /// `secret` and `secret_file` are mutually exclusive.
    public var secret: String?
    /// `secret_file`: path of the file the secret was read from (at load time; leading and trailing whitespace
    /// and newlines trimmed; at least 32 bytes, valid UTF-8). A relative path is relative to the working
    /// directory. nil when the secret was written inline or is not configured. Default nil.
    public var secretFile: String?
    /// `source_table_size`: most entries of the source-address pin table (rules with `by = "source"`); the least
    /// recently used entry is dropped beyond it. Range 1...10_000_000. Default 100000.
    public var sourceTableSize: Int
    /// `unconfirmed_timeout`: how long a pin nobody has presented back yet (a cookieless request, an
    /// `/assign` answer) is remembered; it counts as a user only once presented. Range 1s...1h. Default 30 s.
    public var unconfirmedTimeout: Duration
    /// `unconfirmed_table_size`: most unconfirmed pins remembered, apart from the confirmed ones (a flood of
    /// cookieless clients pushes out only unconfirmed pins). Range 1...10_000_000. Default 10000.
    public var unconfirmedTableSize: Int

    public init(secret: String? = nil, secretFile: String? = nil, sourceTableSize: Int = 100_000,
                unconfirmedTimeout: Duration = .seconds(30), unconfirmedTableSize: Int = 10_000) {
        self.secret = secret
        self.secretFile = secretFile
        self.sourceTableSize = sourceTableSize
        self.unconfirmedTimeout = unconfirmedTimeout
        self.unconfirmedTableSize = unconfirmedTableSize
    }

    /// 32: the shortest accepted secret, in characters (`secret`) or bytes (`secret_file`).
    public static let minimumSecretLength = 32
}

/// `[discovery]`: the endpoints that tell clients where to go (the gateway answers them itself, on every
/// listener, before routing). Like `[global]`, each key may be set in only one file. Both paths start with "/"
/// (no spaces, "?", "#" or "*") and differ from each other.
public struct DiscoverySettings: Sendable, Equatable {
    /// `servers_path`: the path of the endpoint that lists the servers. `"off"` turns it off (nil).
    /// Default `"/.well-known/weir/servers"`.
    public var serversPath: String?
    /// `assign_path`: the path of the endpoint that assigns a server to the asking client. `"off"` turns it off
    /// (nil). Default `"/.well-known/weir/assign"`.
    public var assignPath: String?

    /// `alive_path`: the path of the endpoint that says whether a server (`?server=ID`) is available.
    /// `"off"` turns it off (nil). Default `"/.well-known/weir/alive"`.
    public var alivePath: String?
    /// `failed_exclusion`: how long a server a client reported with `assign?failed=ID` is not assigned to
    /// that client again. Default 60 s.
    public var failedExclusion: Duration
    /// `failed_clients`: most clients whose reports are remembered at once (beyond it, the report that
    /// expires first is dropped). Default 10000.
    public var failedClients: Int

    public init(serversPath: String? = DiscoverySettings.defaultServersPath,
                assignPath: String? = DiscoverySettings.defaultAssignPath,
                alivePath: String? = DiscoverySettings.defaultAlivePath,
                failedExclusion: Duration = .seconds(60), failedClients: Int = 10_000) {
        self.serversPath = serversPath
        self.assignPath = assignPath
        self.alivePath = alivePath
        self.failedExclusion = failedExclusion
        self.failedClients = failedClients
    }

    /// `"/.well-known/weir/servers"`.
    public static let defaultServersPath = "/.well-known/weir/servers"
    /// `"/.well-known/weir/assign"`.
    public static let defaultAssignPath = "/.well-known/weir/assign"
    /// `"/.well-known/weir/alive"`.
    public static let defaultAlivePath = "/.well-known/weir/alive"
}

/// How the gateway answers a request: `[[listener]] mode` and `[[route]] mode`.
public enum Mode: String, Sendable, Equatable, Hashable, CaseIterable {
    /// `"proxy"` (the default): the request is forwarded to the chosen server and its response relayed.
    case proxy
    /// `"redirect"`: the client is redirected to the chosen server (its `public_url`) with the route's
    /// `redirect_status`; the request body, if any, is discarded (see `Limits.redirectBodyBytes`).
    case redirect
}

/// `[[listener]]`: one address the gateway accepts client connections on.
public struct Listener: Sendable, Equatable {
    /// `name` (required, non-empty, unique among listeners): used by routes and logs.
    public var name: String
    /// `address` (required): numeric IP and port, e.g. `"127.0.0.1:8080"` or `"[::]:8080"`.
    /// Port 0 (any free port) is accepted, which tests use.
    public var address: SocketAddress
    /// `max_connections`: simultaneous client connections on this listener. Range 1...10_000_000.
    /// Default: `global.maxConnections` (the loader fills it in; this initializer's default is 20000,
    /// the default of `GlobalSettings.maxConnections`).
    public var maxConnections: Int
    /// `mode`: `"proxy"` or `"redirect"`: how requests arriving here are answered, unless their route sets its
    /// own `mode`. Default `.proxy`.
    public var mode: Mode
    /// `[listener.tls]`: terminate TLS on this listener. Default nil (plain HTTP).
    public var tls: ListenerTLS?
    /// `https_redirect`: on a plain listener, answer every request (whatever the routes, `mode` and discovery
    /// endpoints say) with a 308 redirect to `https://<host><path>` on this port, e.g. 443 or 8443. Range 1...65535.
    /// The loader rejects it on a TLS listener (`tls` set) and when it is the listener's own port. Default nil (off).
    public var httpsRedirectPort: Int?
    /// `proxy_protocol`: every connection starts with a PROXY protocol header (v1 or v2, told apart by its first
    /// byte; before the TLS handshake on a TLS listener) whose source address becomes the client's address.
    /// A connection without a valid header, or from outside `proxyProtocolFrom`, is closed. Default false.
    public var proxyProtocol: Bool
    /// `proxy_protocol_from`: the networks allowed to send PROXY protocol headers, e.g. `["198.51.100.0/24"]`; the
    /// loader rejects it without `proxy_protocol = true`, and an empty array. Default `NetworkPrefix.loopback`.
    public var proxyProtocolFrom: [NetworkPrefix]
    /// `http2`: a TLS listener offers `h2` besides `http/1.1` by ALPN. Ignored on a plain listener. Default true.
    public var http2: Bool
    /// `h2c`: a plain listener accepts HTTP/2 with prior knowledge (the client starts with the `PRI * HTTP/2.0`
    /// preface); off, such a connection is answered 505 as any unknown version. Default false.
    public var h2c: Bool
    /// The `http2_*` limits (HTTP2Schema.swift).
    public var http2Limits: HTTP2Limits

    public init(name: String, address: SocketAddress, maxConnections: Int = 20000, mode: Mode = .proxy,
                tls: ListenerTLS? = nil, httpsRedirectPort: Int? = nil, proxyProtocol: Bool = false,
                proxyProtocolFrom: [NetworkPrefix] = NetworkPrefix.loopback,
                http2: Bool = true, h2c: Bool = false, http2Limits: HTTP2Limits = HTTP2Limits()) {
        self.http2 = http2
        self.h2c = h2c
        self.http2Limits = http2Limits
        self.proxyProtocol = proxyProtocol
        self.proxyProtocolFrom = proxyProtocolFrom
        self.name = name
        self.address = address
        self.maxConnections = maxConnections
        self.mode = mode
        self.tls = tls
        self.httpsRedirectPort = httpsRedirectPort
    }
}

/// `[listener.tls]` (a table after the `[[listener]]` it belongs to, in the same file): terminate TLS on this
/// listener.
///
/// Every file named here (PEM certificates and keys, the DER OCSP response) is a path; a relative path is relative
/// to the working directory of the process (not to the configuration directory). The loader only checks that each
/// file exists, is readable and, for PEM files, contains a `"-----BEGIN "` line; the gateway reads and validates the
/// certificates and keys themselves when it starts (and logs why one is refused).
public struct ListenerTLS: Sendable, Equatable {
    /// A certificate and its private key: paths of PEM files.
    public struct CertificatePair: Sendable, Equatable {
        /// `cert`: the certificate followed by its chain (intermediates), PEM, e.g. certbot's `fullchain.pem`.
        public var cert: String
        /// `key`: the certificate's private key, PEM (may be the same file as `cert` when that holds both).
        public var key: String

        public init(cert: String, key: String) {
            self.cert = cert
            self.key = key
        }
    }

    /// `profile`: protocol versions and ciphers, after Mozilla's server-side TLS recommendations.
    public enum Profile: String, Sendable, Equatable, CaseIterable {
        /// `"intermediate"` (the default): TLS 1.2 and 1.3, Mozilla's intermediate cipher suites (ECDHE with AES-GCM
        /// or ChaCha20-Poly1305); for general-purpose servers with a variety of clients.
        case intermediate
        /// `"modern"`: TLS 1.3 only; for services whose clients are all recent.
        case modern
    }

    /// `cert`, `key` (both required): the default certificate, served when the client's SNI name matches no
    /// other certificate or the client sends none.
    public var defaultCertificate: CertificatePair
    /// `[[listener.tls.sni]]` tables with `cert` and `key` (both required): more certificates; each is chosen by the
    /// names in its own certificate (SAN DNS names, exact or wildcard); the gateway reads the names, not the
    /// configuration. A certificate file is used once per listener (the default certificate included).
    /// Default `[]`.
    public var sniCertificates: [CertificatePair]
    /// `profile`: `"intermediate"` (TLS 1.2 + 1.3, Mozilla intermediate ciphers) or `"modern"` (TLS 1.3 only).
    /// Default `.intermediate`.
    public var profile: Profile
    /// `ocsp`: path of a DER-encoded OCSP response to staple to the default certificate's handshakes (e.g. written by
    /// `openssl ocsp ... -respout FILE`). Default nil (no stapling).
    public var ocspFile: String?
    /// `hsts`: a `Strict-Transport-Security` value added to every response on this listener, e.g.
    /// `"max-age=63072000"` or `"max-age=63072000; includeSubDomains; preload"`. It must hold a `max-age=SECONDS`
    /// directive and printable characters only. Default nil (no header added).
    public var hsts: String?
    /// `ticket_rotation`: how often the session-ticket keys are replaced. At least `minimumTicketRotation`
    /// (1 minute). Default 12 hours.
    public var ticketRotation: Duration
    /// `handshake_timeout`: a client that has not completed the TLS handshake within this time is disconnected.
    /// Positive. Default 10 seconds.
    public var handshakeTimeout: Duration

    public init(defaultCertificate: CertificatePair, sniCertificates: [CertificatePair] = [],
                profile: Profile = .intermediate, ocspFile: String? = nil, hsts: String? = nil,
                ticketRotation: Duration = .seconds(12 * 3600), handshakeTimeout: Duration = .seconds(10)) {
        self.defaultCertificate = defaultCertificate
        self.sniCertificates = sniCertificates
        self.profile = profile
        self.ocspFile = ocspFile
        self.hsts = hsts
        self.ticketRotation = ticketRotation
        self.handshakeTimeout = handshakeTimeout
    }

    /// 1 minute: the shortest accepted `ticket_rotation`.
    public static let minimumTicketRotation: Duration = .seconds(60)
}

/// `[[pool]]` `policy`: how a pool chooses a server. Default `.threshold`.
public enum PolicyName: String, Sendable, Equatable, Hashable, CaseIterable {
    /// `"threshold"` (the default): the source patent's rule. Each request has a "home" server, picked by the
    /// pool's `hash_key`. The request stays at home while the home server's load is below `first_level`;
    /// otherwise it goes to the least-loaded on-line server, but only if that server is lighter than home by at
    /// least `second_level`. Load is requests in flight divided by `capacity`.
    case threshold
    /// `"least-load"`: the on-line server with the lowest load (requests in flight / capacity).
    case leastLoad = "least-load"
    /// `"round-robin"`: weighted round robin over the available servers.
    case roundRobin = "round-robin"
    /// `"p2c"`: power of two choices: of two on-line servers picked at random, the less loaded one.
    case p2c
    /// `"hash"`: the server is picked by hashing the pool's `hash_key` (the same key always reaches the same
    /// on-line server).
    case hash
}

/// `[[pool]]` `hash_key`: which request attribute picks a "home" server (threshold policy) or the server
/// (hash policy). Default `.source`.
///
/// TOML: `"source"`, `"path"`, `"header:NAME"` (e.g. `"header:X-User"`) or `"cookie:NAME"` (e.g. `"cookie:session"`).
public enum HashKey: Sendable, Equatable, Hashable {
    /// `"source"`: the client's IP address.
    case source
    /// `"header:NAME"`: the value of this request header. The name is stored in lower case (e.g. `"x-user"`).
    case header(String)
    /// `"cookie:NAME"`: the value of this cookie. The name is stored as written (cookie names are case-sensitive).
    case cookie(String)
    /// `"path"`: the request path (without the query).
    case path
}

/// `[pool.health]`: the active health check of a pool's servers (written as a `[pool.health]` table after the
/// `[[pool]]` it belongs to, in the same file). Every key is optional.
public struct HealthCheck: Sendable, Equatable {
    /// `type`: what a check does.
    public enum Kind: String, Sendable, Equatable, Hashable, CaseIterable {
        /// `"http"`: send `method path` and check the response status (and body, if `expect_body` is set).
        case http
        /// `"tcp"`: a TCP connection that opens within `timeout` is a success.
        case tcp
        /// `"none"`: no active checks; servers are on-line unless passive health (`passive_failures`) takes them down.
        case none
    }

    /// `type`: `"http"`, `"tcp"` or `"none"`. Default `.tcp`.
    public var kind: Kind
    /// `interval`: time between two checks of one server. At least 100 ms. Default 2 seconds.
    public var interval: Duration
    /// `timeout`: a check that has not succeeded within this time fails. Must be shorter than `interval`.
    /// Default 1 second.
    public var timeout: Duration
    /// `rise`: consecutive successful checks that bring a down server back on-line. Range 1...100. Default 2.
    public var rise: Int
    /// `fall`: consecutive failed checks that take an on-line server down. Range 1...100. Default 3.
    public var fall: Int
    /// `method`: HTTP method of an http check, an HTTP token such as `"GET"` or `"HEAD"`. Default `"GET"`.
    public var method: String
    /// `path`: request target of an http check; starts with `"/"`, may carry a query. Default `"/health"`.
    public var path: String
    /// `host`: `Host` header value of an http check. Default nil: the server's address (e.g. `127.0.0.1:9001`).
    public var host: String?
    /// `expect_status`: statuses that count as success, as an array of integers and/or `"low-high"` range strings,
    /// e.g. `[200, 204]` or `["200-399"]`. Each status is within 100...599. Default `[200...399]`.
    public var expectStatus: [ClosedRange<Int>]
    /// `expect_body`: text the response body must contain for success. Default nil (the body is not checked).
    public var expectBody: String?

    public init(kind: Kind = .tcp, interval: Duration = .seconds(2), timeout: Duration = .seconds(1),
                rise: Int = 2, fall: Int = 3, method: String = "GET", path: String = "/health",
                host: String? = nil, expectStatus: [ClosedRange<Int>] = [200...399], expectBody: String? = nil) {
        self.kind = kind
        self.interval = interval
        self.timeout = timeout
        self.rise = rise
        self.fall = fall
        self.method = method
        self.path = path
        self.host = host
        self.expectStatus = expectStatus
        self.expectBody = expectBody
    }
}

/// `[[pool]]`: a named group of backend servers that routes send requests to.
public struct Pool: Sendable, Equatable {
    /// `name` (required, non-empty, unique among pools): what routes refer to.
    public var name: String
    /// `policy`: server selection policy. Default `.threshold`.
    public var policy: PolicyName
    /// The pool's `[[pool.server]]` tables, in declaration order. Never empty in a loaded configuration.
    public var servers: [Server]
    /// `first_level`: threshold policy: a request stays at its home server while that server's load
    /// (in flight / capacity) is below this level. Range 0.0...1.0; TOML also accepts the integers 0 and 1 and
    /// percentages such as `"50%"`. Default 0.50.
    public var firstLevel: Double
    /// `second_level`: threshold policy: when the home server is at or above `first_level`, the request moves to
    /// the least-loaded on-line server only if that server's load is lower than home's by at least this much.
    /// Range 0.0...1.0 (same forms as `first_level`). Default 0.20.
    public var secondLevel: Double
    /// `hash_key`: what picks the home server (threshold) or the server (hash). Default `.source`.
    public var hashKey: HashKey
    /// `retries`: how many other servers are tried after a connect failure or a reset before any response byte.
    /// Range 0...10. Default 2.
    public var retries: Int
    /// `slow_start`: a server that comes (back) on-line has its share ramped up from zero over this time.
    /// `"0s"` turns slow start off. Default 10 seconds.
    public var slowStart: Duration
    /// `max_queue`: requests that may wait when every eligible server is at `max_conns`; more are refused.
    /// 0 means no queue. Range 0...100_000. Default 100.
    public var maxQueue: Int
    /// `queue_timeout`: how long a request may wait in the queue before it is refused. Positive.
    /// Default 5 seconds.
    public var queueTimeout: Duration
    /// `passive_failures`: consecutive failures on real traffic (connect failure, reset, timeout) that take a
    /// server down until the health check brings it back. 0 turns passive health off. Range 0...100. Default 3.
    public var passiveFailures: Int
    /// `[pool.health]`: the active health check. Default `HealthCheck()`.
    public var health: HealthCheck
    /// `rewrite_body_types`: media types (`type/subtype`, stored in lower case, no parameters or wildcards, e.g.
    /// `"text/xml"`, `"application/wsdl+xml"`, `"text/html"`) whose response bodies have absolute URLs that point at
    /// a server's own address rewritten to the gateway. Opt-in: default `[]` (bodies are never rewritten).
    public var rewriteBodyTypes: [String]
    /// `[pool.tls]`, or the short form `tls = true` on the `[[pool]]`: connect to this pool's servers over TLS.
    /// Default nil (plain TCP; `tls = false` gives nil too). A `[pool.tls]` table with `enabled = false` is kept
    /// (checked like any other) with `enabled` false: connections are then plain as well, so the gateway uses TLS
    /// exactly when `tls?.enabled == true`.
    public var tls: PoolTLS?
    /// `load_source`: `"probes"` (the gateway's own counts and health checks) or `"beacons"` (each server's load
    /// and state come from the beacons of the `[[group.member]]` whose id equals the server id; needs `[group]`).
    /// Default `.probes`. The synthesized pool `group` of a peer has `.beacons`.
    public var loadSource: LoadSource
    /// `[pool.monitor]`: a monitoring endpoint polled for the servers' load and state, on top of the probes.
    /// Default nil (none).
    public var monitor: PoolMonitor?
    /// `lend_level`: servers of other pools (their `can_serve`) are lent to this pool when every up server of its
    /// active group has stayed at or above this load for `lend_after`. Same forms as `first_level`. Default nil:
    /// the pool's `first_level` (see `effectiveLendLevel`).
    public var lendLevel: Double?
    /// `return_level`: a lent server is given back when the least-loaded up server of this pool has stayed below
    /// this level for `lend_after` (hysteresis: below `lend_level`). Default nil: `lend_level` − `second_level`,
    /// at least 0 (see `effectiveReturnLevel`).
    public var returnLevel: Double?
    /// `lend_after`: how long the pool's load must stay above `lend_level` (to borrow) or below `return_level` (to
    /// give back) before a server moves, so that a burst does not make servers flap. Default 10 seconds.
    public var lendAfter: Duration
    /// `send_proxy`: `"v1"` or `"v2"`: every new connection to a server of this pool starts with a PROXY protocol
    /// header carrying the client's address and the address it connected to; such connections are reused only by
    /// the same client's session, never shared, and health checks send the header without addresses. Default nil.
    public var sendProxy: SendProxy?
    /// `forwarded`: requests to this pool also carry an RFC 7239 `Forwarded` field (`for`, `proto`, `host`),
    /// appended to the one received, next to the `X-Forwarded-*` fields. Default false.
    public var forwarded: Bool

    /// The level at which this pool borrows servers: `lend_level`, else `first_level`.
    public var effectiveLendLevel: Double { lendLevel ?? firstLevel }
    /// The level below which this pool gives lent servers back: `return_level`, else lend level − `second_level`.
    public var effectiveReturnLevel: Double { returnLevel ?? max(0, effectiveLendLevel - secondLevel) }

    public init(name: String, policy: PolicyName = .threshold, servers: [Server], firstLevel: Double = 0.50,
                secondLevel: Double = 0.20, hashKey: HashKey = .source, retries: Int = 2,
                slowStart: Duration = .seconds(10), maxQueue: Int = 100, queueTimeout: Duration = .seconds(5),
                passiveFailures: Int = 3, health: HealthCheck = HealthCheck(), rewriteBodyTypes: [String] = [],
                tls: PoolTLS? = nil, loadSource: LoadSource = .probes, monitor: PoolMonitor? = nil,
                lendLevel: Double? = nil, returnLevel: Double? = nil, lendAfter: Duration = .seconds(10),
                sendProxy: SendProxy? = nil, forwarded: Bool = false) {
        self.sendProxy = sendProxy
        self.forwarded = forwarded
        self.lendLevel = lendLevel
        self.returnLevel = returnLevel
        self.lendAfter = lendAfter
        self.name = name
        self.policy = policy
        self.servers = servers
        self.firstLevel = firstLevel
        self.secondLevel = secondLevel
        self.hashKey = hashKey
        self.retries = retries
        self.slowStart = slowStart
        self.maxQueue = maxQueue
        self.queueTimeout = queueTimeout
        self.passiveFailures = passiveFailures
        self.health = health
        self.rewriteBodyTypes = rewriteBodyTypes
        self.tls = tls
        self.loadSource = loadSource
        self.monitor = monitor
    }
}

/// `[pool.tls]` (a table after the `[[pool]]` it belongs to, in the same file): connect to this pool's servers
/// over TLS. Every key is optional; `tls = true` on the `[[pool]]` is short for a `[pool.tls]` table with every
/// default.
///
/// File paths (`ca_file`, `client_cert`, `client_key`) are relative to the working directory of the process when
/// they are not absolute. The loader only checks that each file exists, is readable and contains a `"-----BEGIN "`
/// line (PEM); the gateway reads and validates their contents when it starts.
public struct PoolTLS: Sendable, Equatable {
    /// `enabled`: whether connections use TLS. Default true (writing the table turns TLS on); `enabled = false`
    /// turns it off without removing the other keys.
    public var enabled: Bool
    /// `ca_file`: PEM bundle of the CA certificates the servers' certificates are verified against (e.g. a private
    /// CA). Default nil: the system's default trust store.
    public var caFile: String?
    /// `verify`: verify the server's certificate chain and its name (`serverName`). Default true.
    ///
    /// DANGEROUS when false: any certificate is accepted, so anyone who can intercept the connection to a server can
    /// read and change the traffic. Only for testing, or a network path that is already private and trusted.
    public var verify: Bool
    /// `server_name`: the host name sent as SNI and checked against the server's certificate, e.g.
    /// `"api.internal.example"` (stored in lower case), or an IP address (then no SNI is sent and an IP SAN must
    /// match). Default nil: the host of the server's `public_url` when it has one, else the server's address (then
    /// an IP SAN must match).
    public var serverName: String?
    /// `client_cert`: a PEM client certificate (with its chain) presented to servers that ask for one (mutual TLS).
    /// Set together with `client_key` (both or neither). Default nil.
    public var clientCert: String?
    /// `client_key`: the PEM private key of `client_cert`. Default nil.
    public var clientKey: String?

    public init(enabled: Bool = true, caFile: String? = nil, verify: Bool = true, serverName: String? = nil,
                clientCert: String? = nil, clientKey: String? = nil) {
        self.enabled = enabled
        self.caFile = caFile
        self.verify = verify
        self.serverName = serverName
        self.clientCert = clientCert
        self.clientKey = clientKey
    }
}

/// `[[pool.server]]`: one backend server of a pool.
public struct Server: Sendable, Equatable {
    /// `id` (required, non-empty, unique across all pools): names the server in logs and state.
    public var id: String
    /// `address` (required): numeric IP and port to connect to, e.g. `"127.0.0.1:9001"`. Port 0 is rejected.
    public var address: SocketAddress
    /// `weight`: relative share of requests. Range 1...256. Default 1.
    public var weight: Int
    /// `capacity`: most requests in flight to this server at once. At least 1. Default 100.
    public var capacity: Int
    /// `public_url`: an `http://` or `https://` URL (no path beyond `"/"`, no query) under which this
    /// server is reachable directly, if any. Default nil.
    public var publicURL: String?
    /// `group`: priority group; lower groups are preferred, higher groups are fallbacks. At least 0. Default 0.
    public var group: Int
    /// `max_conns`: hard limit of requests in flight to this server; a request that finds every eligible server
    /// at its limit waits in the pool's queue (`max_queue`). At least 1. Default nil (unlimited).
    public var maxConns: Int?
    /// Whether the pool's health check probes this server. No TOML key: true for every `[[pool.server]]`; false
    /// for the other peers' servers of a peer's synthesized pool `group` (beacons, not probes, judge them).
    public var probed: Bool
    /// `can_serve`: URI spaces this server can also serve while it is dedicated to its own pool, as route paths
    /// (a prefix such as `"/securities/"`, optionally ending in `"*"` such as `"/banking/*"`). It may be lent to
    /// the pool of a route whose path lies in one of them while that pool is loaded (see `Pool.lendLevel`), and
    /// then takes only requests whose path lies in one of them. Default `[]` (never lent).
    public var canServe: [String]
    /// The operator's drain or maint, from the runtime state (`RuntimeState.apply(to:)`); no TOML key. The server
    /// starts in it (health as any new server). Default nil (none).
    public var adminCondition: AdminCondition?

    public init(id: String, address: SocketAddress, weight: Int = 1, capacity: Int = 100,
                publicURL: String? = nil, group: Int = 0, maxConns: Int? = nil, probed: Bool = true,
                canServe: [String] = [], adminCondition: AdminCondition? = nil) {
        self.adminCondition = adminCondition
        self.canServe = canServe
        self.id = id
        self.address = address
        self.weight = weight
        self.capacity = capacity
        self.publicURL = publicURL
        self.group = group
        self.maxConns = maxConns
        self.probed = probed
    }
}

/// `[[route]]`: sends matching requests to a pool.
public struct Route: Sendable, Equatable {
    /// `name` (required, non-empty, unique among routes).
    public var name: String
    /// `host`: exact host name such as `"example.com"` or a wildcard such as `"*.example.com"`, stored in lower
    /// case, without a port. nil (the default) matches any host.
    public var host: String?
    /// `path`, as written: a path prefix the request path must start with, or, when it contains `"*"`
    /// (see `pathIsGlob`), a pattern. Starts with `"/"`. Default `"/"`.
    ///
    /// In a pattern `"*"` matches any run of characters, including none and including `"/"`; there are no other
    /// metacharacters. A pattern is matched against the whole path (the query excluded): `"/users/*/banking"`
    /// matches `/users/42/banking` but not `/users/42/banking/x`; end it with `"*"` to match what follows too.
    public var pathPrefix: String
    /// `pool` (required): name of an existing pool.
    public var pool: String
    /// `listener`: name of an existing listener this route is limited to. nil (the default) means every listener.
    public var listener: String?
    /// `spill`: name of another existing pool that takes the route's requests while every server of `pool` is at
    /// or above its capacity. Never equal to `pool`. Default nil (no spill pool).
    public var spill: String?
    /// The route's `[[route.sticky]]` tables, in declaration order: stateful paths whose requests stay on one
    /// server. Paths are unique within a route. Default `[]`.
    public var sticky: [StickyRule]
    /// `mode`: `"proxy"` or `"redirect"`. nil (the default) = the mode of the listener the request arrived on.
    public var mode: Mode?
    /// `redirect_status`: the status of the redirects this route sends in redirect mode: 302, 303, 307 or 308.
    /// Default 307 (the method and body are kept).
    public var redirectStatus: Int
    /// `spill_level`: with `spill`, the route's requests go to the spill pool while every up server of `pool`'s
    /// active group has a load at or above this level, and only while the spill pool itself has an up server
    /// below it. Same forms as `first_level` (0.0...1.0). Default 1.0 (at capacity).
    public var spillLevel: Double

    /// Whether `pathPrefix` is a pattern, i.e. contains `"*"`.
    public var pathIsGlob: Bool { pathPrefix.contains("*") }

    public init(name: String, host: String? = nil, pathPrefix: String = "/", pool: String, listener: String? = nil,
                spill: String? = nil, sticky: [StickyRule] = [], mode: Mode? = nil, redirectStatus: Int = 307,
                spillLevel: Double = 1.0) {
        self.spillLevel = spillLevel
        self.name = name
        self.host = host
        self.pathPrefix = pathPrefix
        self.pool = pool
        self.listener = listener
        self.spill = spill
        self.sticky = sticky
        self.mode = mode
        self.redirectStatus = redirectStatus
    }

    /// The accepted `redirect_status` values: 302, 303, 307, 308.
    public static let redirectStatuses = [302, 303, 307, 308]
}

/// `[[route.sticky]]` (array of tables under a `[[route]]`, in the same file): a stateful path whose requests
/// stay on one server (the source patent's fifth embodiment: a transaction is pinned to one server until a
/// "transaction complete" URI).
public struct StickyRule: Sendable, Equatable {
    /// `by`: what the pin is attached to.
    public enum Binding: String, Sendable, Equatable, Hashable, CaseIterable {
        /// `"cookie"` (the default): a signed pin cookie (HMAC-SHA256 with `[sticky]`'s secret).
        case cookie
        /// `"source"`: the client's address (for clients without cookies); kept in an LRU table of at most
        /// `[sticky] source_table_size` entries.
        case source
    }

    /// `path` (required): a glob ending in `"/*"`, e.g. `"/banking/*"`, with no other `"*"`; starts with `"/"`
    /// (no spaces, `"?"` or `"#"`). The entry point is the part before `"*"` (`"/banking/"`, see `entryPoint`):
    /// requests up to and including it are balanced as usual; requests further down are part of a transaction
    /// and go to the pinned server. Unique within its route; for a route whose `path` is a prefix, it lies under
    /// (or around) that prefix.
    public var path: String
    /// `complete`: paths (exact, e.g. `"/banking/logout"`) or `"*"` patterns (e.g. `"/banking/receipt/*"`, matched
    /// as route patterns are); a request matching one still goes to the pinned server, and its response releases
    /// the pin. Each starts with `"/"` (no spaces, `"?"` or `"#"`). Default `[]` (the pin only expires).
    public var complete: [String]
    /// `idle_timeout`: the pin is released after this long without a request; each request renews it.
    /// At least 1 second. Default 20 minutes.
    public var idleTimeout: Duration
    /// `by`: `"cookie"` (default) or `"source"` (the client address, for clients without cookies).
    public var by: Binding
    /// `cookie`: name of the pin cookie (with `by = "cookie"`), a cookie-name token (RFC 6265: letters, digits
    /// and ``!#$%&'*+-.^_`|~``). Default `"weir_pin"`.
    public var cookieName: String

    /// The part of `path` before the final `"*"`, e.g. `"/banking/"`.
    public var entryPoint: String { path.hasSuffix("*") ? String(path.dropLast()) : path }

    public init(path: String, complete: [String] = [], idleTimeout: Duration = .seconds(1200), by: Binding = .cookie,
                cookieName: String = "weir_pin") {
        self.path = path
        self.complete = complete
        self.idleTimeout = idleTimeout
        self.by = by
        self.cookieName = cookieName
    }
}
