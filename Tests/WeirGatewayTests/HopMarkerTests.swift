import Testing
@testable import WeirGateway

/// The hop marker of a redirect (`weir-hop` query parameter) is cut from the target before the
/// request goes to the application, whatever else the query holds.
@Suite struct HopMarkerTests {
    static func take(_ target: String) -> (path: String, token: String)? {
        HopMarker.takeParameter(from: ArraySlice(target.utf8)).map {
            (String(decoding: $0.path, as: UTF8.self), String(decoding: $0.token, as: UTF8.self))
        }
    }

    @Test func theParameterIsCutWhereverItIs() {
        #expect(Self.take("/a?weir-hop=b.1.XYZ")! == ("/a", "b.1.XYZ"))
        #expect(Self.take("/a?x=1&weir-hop=b.1.XYZ")! == ("/a?x=1", "b.1.XYZ"))
        #expect(Self.take("/a?weir-hop=b.1.XYZ&y=2")! == ("/a?y=2", "b.1.XYZ"))
        #expect(Self.take("/a?x=1&weir-hop=b.1.XYZ&y=2")! == ("/a?x=1&y=2", "b.1.XYZ"))
    }

    @Test func onlyTheFirstIsTakenAndOtherParametersStayAsTheyAre() {
        // A second one (a client's) goes on to the application unread: it is not the marker.
        #expect(Self.take("/a?weir-hop=one&weir-hop=two")! == ("/a?weir-hop=two", "one"))
        #expect(Self.take("/a?xweir-hop=1&q=%20")  == nil)
        #expect(Self.take("/a?x=weir-hop=1") == nil)
        #expect(Self.take("/a") == nil)
        #expect(Self.take("/a?") == nil)
    }

    @Test func emptyParametersAroundItAreDropped() {
        #expect(Self.take("/a?&weir-hop=t&")! == ("/a", "t"))
        #expect(Self.take("/a?weir-hop=")! == ("/a", ""))
    }
}
