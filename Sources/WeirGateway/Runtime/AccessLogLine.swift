import WeirConfig

/// What the access log knows about one finished exchange. Built only while the log is on; the
/// strings are the configuration's and the connection's own (no copies), the byte slices point
/// into the request head.
struct AccessLogEntry {
    /// Wall-clock milliseconds since the Unix epoch when the exchange ended.
    var wallMs: Int64
    var client: String
    var clientPort: Int
    var listener: String
    /// The request line without its CRLF ("GET /a HTTP/1.1"), or the first bytes of an unparsable head.
    var requestLine: ArraySlice<UInt8>
    var status: Int
    /// Bytes sent to the client (response head included).
    var bytes: Int
    /// The server's id (forwarded to it, or redirected to it when `redirect`), or nil.
    var server: String?
    var pool: String?
    /// The answer was a redirect to `server` (redirect mode).
    var redirect = false
    var totalMs: Int64
    /// Milliseconds to connect to the server (nil: a reused connection, or none).
    var upstreamConnectMs: Int64?
    /// Milliseconds until the server's response head (nil: no server answered).
    var upstreamMs: Int64?
    var pin: PinOutcome?
    /// "TLSv1.3", or nil on a plain connection.
    var tls: StaticString?
    var userAgent: ArraySlice<UInt8>?
    var referer: ArraySlice<UInt8>?
}

/// What a sticky rule did with the request (the JSON log's `pin`).
enum PinOutcome: UInt8 {
    /// A new pin was handed out (a transaction begins).
    case new
    /// The request presented its pin and went to the pinned server.
    case kept
    /// The pinned server could not take it: the transaction moved to another server.
    case moved
    /// The request presented a pin that was not honoured (forged, expired, unknown server).
    case rejected
    /// The request completed the transaction (the pin was dropped).
    case ended

    var name: StaticString {
        switch self {
        case .new: return "new"
        case .kept: return "kept"
        case .moved: return "moved"
        case .rejected: return "rejected"
        case .ended: return "ended"
        }
    }
}

/// Writes access-log lines as bytes, with no Foundation and no per-line allocation beyond the
/// growth of the output buffer; the calendar part of the time is formatted once per second.
struct AccessLogFormatter {
    let format: AccessLogFormat
    private var second: Int64 = .min
    /// "2026-12-01T21:55:08" for `second` (weir and json).
    private var isoPrefix: [UInt8] = []
    /// "01/Dec/2026:21:55:08 +0000" for `second` (combined).
    private var combinedTime: [UInt8] = []

    init(format: AccessLogFormat) { self.format = format }

    /// Whether lines need the request's User-Agent and Referer (read from the head at log time).
    var needsHeaderFields: Bool { format != .weir }
    /// Whether lines need the connect time and the pin outcome (captured during the exchange).
    var needsDetail: Bool { format == .json }

    /// Appends `entry` as one line (with its newline) to `out`.
    mutating func append(_ entry: AccessLogEntry, to out: inout [UInt8]) {
        updateTime(entry.wallMs)
        switch format {
        case .weir: appendWeir(entry, to: &out)
        case .combined: appendCombined(entry, to: &out)
        case .json: appendJSON(entry, to: &out)
        }
    }

    // MARK: weir

    /// `2026-12-01T21:55:08.123Z 127.0.0.1 "GET / HTTP/1.1" 200 123 s1 3ms 2ms` (the line Weir always wrote;
    /// `"` and control bytes of the request line become `?`; a redirect's server is `->id`).
    private func appendWeir(_ e: AccessLogEntry, to out: inout [UInt8]) {
        appendISOTime(e.wallMs, to: &out)
        out.append(UInt8(ascii: " "))
        out.append(contentsOf: e.client.utf8)
        out.append(contentsOf: " \"".utf8)
        for b in e.requestLine { out.append(b == UInt8(ascii: "\"") || b < 32 ? UInt8(ascii: "?") : b) }
        out.append(contentsOf: "\" ".utf8)
        AccessLogBytes.decimal(Int64(e.status), to: &out)
        out.append(UInt8(ascii: " "))
        AccessLogBytes.decimal(Int64(e.bytes), to: &out)
        out.append(UInt8(ascii: " "))
        if let server = e.server {
            if e.redirect { out.append(contentsOf: "->".utf8) }
            out.append(contentsOf: server.utf8)
        } else {
            out.append(UInt8(ascii: "-"))
        }
        out.append(UInt8(ascii: " "))
        AccessLogBytes.decimal(e.totalMs, to: &out)
        out.append(contentsOf: "ms ".utf8)
        if let ms = e.upstreamMs {
            AccessLogBytes.decimal(ms, to: &out)
            out.append(contentsOf: "ms".utf8)
        } else {
            out.append(UInt8(ascii: "-"))
        }
        out.append(UInt8(ascii: "\n"))
    }

    // MARK: combined

    /// `127.0.0.1 - - [01/Dec/2026:21:55:08 +0000] "GET / HTTP/1.1" 200 123 "referer" "agent"`. Quoted
    /// parts escape `"`, `\`, control and non-ASCII bytes as `\xHH` (nginx's default escaping).
    private func appendCombined(_ e: AccessLogEntry, to out: inout [UInt8]) {
        out.append(contentsOf: e.client.utf8)
        out.append(contentsOf: " - - [".utf8)
        out.append(contentsOf: combinedTime)
        out.append(contentsOf: "] \"".utf8)
        AccessLogBytes.nginxEscaped(e.requestLine, to: &out)
        out.append(contentsOf: "\" ".utf8)
        AccessLogBytes.decimal(Int64(e.status), to: &out)
        out.append(UInt8(ascii: " "))
        AccessLogBytes.decimal(Int64(e.bytes), to: &out)
        out.append(contentsOf: " \"".utf8)
        if let referer = e.referer { AccessLogBytes.nginxEscaped(referer, to: &out) } else { out.append(UInt8(ascii: "-")) }
        out.append(contentsOf: "\" \"".utf8)
        if let agent = e.userAgent { AccessLogBytes.nginxEscaped(agent, to: &out) } else { out.append(UInt8(ascii: "-")) }
        out.append(contentsOf: "\"\n".utf8)
    }

    // MARK: json

    /// One object, fields always present in this order (null when unknown).
    private func appendJSON(_ e: AccessLogEntry, to out: inout [UInt8]) {
        let parts = RequestLineParts(e.requestLine)
        out.append(contentsOf: "{\"time\":\"".utf8)
        appendISOTime(e.wallMs, to: &out)
        out.append(contentsOf: "\",\"client\":".utf8)
        AccessLogBytes.jsonString(e.client.utf8, to: &out)
        out.append(contentsOf: ",\"client_port\":".utf8)
        AccessLogBytes.decimal(Int64(e.clientPort), to: &out)
        out.append(contentsOf: ",\"listener\":".utf8)
        AccessLogBytes.jsonString(e.listener.utf8, to: &out)
        out.append(contentsOf: ",\"method\":".utf8)
        AccessLogBytes.jsonOptional(parts.method, to: &out)
        out.append(contentsOf: ",\"target\":".utf8)
        AccessLogBytes.jsonOptional(parts.target, to: &out)
        out.append(contentsOf: ",\"version\":".utf8)
        AccessLogBytes.jsonOptional(parts.version, to: &out)
        out.append(contentsOf: ",\"status\":".utf8)
        AccessLogBytes.decimal(Int64(e.status), to: &out)
        out.append(contentsOf: ",\"bytes\":".utf8)
        AccessLogBytes.decimal(Int64(e.bytes), to: &out)
        out.append(contentsOf: ",\"server\":".utf8)
        AccessLogBytes.jsonOptional(e.server?.utf8, to: &out)
        out.append(contentsOf: ",\"pool\":".utf8)
        AccessLogBytes.jsonOptional(e.pool?.utf8, to: &out)
        out.append(contentsOf: ",\"duration_ms\":".utf8)
        AccessLogBytes.decimal(e.totalMs, to: &out)
        out.append(contentsOf: ",\"upstream_connect_ms\":".utf8)
        AccessLogBytes.optionalDecimal(e.upstreamConnectMs, to: &out)
        out.append(contentsOf: ",\"upstream_ms\":".utf8)
        AccessLogBytes.optionalDecimal(e.upstreamMs, to: &out)
        out.append(contentsOf: ",\"pin\":".utf8)
        AccessLogBytes.jsonStatic(e.pin?.name, to: &out)
        out.append(contentsOf: ",\"mode\":".utf8)
        out.append(contentsOf: (e.redirect ? "\"redirect\"" : "\"proxy\"").utf8)
        out.append(contentsOf: ",\"tls\":".utf8)
        AccessLogBytes.jsonStatic(e.tls, to: &out)
        out.append(contentsOf: ",\"user_agent\":".utf8)
        AccessLogBytes.jsonOptional(e.userAgent, to: &out)
        out.append(contentsOf: ",\"referer\":".utf8)
        AccessLogBytes.jsonOptional(e.referer, to: &out)
        out.append(contentsOf: "}\n".utf8)
    }

    // MARK: time

    /// `2026-12-01T21:55:08.123Z` (UTC, milliseconds).
    private func appendISOTime(_ wallMs: Int64, to out: inout [UInt8]) {
        out.append(contentsOf: isoPrefix)
        out.append(UInt8(ascii: "."))
        let ms = Int(((wallMs % 1000) + 1000) % 1000)
        out.append(UInt8(ascii: "0") + UInt8(ms / 100))
        out.append(UInt8(ascii: "0") + UInt8(ms / 10 % 10))
        out.append(UInt8(ascii: "0") + UInt8(ms % 10))
        out.append(UInt8(ascii: "Z"))
    }

    /// Formats the calendar parts again when the second changed.
    private mutating func updateTime(_ wallMs: Int64) {
        let s = wallMs >= 0 ? wallMs / 1000 : (wallMs - 999) / 1000
        guard s != second else { return }
        second = s
        let t = CivilTime(unixSeconds: s)
        isoPrefix.removeAll(keepingCapacity: true)
        combinedTime.removeAll(keepingCapacity: true)
        switch format {
        case .weir, .json: t.appendISO(to: &isoPrefix)
        case .combined: t.appendCombined(to: &combinedTime)
        }
    }
}

/// A UTC calendar date and time of day from Unix seconds (proleptic Gregorian; H. Hinnant's
/// days-from-civil inverse), so no libc time call and no locale is involved.
struct CivilTime: Equatable {
    var year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int

    init(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        (self.year, self.month, self.day, self.hour, self.minute, self.second) = (year, month, day, hour, minute, second)
    }

    init(unixSeconds: Int64) {
        let days = unixSeconds >= 0 ? unixSeconds / 86_400 : (unixSeconds - 86_399) / 86_400
        let rest = Int(unixSeconds - days * 86_400)
        hour = rest / 3600
        minute = rest / 60 % 60
        second = rest % 60
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        day = Int(doy - (153 * mp + 2) / 5 + 1)
        month = Int(mp < 10 ? mp + 3 : mp - 9)
        year = Int(yoe + era * 400) + (month <= 2 ? 1 : 0)
    }

    private static let monthNames: [StaticString] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// `2026-12-01T21:55:08`
    func appendISO(to out: inout [UInt8]) {
        Self.digits(year, 4, &out); out.append(UInt8(ascii: "-"))
        Self.digits(month, 2, &out); out.append(UInt8(ascii: "-"))
        Self.digits(day, 2, &out); out.append(UInt8(ascii: "T"))
        appendClock(to: &out)
    }

    /// `01/Dec/2026:21:55:08 +0000`
    func appendCombined(to out: inout [UInt8]) {
        Self.digits(day, 2, &out); out.append(UInt8(ascii: "/"))
        let name = Self.monthNames[month - 1]
        out.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        out.append(UInt8(ascii: "/"))
        Self.digits(year, 4, &out); out.append(UInt8(ascii: ":"))
        appendClock(to: &out)
        out.append(contentsOf: " +0000".utf8)
    }

    private func appendClock(to out: inout [UInt8]) {
        Self.digits(hour, 2, &out); out.append(UInt8(ascii: ":"))
        Self.digits(minute, 2, &out); out.append(UInt8(ascii: ":"))
        Self.digits(second, 2, &out)
    }

    private static func digits(_ value: Int, _ width: Int, _ out: inout [UInt8]) {
        var divisor = 1
        for _ in 1..<width { divisor *= 10 }
        var v = value
        if v >= divisor * 10 { AccessLogBytes.decimal(Int64(v / (divisor * 10)), to: &out); v %= divisor * 10 }
        while divisor > 0 {
            out.append(UInt8(ascii: "0") + UInt8(v / divisor % 10))
            divisor /= 10
        }
    }
}

/// The three parts of a request line: method, target, version (split at the first and the last
/// space; a line without spaces is all method).
struct RequestLineParts {
    var method: ArraySlice<UInt8>?
    var target: ArraySlice<UInt8>?
    var version: ArraySlice<UInt8>?

    init(_ line: ArraySlice<UInt8>) {
        guard !line.isEmpty else { return }
        guard let first = line.firstIndex(of: UInt8(ascii: " ")) else { method = line; return }
        method = line[line.startIndex..<first]
        let last = line.lastIndex(of: UInt8(ascii: " "))!
        if last == first {
            target = line[(first + 1)...]
        } else {
            target = line[(first + 1)..<last]
            version = line[(last + 1)...]
        }
    }
}

/// Byte-level writers shared by the formats.
enum AccessLogBytes {
    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// The decimal digits of `value`.
    static func decimal(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 {
            out.append(UInt8(ascii: "-"))
            if value == .min { out.append(contentsOf: "9223372036854775808".utf8); return }
            decimal(-value, to: &out)
            return
        }
        if value < 10 { out.append(UInt8(ascii: "0") + UInt8(value)); return }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var v = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            while v > 0 {
                buffer[19 - count] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
                count += 1
            }
            out.append(contentsOf: buffer[(20 - count)...])
        }
    }

    /// `value` in decimal, or `null`.
    static func optionalDecimal(_ value: Int64?, to out: inout [UInt8]) {
        if let value { decimal(value, to: &out) } else { out.append(contentsOf: "null".utf8) }
    }

    /// A JSON string of a static ASCII text, or `null`.
    static func jsonStatic(_ text: StaticString?, to out: inout [UInt8]) {
        guard let text else { out.append(contentsOf: "null".utf8); return }
        out.append(UInt8(ascii: "\""))
        out.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
        out.append(UInt8(ascii: "\""))
    }

    /// A JSON string of `bytes`, or `null`.
    static func jsonOptional<C: Collection>(_ bytes: C?, to out: inout [UInt8]) where C.Element == UInt8, C.Index == Int {
        if let bytes { jsonString(bytes, to: &out) } else { out.append(contentsOf: "null".utf8) }
    }

    static func jsonOptional(_ bytes: String.UTF8View?, to out: inout [UInt8]) {
        if let bytes { jsonString(bytes, to: &out) } else { out.append(contentsOf: "null".utf8) }
    }

    /// `bytes` as a quoted JSON string: `"` and `\` escaped, control bytes and DEL as `\n`, `\r`,
    /// `\t` or `\u00XX`, valid UTF-8 kept as it is, and every byte of an invalid UTF-8 sequence as
    /// `\ufffd`; the result is always one valid JSON string on one line.
    static func jsonString<C: Collection>(_ bytes: C, to out: inout [UInt8]) where C.Element == UInt8 {
        out.append(UInt8(ascii: "\""))
        var i = bytes.startIndex
        while i != bytes.endIndex {
            let b = bytes[i]
            if b >= 0x80 {
                let length = utf8SequenceLength(bytes, at: i)
                if length == 0 {
                    out.append(contentsOf: "\\ufffd".utf8)
                    i = bytes.index(after: i)
                } else {
                    let end = bytes.index(i, offsetBy: length)
                    out.append(contentsOf: bytes[i..<end])
                    i = end
                }
                continue
            }
            switch b {
            case UInt8(ascii: "\""): out.append(contentsOf: "\\\"".utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: "\\\\".utf8)
            case 0x0A: out.append(contentsOf: "\\n".utf8)
            case 0x0D: out.append(contentsOf: "\\r".utf8)
            case 0x09: out.append(contentsOf: "\\t".utf8)
            case 0..<0x20, 0x7F:
                out.append(contentsOf: "\\u00".utf8)
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 0x0F)])
            default: out.append(b)
            }
            i = bytes.index(after: i)
        }
        out.append(UInt8(ascii: "\""))
    }

    /// The length of the well-formed UTF-8 sequence starting at `i` (a byte >= 0x80), or 0 when it
    /// is not one (a stray continuation byte, an overlong form, a surrogate, beyond U+10FFFF, cut short).
    static func utf8SequenceLength<C: Collection>(_ bytes: C, at i: C.Index) -> Int where C.Element == UInt8 {
        let lead = bytes[i]
        let length: Int
        var low: UInt8 = 0x80, high: UInt8 = 0xBF   // the range allowed for the second byte
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; high = 0x9F
        case 0xF0: length = 4; low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; high = 0x8F
        default: return 0
        }
        var j = bytes.index(after: i)
        for k in 1..<length {
            guard j != bytes.endIndex else { return 0 }
            let c = bytes[j]
            if k == 1 ? !(low...high).contains(c) : !(0x80...0xBF).contains(c) { return 0 }
            j = bytes.index(after: j)
        }
        return length
    }

    /// nginx's default log escaping: `"`, `\`, bytes below 0x20 and from 0x7F up as `\xHH`.
    static func nginxEscaped(_ bytes: ArraySlice<UInt8>, to out: inout [UInt8]) {
        for b in bytes {
            if b < 0x20 || b >= 0x7F || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") {
                out.append(contentsOf: "\\x".utf8)
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 0x0F)])
            } else {
                out.append(b)
            }
        }
    }
}
