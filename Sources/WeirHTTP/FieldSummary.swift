/// The framing- and connection-relevant facts of a field section, gathered in one pass over the
/// parsed fields. Message-type rules (Host required, TE in HTTP/1.0, CL with TE, ...) are applied
/// by the request and response parsers on top of this.
@usableFromInline
struct FieldSummary {
    @usableFromInline var hostCount = 0
    @usableFromInline var host: Range<Int>? = nil
    /// Offset of the first Content-Length field's value, when one was seen.
    @usableFromInline var contentLengthAt: Int? = nil
    /// The agreed Content-Length value (all elements of all fields identical).
    @usableFromInline var contentLength: Int? = nil
    /// Offset of the first Transfer-Encoding field's value, when one was seen.
    @usableFromInline var transferEncodingAt: Int? = nil
    /// Number of transfer codings listed over all Transfer-Encoding fields.
    @usableFromInline var codings = 0
    @usableFromInline var lastCodingIsChunked = false
    @usableFromInline var connectionClose = false
    @usableFromInline var connectionKeepAlive = false
    @usableFromInline var connectionUpgrade = false
    /// Some Connection element other than close, keep-alive and upgrade: a field name (hop-by-hop by that).
    @usableFromInline var connectionNamesFields = false
    /// Some Upgrade field lists a protocol other than h2c (Weir never upgrades a server connection
    /// to HTTP/2; RFC 9113 §3.1 deprecates the h2c upgrade).
    @usableFromInline var upgradeOffersOtherThanH2C = false
    @usableFromInline var expectsContinue = false

    @usableFromInline init() {}

    /// Summarizes `fields` (ranges into `buf`). Throws, with `status` and offsets shifted by `base`,
    /// for an invalid or conflicting Content-Length, an invalid Transfer-Encoding list, or chunked
    /// applied more than once.
    @usableFromInline
    static func summarize(_ buf: UnsafeRawBufferPointer, _ fields: [HeaderField], status: Int, base: Int) throws(HTTPParseError) -> FieldSummary {
        var s = FieldSummary()
        for f in fields {
            let name = f.name
            switch name.count {
            case 4:
                if ASCII.equalsLowercased(buf, name, "host") {
                    s.hostCount &+= 1
                    if s.host == nil { s.host = f.value }
                }
            case 6:
                if ASCII.equalsLowercased(buf, name, "expect"), listContainsToken(buf, f.value, "100-continue") {
                    s.expectsContinue = true
                }
            case 7:
                if ASCII.equalsLowercased(buf, name, "upgrade") {
                    var it = ListElements(buf, f.value)
                    while let e = it.next() {
                        if !e.isEmpty && !ASCII.equalsLowercased(buf, e, "h2c") { s.upgradeOffersOtherThanH2C = true }
                    }
                }
            case 10:
                if ASCII.equalsLowercased(buf, name, "connection") {
                    var it = ListElements(buf, f.value)
                    while let e = it.next() {
                        if ASCII.equalsLowercased(buf, e, "close") {
                            s.connectionClose = true
                        } else if ASCII.equalsLowercased(buf, e, "keep-alive") {
                            s.connectionKeepAlive = true
                        } else if ASCII.equalsLowercased(buf, e, "upgrade") {
                            s.connectionUpgrade = true
                        } else if !e.isEmpty {
                            s.connectionNamesFields = true
                        }
                    }
                }
            case 14:
                if ASCII.equalsLowercased(buf, name, "content-length") {
                    try s.addContentLength(buf, f.value, status: status, base: base)
                }
            case 17:
                if ASCII.equalsLowercased(buf, name, "transfer-encoding") {
                    try s.addTransferEncoding(buf, f.value, status: status, base: base)
                }
            default:
                break
            }
        }
        return s
    }

    /// Content-Length = 1*DIGIT; a list of identical values ("5, 5") is accepted as that value.
    @usableFromInline
    mutating func addContentLength(_ buf: UnsafeRawBufferPointer, _ value: Range<Int>, status: Int, base: Int) throws(HTTPParseError) {
        if contentLengthAt == nil { contentLengthAt = value.lowerBound }
        var it = ListElements(buf, value)
        while let e = it.next() {
            if e.isEmpty {
                throw HTTPParseError(status: status, reason: "invalid Content-Length", offset: base + e.lowerBound)
            }
            var n = 0
            for j in e {
                let d = buf[j] &- 0x30
                if d >= 10 {
                    throw HTTPParseError(status: status, reason: "invalid Content-Length", offset: base + j)
                }
                let (m, o1) = n.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(Int(d))
                if o1 || o2 {
                    throw HTTPParseError(status: status, reason: "Content-Length too large", offset: base + j)
                }
                n = a
            }
            if let previous = contentLength, previous != n {
                throw HTTPParseError(status: status, reason: "differing Content-Length values", offset: base + e.lowerBound)
            }
            contentLength = n
        }
    }

    /// Transfer-Encoding = #transfer-coding; records whether the last coding is chunked and rejects
    /// chunked applied twice, chunked with parameters, and non-token coding names.
    @usableFromInline
    mutating func addTransferEncoding(_ buf: UnsafeRawBufferPointer, _ value: Range<Int>, status: Int, base: Int) throws(HTTPParseError) {
        if transferEncodingAt == nil { transferEncodingAt = value.lowerBound }
        var it = ListElements(buf, value)
        while let e = it.next() {
            if e.isEmpty { continue }  // RFC 9110 §5.6.1: ignore empty list elements
            var i = e.lowerBound
            while i < e.upperBound && ASCII.isTChar(buf[i]) { i &+= 1 }
            if i == e.lowerBound {
                throw HTTPParseError(status: status, reason: "invalid Transfer-Encoding", offset: base + i)
            }
            let coding = e.lowerBound..<i
            let hasParameters = i < e.upperBound
            if hasParameters {
                let next = buf[ASCII.skipWS(buf, from: i, to: e.upperBound)]
                if next != ASCII.semicolon {
                    throw HTTPParseError(status: status, reason: "invalid Transfer-Encoding", offset: base + i)
                }
            }
            let isChunked = ASCII.equalsLowercased(buf, coding, "chunked")
            if isChunked {
                if hasParameters {
                    throw HTTPParseError(status: status, reason: "chunked transfer coding with parameters", offset: base + i)
                }
                if lastCodingIsChunked || containsChunked {
                    throw HTTPParseError(status: status, reason: "chunked applied more than once", offset: base + e.lowerBound)
                }
                containsChunked = true
            }
            lastCodingIsChunked = isChunked
            codings &+= 1
        }
    }

    @usableFromInline var containsChunked = false

    /// Whether a Transfer-Encoding field was present.
    @inlinable var hasTransferEncoding: Bool { transferEncodingAt != nil }
}
