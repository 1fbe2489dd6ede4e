// libFuzzer target: the PROXY protocol header parser (v1 and v2) on arbitrary bytes, as the gateway
// feeds it: every byte received so far, again each time more arrive. Invariants beyond "never crash":
// - a complete header consumes at most the input and at most `maxHeaderBytes` (v1: at most 107);
// - the answer depends only on the header's bytes: every prefix shorter than a complete header asks for
//   more, and every longer input gives the same header and length;
// - an error is final (more bytes never turn it into a header), and asking for more is only ever
//   answered for a valid beginning (every prefix of it asks for more too);
// - a header with addresses is written back (v1 and v2) and parses to the same addresses.
import WeirHTTP

func parse(_ bytes: ArraySlice<UInt8>) -> ProxyParseResult {
    bytes.withUnsafeBytes { ProxyProtocolParser.parse($0) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProxyHeader(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = inputBytes(data, size)
    let whole = parse(input[...])
    var rng = SplitMix64(seededBy: input)
    // A few prefixes (all of them for short inputs).
    let cuts = input.count <= 64 ? Array(0..<input.count) : (0..<32).map { _ in Int(rng.next() % UInt64(input.count)) }
    switch whole {
    case .complete(let header, let consumed):
        require(consumed > 0 && consumed <= input.count && consumed <= ProxyProtocolParser.maxHeaderBytes,
                "consumed \(consumed) of \(input.count)")
        if input.first == UInt8(ascii: "P") { require(consumed <= ProxyProtocolParser.maxV1Bytes, "v1 of \(consumed) bytes") }
        for cut in cuts {
            let part = parse(input[..<cut])
            if cut < consumed { require(part == .needMore, "prefix \(cut) of a \(consumed)-byte header: \(part) for \(show(input))") }
            else { require(part == whole, "prefix \(cut) differs: \(part) vs \(whole)") }
        }
        if case .proxied(let source, let destination) = header {
            for version in [ProxyHeaderWriter.Version.v1, .v2] {
                let written = ProxyHeaderWriter.header(version, source: source, destination: destination)
                let again = parse(written[...])
                require(again == .complete(header, consumed: written.count), "\(version) round trip: \(again) for \(header)")
            }
        }
    case .needMore:
        for cut in cuts { require(parse(input[..<cut]) == .needMore, "prefix \(cut) of a valid beginning is not") }
    case .error:
        var longer = input
        longer.append(contentsOf: [0x0D, 0x0A, 0x00, 0x41])
        if case .error = parse(longer[...]) {} else { require(false, "an error became \(parse(longer[...])) with more bytes") }
    }
    return 0
}
