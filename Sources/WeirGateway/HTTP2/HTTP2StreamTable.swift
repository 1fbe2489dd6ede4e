/// An HTTP/2 connection's open streams by id. A client's stream ids are odd and rising, and at
/// most SETTINGS_MAX_CONCURRENT_STREAMS are open at once, so slot (id / 2) mod size, for a size of
/// at least twice that limit, is nearly always free for a new stream: a lookup is an index and a
/// compare, without the SipHash of every Dictionary operation (a few hundred instructions, several
/// times per stream). A stream whose slot is taken (an older one still open, overtaken by `size`
/// newer ones) waits in a Dictionary on the side.
struct HTTP2StreamTable<Stream: HTTP2Identified> {
    private var slots: [Stream?]
    private let mask: Int
    private var overflow: [Int32: Stream] = [:]
    private(set) var count = 0

    /// For at most `concurrent` streams open at once (more still work, through the side table).
    init(concurrent: Int) {
        var size = 16
        while size < concurrent * 2 { size <<= 1 }
        slots = Array(repeating: nil, count: size)
        mask = size - 1
    }

    var isEmpty: Bool { count == 0 }

    /// Every stream, in no particular order (a copy: the caller may change the table meanwhile).
    var all: [Stream] { slots.compactMap { $0 } + overflow.values }

    private func slot(_ id: Int32) -> Int { Int(id >> 1) & mask }

    subscript(id: Int32) -> Stream? {
        if let stream = slots[slot(id)], stream.id == id { return stream }
        return overflow.isEmpty ? nil : overflow[id]
    }

    /// Adds `stream`. Precondition: no stream with its id is in the table.
    mutating func insert(_ stream: Stream) {
        let i = slot(stream.id)
        if slots[i] == nil { slots[i] = stream } else { overflow[stream.id] = stream }
        count += 1
    }

    /// Removes and returns the stream `id`, if there.
    mutating func remove(_ id: Int32) -> Stream? {
        let i = slot(id)
        if let stream = slots[i], stream.id == id {
            slots[i] = nil
            count -= 1
            return stream
        }
        guard !overflow.isEmpty, let stream = overflow.removeValue(forKey: id) else { return nil }
        count -= 1
        return stream
    }

    mutating func removeAll() {
        for i in slots.indices { slots[i] = nil }
        overflow.removeAll()
        count = 0
    }
}

/// What an `HTTP2StreamTable` holds: an object with its stream id.
protocol HTTP2Identified: AnyObject {
    var id: Int32 { get }
}

extension HTTP2Stream: HTTP2Identified {}
