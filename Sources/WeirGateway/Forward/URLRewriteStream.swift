/// Rewrites absolute URLs that point at a server's own address inside a body that arrives in
/// pieces (source document 003: the intermediary rewrites service addresses in what it passes back,
/// so clients keep coming through it). A URL split across pieces is still found: the bytes that
/// could be the start of a match are held back until the next piece or the end.
struct URLRewriteStream {
    private let prefixes: [[UInt8]]
    private let replacement: [UInt8]
    private var carry: [UInt8] = []
    /// How many URLs were rewritten.
    private(set) var rewrites = 0

    /// `prefixes`: what the server calls itself ("http://127.0.0.1:9001"), matched exactly and only
    /// when followed by "/", "?", "#", a quote, "<", whitespace or the end; `replacement`: the
    /// gateway's own scheme and host ("http://gw.example:8080").
    init(prefixes: [[UInt8]], replacement: [UInt8]) {
        self.prefixes = prefixes.filter { !$0.isEmpty }
        self.replacement = replacement
    }

    /// Rewrites the next piece, appending what is certain to `out`.
    mutating func feed(_ piece: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        carry.append(contentsOf: piece)
        process(final: false, into: &out)
    }

    /// Flushes what was held back at the end of the body.
    mutating func finish(into out: inout [UInt8]) {
        process(final: true, into: &out)
    }

    private mutating func process(final: Bool, into out: inout [UInt8]) {
        let data = carry
        var i = 0
        var emittedUpTo = 0
        scan: while i < data.count {
            for prefix in prefixes where data[i] == prefix[0] {
                let available = data.count - i
                if available < prefix.count {
                    // Could be a match cut by the end of this piece.
                    if !final && data[i..<data.count].elementsEqual(prefix[0..<available]) { break scan }
                    continue
                }
                guard data[i..<(i + prefix.count)].elementsEqual(prefix) else { continue }
                let after = i + prefix.count
                if after == data.count && !final { break scan }   // need the next byte to decide
                if after < data.count && !Self.isBoundary(data[after]) { continue }
                out.append(contentsOf: data[emittedUpTo..<i])
                out.append(contentsOf: replacement)
                rewrites += 1
                i = after
                emittedUpTo = after
                continue scan
            }
            i += 1
        }
        let keepFrom = final ? data.count : i
        out.append(contentsOf: data[emittedUpTo..<keepFrom])
        carry = Array(data[keepFrom...])
    }

    private static func isBoundary(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "/"), UInt8(ascii: "?"), UInt8(ascii: "#"), UInt8(ascii: "\""), UInt8(ascii: "'"),
             UInt8(ascii: "<"), UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n"):
            return true
        default:
            return false
        }
    }
}
