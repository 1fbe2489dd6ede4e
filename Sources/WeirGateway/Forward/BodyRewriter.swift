import WeirIO

/// Rewrites a response body on its way to the client (see `URLRewriteStream`). The body's length
/// changes, so it goes out re-chunked (HTTP/1.1 clients) or close-delimited (HTTP/1.0).
final class BodyRewriter {
    private var stream: URLRewriteStream
    /// Where the session puts the body's data bytes (framing already removed).
    let scratch = OwnedBuffer()
    private let chunked: Bool

    init(prefixes: [[UInt8]], replacement: [UInt8], chunked: Bool) {
        stream = URLRewriteStream(prefixes: prefixes, replacement: replacement)
        self.chunked = chunked
    }

    /// Rewrites what is in `scratch` and appends it to `output`; returns the bytes appended.
    func flush(into output: Buffer) -> Int {
        guard !scratch.buffer.isEmpty else { return 0 }
        var out: [UInt8] = []
        scratch.buffer.withContiguousPrefix { stream.feed($0, into: &out) }
        scratch.buffer.drainAll()
        return write(out, to: output)
    }

    /// Ends the body: what was held back, and the last chunk. Returns the bytes appended.
    func end(into output: Buffer) -> Int {
        var n = flush(into: output)
        var out: [UInt8] = []
        stream.finish(into: &out)
        n += write(out, to: output)
        if chunked {
            output.append("0\r\n\r\n")
            n += 5
        }
        return n
    }

    private func write(_ bytes: [UInt8], to output: Buffer) -> Int {
        guard !bytes.isEmpty else { return 0 }
        guard chunked else { output.append(bytes); return bytes.count }
        let size = String(bytes.count, radix: 16) + "\r\n"
        output.append(size)
        output.append(bytes)
        output.append("\r\n")
        return size.utf8.count + bytes.count + 2
    }

    /// Whether a response with `contentType` (a Content-Type value) is one of `types` (lowercased type/subtype).
    static func applies(to contentType: String, types: [String]) -> Bool {
        let bare = contentType.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return types.contains(bare)
    }
}

import Foundation
