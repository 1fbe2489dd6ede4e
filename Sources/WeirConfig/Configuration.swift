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

    public init(global: GlobalSettings = GlobalSettings(), timeouts: Timeouts = Timeouts(), limits: Limits = Limits(),
                listeners: [Listener] = [], pools: [Pool] = [], routes: [Route] = [], sourceFiles: [String] = []) {
        self.global = global
        self.timeouts = timeouts
        self.limits = limits
        self.listeners = listeners
        self.pools = pools
        self.routes = routes
        self.sourceFiles = sourceFiles
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

    public init(workers: Int = 0, maxConnections: Int = 20000, drainTimeout: Duration = .seconds(30),
                accessLog: AccessLog = .stdout) {
        self.workers = workers
        self.maxConnections = maxConnections
        self.drainTimeout = drainTimeout
        self.accessLog = accessLog
    }
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
    /// `upstream_connect`: time allowed to establish a TCP connection to a backend server. Default 3 seconds.
    public var upstreamConnect: Duration
    /// `upstream_response`: time allowed for a backend to start its response (the response head) after
    /// the request was sent. Default 60 seconds.
    public var upstreamResponse: Duration
    /// `upstream_idle`: how long an idle pooled backend connection is kept before it is closed. Default 30 seconds.
    public var upstreamIdle: Duration
    /// `tunnel_idle`: how long an upgraded / tunnelled connection (e.g. WebSocket) may carry no bytes in either
    /// direction before it is closed. Default 300 seconds.
    public var tunnelIdle: Duration

    public init(clientHeader: Duration = .seconds(10), clientIdle: Duration = .seconds(60),
                upstreamConnect: Duration = .seconds(3), upstreamResponse: Duration = .seconds(60),
                upstreamIdle: Duration = .seconds(30), tunnelIdle: Duration = .seconds(300)) {
        self.clientHeader = clientHeader
        self.clientIdle = clientIdle
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

    public init(maxRequestLine: Int = 8192, maxHeaderBytes: Int = 65536, maxHeaderCount: Int = 100,
                upstreamIdlePerServer: Int = 1024, bufferBytes: Int = 262_144) {
        self.maxRequestLine = maxRequestLine
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.upstreamIdlePerServer = upstreamIdlePerServer
        self.bufferBytes = bufferBytes
    }
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

    public init(name: String, address: SocketAddress, maxConnections: Int = 20000) {
        self.name = name
        self.address = address
        self.maxConnections = maxConnections
    }
}

/// `[[pool]]` `policy`: how a pool chooses a server. Default `.roundRobin`.
public enum PolicyName: String, Sendable, Equatable, Hashable, CaseIterable {
    /// `"round-robin"`: weighted round robin over the available servers.
    case roundRobin = "round-robin"
}

/// `[[pool]]`: a named group of backend servers that routes send requests to.
public struct Pool: Sendable, Equatable {
    /// `name` (required, non-empty, unique among pools): what routes refer to.
    public var name: String
    /// `policy`: server selection policy. Default `.roundRobin`.
    public var policy: PolicyName
    /// The pool's `[[pool.server]]` tables, in declaration order. Never empty in a loaded configuration.
    public var servers: [Server]

    public init(name: String, policy: PolicyName = .roundRobin, servers: [Server]) {
        self.name = name
        self.policy = policy
        self.servers = servers
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

    public init(id: String, address: SocketAddress, weight: Int = 1, capacity: Int = 100,
                publicURL: String? = nil, group: Int = 0) {
        self.id = id
        self.address = address
        self.weight = weight
        self.capacity = capacity
        self.publicURL = publicURL
        self.group = group
    }
}

/// `[[route]]`: sends matching requests to a pool.
public struct Route: Sendable, Equatable {
    /// `name` (required, non-empty, unique among routes).
    public var name: String
    /// `host`: exact host name such as `"example.com"` or a wildcard such as `"*.example.com"`, stored in lower
    /// case, without a port. nil (the default) matches any host.
    public var host: String?
    /// `path`: path prefix the request target must start with. Starts with `"/"`. Default `"/"`.
    public var pathPrefix: String
    /// `pool` (required): name of an existing pool.
    public var pool: String
    /// `listener`: name of an existing listener this route is limited to. nil (the default) means every listener.
    public var listener: String?

    public init(name: String, host: String? = nil, pathPrefix: String = "/", pool: String, listener: String? = nil) {
        self.name = name
        self.host = host
        self.pathPrefix = pathPrefix
        self.pool = pool
        self.listener = listener
    }
}
