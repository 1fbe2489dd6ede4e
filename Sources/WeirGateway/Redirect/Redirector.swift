/// The IP redirector's answer (source patent, claim 9: the client is told to resend its request to
/// the chosen server): a redirect to the server's public URL plus the original path and query.
enum Redirector {
    /// Appends the complete response. `base` is the server's public URL ("http://host:port", a
    /// trailing "/" is dropped); `path` the original origin-form target; `setCookie` an optional
    /// Set-Cookie field with CRLF. 307 and 308 keep the method and body (POST stays POST).
    static func response(status: Int, base: String, path: ArraySlice<UInt8>, setCookie: [UInt8], keepAlive: Bool,
                         into out: inout [UInt8]) {
        let phrase: String
        switch status {
        case 302: phrase = "Found"
        case 303: phrase = "See Other"
        case 308: phrase = "Permanent Redirect"
        default: phrase = "Temporary Redirect"
        }
        out += Array("HTTP/1.1 \(status) \(phrase)\r\nLocation: ".utf8)
        out += Array((base.hasSuffix("/") ? String(base.dropLast()) : base).utf8)
        out += path.first == UInt8(ascii: "*") ? Array("/".utf8) : Array(path)
        out += Array("\r\nCache-Control: no-store\r\nContent-Length: 0\r\nVia: 1.1 weir\r\n".utf8)
        out += setCookie
        out += Array((keepAlive ? "\r\n" : "Connection: close\r\n\r\n").utf8)
    }
}
