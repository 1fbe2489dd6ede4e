/// The Prometheus text exposition format (version 0.0.4), written straight into bytes: HELP and
/// TYPE lines, samples with escaped label values, histograms with cumulative buckets. Small on
/// purpose (see README "Metrics": the libraries' registries lock or dispatch per record, and a
/// scrape of 200 servers writes some 20 000 lines, so it formats numbers without Strings).
struct PrometheusText {
    enum Kind: String { case counter, gauge, histogram }

    /// A sample's value.
    enum Value {
        case int(Int64)
        case double(Double)
    }

    private(set) var bytes: [UInt8] = []

    /// An empty text with room for about `capacity` bytes.
    init(capacity: Int = 4096) { bytes.reserveCapacity(capacity) }

    /// The media type of the text (what `GET /metrics` answers with).
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// Starts family `name`: its HELP line (backslashes and line feeds escaped) and TYPE line. Every
    /// sample of the family must follow before the next family starts.
    mutating func family(_ name: String, _ kind: Kind, _ help: String) {
        append("# HELP "); append(name); bytes.append(32)
        for byte in help.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): append("\\\\")
            case 10: append("\\n")
            default: bytes.append(byte)
            }
        }
        append("\n# TYPE "); append(name); bytes.append(32); append(kind.rawValue); bytes.append(10)
    }

    /// One sample line: `name{labels,more} value`. `labels` and `more` are rendered label lists
    /// (`PrometheusText.labels`), either may be empty.
    mutating func sample(_ name: String, _ value: Value) { sample(name, [], [], value) }

    /// One sample line with one rendered label list.
    mutating func sample(_ name: String, _ labels: [UInt8], _ value: Value) { sample(name, labels, [], value) }

    mutating func sample(_ name: String, _ labels: [UInt8], _ more: [UInt8], _ value: Value) {
        append(name)
        if !labels.isEmpty || !more.isEmpty {
            bytes.append(UInt8(ascii: "{"))
            bytes += labels
            if !labels.isEmpty && !more.isEmpty { bytes.append(UInt8(ascii: ",")) }
            bytes += more
            bytes.append(UInt8(ascii: "}"))
        }
        bytes.append(32)
        switch value {
        case .int(let v): appendInteger(v)
        case .double(let v): appendDouble(v)
        }
        bytes.append(10)
    }

    /// A sample of a count (clamped to Int64).
    mutating func sample(_ name: String, _ labels: [UInt8], _ more: [UInt8] = [], count: UInt64) {
        sample(name, labels, more, .int(Int64(clamping: count)))
    }

    /// The samples of histogram `name`: `name_bucket{…,le="…"}` for every bound of `LatencyBuckets`
    /// and +Inf, cumulative, then `name_sum` (seconds) and `name_count`. `counts` are the
    /// per-bucket (not cumulative) counts, `LatencyBuckets.buckets` of them; the count is their total,
    /// so it always equals the +Inf bucket.
    mutating func histogram(_ name: String, _ labels: [UInt8], counts: [UInt64], sumMicroseconds: UInt64) {
        precondition(counts.count == LatencyBuckets.buckets)
        let bucket = name + "_bucket"
        var cumulative: UInt64 = 0
        for (i, count) in counts.enumerated() {
            cumulative &+= count
            sample(bucket, labels, Self.leLabels[i], count: cumulative)
        }
        sample(name + "_sum", labels, .double(Double(sumMicroseconds) / 1_000_000))
        sample(name + "_count", labels, count: cumulative)
    }

    /// The `le="…"` label of each bucket, rendered once.
    private static let leLabels: [[UInt8]] = (LatencyBuckets.labels + ["+Inf"]).map { labels(["le": $0]) }

    /// Renders `name="value"` pairs, in the given order, comma-separated; backslash, double quote
    /// and line feed in values are escaped as the format says. Names must be valid label names.
    static func labels(_ pairs: KeyValuePairs<String, String>) -> [UInt8] {
        var out: [UInt8] = []
        for (i, pair) in pairs.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out += pair.key.utf8
            out += "=\"".utf8
            for byte in pair.value.utf8 {
                switch byte {
                case UInt8(ascii: "\\"): out += "\\\\".utf8
                case UInt8(ascii: "\""): out += "\\\"".utf8
                case 10: out += "\\n".utf8
                default: out.append(byte)
                }
            }
            out.append(UInt8(ascii: "\""))
        }
        return out
    }

    private mutating func append(_ text: String) { bytes += text.utf8 }

    private mutating func appendInteger(_ value: Int64) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var v = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                      UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[n] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
                n += 1
            } while v > 0
            while n > 0 { n -= 1; bytes.append(buffer[n]) }
        }
    }

    private mutating func appendDouble(_ value: Double) {
        if value.isNaN { append("NaN"); return }
        if value.isInfinite { append(value > 0 ? "+Inf" : "-Inf"); return }
        if value == value.rounded(), abs(value) < 1e15 { appendInteger(Int64(value)); return }
        append(value.description)
    }
}
