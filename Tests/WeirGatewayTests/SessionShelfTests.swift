import Testing
@testable import WeirGateway

/// The worker's shelf of ended sessions' buffers (action list, server head, client address bytes).
@Suite struct SessionShelfTests {
    private func address(_ a: [UInt8]) -> UnsafeRawPointer? { a.withUnsafeBytes { $0.baseAddress } }

    @Test func aKeptByteArrayServesTheNextSessionEmptiedWithItsMemory() {
        var shelf = SessionShelf()
        var head = shelf.takeBytes()
        #expect(head.capacity == 0)   // nothing kept yet: a new empty array
        head.append(contentsOf: Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
        let memory = address(head)
        shelf.keep(&head)
        #expect(head.isEmpty && head.capacity == 0)   // taken from the session, not copied
        #expect(shelf.keptCounts.byteArrays == 1)
        let next = shelf.takeBytes()
        #expect(next.isEmpty && next.capacity >= 27 && address(next) == memory)
        #expect(shelf.keptCounts.byteArrays == 0)
    }

    @Test func emptyLargeAndSurplusByteArraysAreNotKept() {
        var shelf = SessionShelf()
        var empty: [UInt8] = []
        shelf.keep(&empty)   // no memory to keep
        var large = [UInt8](repeating: 1, count: SessionShelf.maxBytesKept + 1)
        shelf.keep(&large)   // a huge head's buffer is not pinned
        #expect(shelf.keptCounts.byteArrays == 0)
        for _ in 0..<(2 * SessionShelf.count + 5) {
            var bytes: [UInt8] = [1, 2, 3]
            shelf.keep(&bytes)
        }
        #expect(shelf.keptCounts.byteArrays == 2 * SessionShelf.count)
    }

    @Test func aKeptActionListServesTheNextSessionEmptied() {
        var shelf = SessionShelf()
        var actions = shelf.takeActions()
        actions.append(.dropClient(5))
        actions.append(.sendInterimHead)
        shelf.keep(&actions)   // not cleared first: keep empties it
        #expect(actions.count == 0 && shelf.keptCounts.actionLists == 1)
        var next = shelf.takeActions()
        #expect(next.count == 0 && next.items.isEmpty && shelf.keptCounts.actionLists == 0)
        next.append(.readClientAgain)
        #expect(next.items == [.readClientAgain])
        for _ in 0..<(SessionShelf.count + 3) {
            var list = SessionActions()
            shelf.keep(&list)
        }
        #expect(shelf.keptCounts.actionLists == SessionShelf.count)
    }
}
