// libFuzzer target: the chunked body reader on arbitrary bytes (a request or response body).
//
// The input is driven through the reader the way the gateway drives it (step, consume what the step
// says, re-step), once with the whole input buffered and once arriving in pseudo-random pieces with
// the data consumed in pseudo-random slices. Invariants beyond "never crash":
// - the reader never tells the caller to consume more than is buffered, so what is forwarded is always
//   a prefix of the input: framing + data consumed ≤ input length;
// - it never tells the caller to forward a byte it has not accepted: when it fails, everything
//   forwarded so far lies before the error's offset;
// - done / failed are final (the next step says done(0) / an error at the same offset);
// - arrival in pieces and consumption in slices change nothing: same data, same end, same error;
// - a stricter trailer limit only ever turns a result into an error;
// - the decoded data re-chunked (pseudo-random chunk sizes) decodes to the same data.
//
// `Reader` adapts the type under test; to fuzz another body reader (e.g. WeirHTTP's BodyReader),
// change only `Reader`.
import WeirHTTP

/// The body reader under test behind the three calls the driver needs.
struct Reader {
    var decoder: ChunkedDecoder

    init(maxTrailerBytes: Int) { decoder = ChunkedDecoder(maxTrailerBytes: maxTrailerBytes) }

    /// What the reader says about `buffer` (the unconsumed bytes, starting where the last step ended).
    mutating func step(_ buffer: UnsafeRawBufferPointer) -> ChunkedDecoder.Step { decoder.step(buffer) }

    /// Reports that `k` bytes of data from the last `.data` step were consumed.
    mutating func consumedData(_ k: Int) { decoder.consumedData(k) }
}

/// How one drive of the reader over the input ended.
struct Outcome: Equatable {
    /// Bytes the caller consumed (framing and data): always `input[0..<consumed]`.
    var consumed = 0
    /// The de-chunked data.
    var data: [UInt8] = []
    /// Body length when the reader said done.
    var end: Int?
    var error: HTTPParseError?
}

/// Drives a fresh reader over `input`. `arrivals` are the buffered lengths after each read (increasing,
/// ending at input.count); `slice` gives how much of the offered data the caller takes at once.
func drive(_ input: [UInt8], maxTrailerBytes: Int, arrivals: [Int], slice: (Int) -> Int) -> Outcome {
    var reader = Reader(maxTrailerBytes: maxTrailerBytes)
    var out = Outcome()
    var nextArrival = 0
    var available = arrivals.first ?? input.count
    var steps = 0
    input.withUnsafeBytes { all in
        while true {
            steps += 1
            require(steps <= 4 * input.count + 16, "reader makes no progress at \(out.consumed) of \(input.count)")
            let buffered = available - out.consumed
            let buffer = UnsafeRawBufferPointer(rebasing: all[out.consumed..<available])
            switch reader.step(buffer) {
            case .needMore:
                nextArrival += 1
                if nextArrival >= arrivals.count { return }
                available = arrivals[nextArrival]
            case .framing(let n):
                require(n > 0 && n <= buffered, "framing(\(n)) with \(buffered) bytes buffered")
                out.consumed += n
            case .data(let n):
                require(n > 0 && buffered > 0, "data(\(n)) with \(buffered) bytes buffered")
                let k = Swift.max(1, Swift.min(n, buffered, slice(n)))
                out.data += input[out.consumed..<(out.consumed + k)]
                out.consumed += k
                reader.consumedData(k)
            case .done(let n):
                require(n > 0 && n <= buffered, "done(\(n)) with \(buffered) bytes buffered")
                out.consumed += n
                out.end = out.consumed
                let rest = UnsafeRawBufferPointer(rebasing: all[out.consumed..<available])
                require(reader.step(rest) == .done(0), "a step after done is not done(0)")
                return
            case .error(let e):
                require(e.status == 400 && !e.reason.isEmpty, "unexpected error \(e)")
                require(e.offset >= out.consumed && e.offset <= available,
                        "error at \(e.offset) but \(out.consumed) bytes already forwarded, \(available) buffered: \(e)")
                out.error = e
                // Failed is final: an error again, at the same offset (the decoder keeps no reason text).
                if case .error(let again) = reader.step(buffer) {
                    require(again.status == 400 && again.offset == e.offset, "a step after an error moved it: \(e) then \(again)")
                } else {
                    require(false, "a step after an error is not an error")
                }
                return
            }
        }
    }
    return out
}

func whole(_ input: [UInt8], maxTrailerBytes: Int) -> Outcome {
    drive(input, maxTrailerBytes: maxTrailerBytes, arrivals: [input.count], slice: { $0 })
}

func pieces(_ input: [UInt8], maxTrailerBytes: Int, rng: inout SplitMix64) -> Outcome {
    var arrivals = splitPoints(count: input.count, rng: &rng, samples: 24).filter { $0 > 0 }
    arrivals.append(input.count)
    var r = rng
    let outcome = drive(input, maxTrailerBytes: maxTrailerBytes, arrivals: arrivals, slice: { n in r.next(in: 1...Swift.min(n, 64)) })
    rng = r
    return outcome
}

func describe(_ o: Outcome) -> String {
    "consumed \(o.consumed), data \(o.data.count) bytes, end \(o.end.map(String.init) ?? "-"), error \(o.error.map { "\($0)" } ?? "-")"
}

/// `data` in chunks of pseudo-random sizes, lower- or upper-case hex, then the last chunk.
func rechunk(_ data: [UInt8], rng: inout SplitMix64) -> [UInt8] {
    var out: [UInt8] = []
    var i = 0
    while i < data.count {
        let n = Swift.min(data.count - i, rng.next(in: 1...512))
        out += Array(String(n, radix: 16, uppercase: rng.next() & 1 == 0).utf8) + [13, 10] + data[i..<(i + n)] + [13, 10]
        i += n
    }
    return out + Array("0\r\n\r\n".utf8)
}

let defaultTrailerBytes = ChunkedDecoder().maxTrailerBytes
let smallTrailerBytes = 24

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChunked(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = inputBytes(data, size)
    var rng = SplitMix64(seededBy: input)
    let a = whole(input, maxTrailerBytes: defaultTrailerBytes)
    let b = pieces(input, maxTrailerBytes: defaultTrailerBytes, rng: &rng)
    require(a == b, "arriving in pieces changes the outcome: whole \(describe(a)) vs pieces \(describe(b)) for \(show(input))")
    let small = whole(input, maxTrailerBytes: smallTrailerBytes)
    require(small == pieces(input, maxTrailerBytes: smallTrailerBytes, rng: &rng), "pieces differ under the small trailer limit")
    if small.error == nil { require(small == a, "small trailer limit accepts differently: \(describe(small)) vs \(describe(a))") }
    if let end = a.end {
        require(end <= input.count && a.consumed == end, "done at \(end) but consumed \(a.consumed)")
        let again = rechunk(a.data, rng: &rng)
        let c = whole(again, maxTrailerBytes: defaultTrailerBytes)
        require(c.end == again.count && c.data == a.data, "re-chunked data decodes differently: \(describe(c))")
    }
    return 0
}
