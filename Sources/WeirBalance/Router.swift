import WeirConfig

/// A route compiled for matching on raw request bytes.
public struct CompiledRoute: Sendable {
    public let name: String
    /// Index into `RoutingSnapshot.pools`.
    public let pool: Int
    /// Index into the configuration's listeners, or nil for every listener.
    public let listener: Int?
    /// Index into `RoutingSnapshot.pools` of the route's `spill` pool, if any.
    public let spillPool: Int?
    /// The route's `spill_level`: the load at which its pool overflows to `spillPool` (1.0 = capacity).
    public let spillLevel: Double
    let hostExact: [UInt8]?       // lowercased
    let hostSuffix: [UInt8]?      // lowercased ".example.com" for "*.example.com"
    let pathPrefix: [UInt8]
    /// `pathPrefix` is a glob pattern (`*` = any run of characters, "/" included).
    let pathIsGlob: Bool
    /// The route's sticky rules, in configuration order.
    public let sticky: [CompiledSticky]
    /// The route's own mode, overriding the listener's; nil = the listener's.
    public let mode: Mode?
    /// Status of redirects in redirect mode (302, 303, 307 or 308).
    public let redirectStatus: Int

    /// The first sticky rule concerned by `path`, with the request's role in it.
    public func sticky(for path: UnsafeRawBufferPointer) -> (rule: Int, role: StickyRole)? {
        for (i, rule) in sticky.enumerated() { if let role = rule.role(of: path) { return (i, role) } }
        return nil
    }

    /// Whether this route takes a request for `host` (without port, any case; nil when absent) and `path`.
    public func matches(host: UnsafeRawBufferPointer?, path: UnsafeRawBufferPointer, listener index: Int) -> Bool {
        if let listener, listener != index { return false }
        if hostExact != nil || hostSuffix != nil {
            guard let host else { return false }
            if let hostExact, !Self.equalsLowercased(host, hostExact) { return false }
            if let hostSuffix {
                guard host.count > hostSuffix.count else { return false }
                let tail = UnsafeRawBufferPointer(rebasing: host[(host.count - hostSuffix.count)...])
                if !Self.equalsLowercased(tail, hostSuffix) { return false }
            }
        }
        return pathIsGlob ? Self.globMatches(path, pattern: pathPrefix) : Self.pathMatches(path, prefix: pathPrefix)
    }

    /// Whether `path` lies in `pattern` written as a route path: a glob when it contains "*", else a prefix.
    static func takes(_ path: UnsafeRawBufferPointer, pattern: [UInt8]) -> Bool {
        pattern.contains(UInt8(ascii: "*")) ? globMatches(path, pattern: pattern) : pathMatches(path, prefix: pattern)
    }

    /// "/" and prefixes ending in "/" match as plain prefixes; "/api" matches "/api", "/api/…" and "/api?…"
    /// but not "/apix".
    static func pathMatches(_ path: UnsafeRawBufferPointer, prefix: [UInt8]) -> Bool {
        guard path.count >= prefix.count else { return false }
        for i in 0..<prefix.count where path[i] != prefix[i] { return false }
        if prefix.last == UInt8(ascii: "/") || path.count == prefix.count { return true }
        let next = path[prefix.count]
        return next == UInt8(ascii: "/") || next == UInt8(ascii: "?")
    }

    /// Glob match of the whole path (the part before "?"; the query is ignored) against `pattern`,
    /// where `*` matches any run of characters, "/" included, and every other byte matches itself.
    /// "/static/*.css" takes "/static/a.css" and "/static/x/y.css?v=2" but not "/static/a.css/x".
    /// Backtracks only to the last star: O(path × pattern) at worst, no recursion, no allocation.
    static func globMatches(_ path: UnsafeRawBufferPointer, pattern: [UInt8]) -> Bool {
        var end = path.count
        if let query = path.firstIndex(of: UInt8(ascii: "?")) { end = query }
        let star = UInt8(ascii: "*")
        var p = 0, s = 0
        var starAt = -1, resumeAt = 0
        while s < end {
            if p < pattern.count, pattern[p] == star {
                starAt = p
                resumeAt = s
                p += 1
            } else if p < pattern.count, pattern[p] == path[s] {
                p += 1
                s += 1
            } else if starAt >= 0 {
                resumeAt += 1
                s = resumeAt
                p = starAt + 1
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == star { p += 1 }
        return p == pattern.count
    }

    static func equalsLowercased(_ bytes: UnsafeRawBufferPointer, _ lower: [UInt8]) -> Bool {
        guard bytes.count == lower.count else { return false }
        for i in 0..<lower.count {
            var b = bytes[i]
            if b >= 65 && b <= 90 { b |= 0x20 }
            if b != lower[i] { return false }
        }
        return true
    }

    init(route: Route, pool: Int, listener: Int?, spillPool: Int? = nil) {
        name = route.name
        self.pool = pool
        self.listener = listener
        self.spillPool = spillPool
        spillLevel = route.spillLevel
        let host = route.host.map { Array($0.lowercased().utf8) }
        if let host, host.first == UInt8(ascii: "*") {
            hostSuffix = Array(host.dropFirst())
            hostExact = nil
        } else {
            hostExact = host
            hostSuffix = nil
        }
        pathPrefix = Array(route.pathPrefix.utf8)
        pathIsGlob = route.pathIsGlob
        sticky = route.sticky.map(CompiledSticky.init)
        mode = route.mode
        redirectStatus = route.redirectStatus
    }
}
