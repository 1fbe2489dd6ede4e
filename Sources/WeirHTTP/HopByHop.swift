/// Hop-by-hop field names a proxy must not forward (RFC 9110 §7.6.1): Connection, Proxy-Connection,
/// Keep-Alive, TE, Transfer-Encoding, Upgrade, plus Trailer (RFC 7230 era list; the proxy rewrites
/// framing itself) and HTTP2-Settings (connection-specific, meaningful only with an h2c upgrade,
/// which Weir never forwards; RFC 9113 §3.1). Proxy-Authenticate / Proxy-Authorization are not included: RFC 9110 §11.7 leaves
/// them to proxies that authenticate. Names listed in a Connection field are hop-by-hop too; the
/// caller checks those with `RequestHead.listContains`.
public enum HopByHop {
    /// true when the field name bytes are a standard hop-by-hop name (case-insensitive). Transfer-Encoding
    /// is included: the caller re-adds framing itself.
    /// Precondition: `name` holds just the field name (no colon, no whitespace).
    @inlinable
    public static func isHopByHop(_ name: UnsafeRawBufferPointer) -> Bool {
        let all = 0..<name.count
        switch name.count {
        case 2: return ASCII.equalsLowercased(name, all, "te")
        case 7: return ASCII.equalsLowercased(name, all, "upgrade") || ASCII.equalsLowercased(name, all, "trailer")
        case 10: return ASCII.equalsLowercased(name, all, "connection") || ASCII.equalsLowercased(name, all, "keep-alive")
        case 14: return ASCII.equalsLowercased(name, all, "http2-settings")
        case 16: return ASCII.equalsLowercased(name, all, "proxy-connection")
        case 17: return ASCII.equalsLowercased(name, all, "transfer-encoding")
        default: return false
        }
    }
}
