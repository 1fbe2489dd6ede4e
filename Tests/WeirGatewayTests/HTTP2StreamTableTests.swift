import Testing
@testable import WeirGateway

private final class Entry: HTTP2Identified {
    let id: Int32
    init(_ id: Int32) { self.id = id }
}

@Suite struct HTTP2StreamTableTests {
    /// The table against a Dictionary under a long mix of inserts and removals, with more streams
    /// open than it is sized for and long-lived ones overtaken by later ones (both through the side table).
    @Test func behavesLikeADictionary() {
        var table = HTTP2StreamTable<Entry>(concurrent: 8)
        var model: [Int32: Entry] = [:]
        var next: Int32 = 1
        var rng = SystemRandomNumberGenerator()
        for step in 0..<20_000 {
            let open = model.count < 3 || (model.count < 150 && Bool.random(using: &rng))
            if open {
                let e = Entry(next)
                next += 2
                table.insert(e)
                model[e.id] = e
            } else {
                // mostly the oldest (streams finish roughly in order), sometimes any
                let id = step % 5 == 0 ? model.keys.randomElement(using: &rng)! : model.keys.min()!
                #expect(table.remove(id) === model.removeValue(forKey: id))
            }
            #expect(table.count == model.count)
            if step % 97 == 0 {
                for (id, e) in model { #expect(table[id] === e) }
                #expect(table[next] == nil && table[next - 1] == nil)
                #expect(Set(table.all.map(\.id)) == Set(model.keys))
            }
        }
        #expect(table.remove(next) == nil)
        table.removeAll()
        #expect(table.isEmpty && table.all.isEmpty && table[1] == nil)
    }
}
