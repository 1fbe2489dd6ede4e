import WeirHTTP

/// The IP redirector's answer (source patent, claim 9: the client is told to resend its request to
/// the chosen server): a redirect to the server's public URL plus the original path and query.
enum Redirector {
    /// Appends the complete response. `base` is the server's public URL ("http://host:port", a
    /// trailing "/" is dropped); `path` the original origin-form target; `setCookie` optional
    /// complete field lines with CRLF (Set-Cookie, Strict-Transport-Security). 307 and 308 keep the
    /// method and body (POST stays POST). `keepAlive` false adds `Connection: close`.
    /// Preconditions: `status` in 100...599; `base` and `path` hold no CR, LF or control bytes
    /// (a validated public URL and a parsed request target do not).
    static func response(status: Int, base: String, path: ArraySlice<UInt8>, setCookie: [UInt8], keepAlive: Bool,
                         into out: inout [UInt8]) {
        var location = Array(base.utf8)
        if location.last == UInt8(ascii: "/") { location.removeLast() }
        // An asterisk-form target ("OPTIONS *") has no path to keep: send the client to the root.
        if path.first == UInt8(ascii: "*") { location.append(UInt8(ascii: "/")) } else { location += path }
        var head = ResponseHeadWriter(status: status)
        head.field("Location", location)
        head.field("Cache-Control", "no-store")
        head.contentLength(0)
        head.field("Via", "1.1 weir")
        head.fieldLines(setCookie)
        head.connection(keepAlive: keepAlive)
        head.finish(appendingTo: &out)
    }
}
