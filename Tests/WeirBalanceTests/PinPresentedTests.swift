import Testing
@testable import WeirBalance

/// When a pin counts as presented back (the register of users counts it as a user): a valid pin
/// cookie (also at the entry point), a source address whose entry lives; never a pin just handed out.
@Suite struct PinPresentedTests {
    func presented(_ verdict: Verdict) -> Bool? {
        switch verdict {
        case .forward(_, let pin?), .redirect(_, _, let pin?):
            if case .touch(_, _, _, _, let presented)? = pin.change { return presented }
            return nil
        default: return nil
        }
    }

    @Test func cookiePinsArePresentedWhenAValidCookieComesBack() throws {
        let gateway = Asker(bankConfiguration())
        #expect(presented(gateway.ask("/bank/")) == false)                 // a new pin
        #expect(presented(gateway.ask("/bank/account")) == false)          // cookieless, deeper: new again
        let token = gateway.pinToken(server: "a", session: "s1")
        #expect(presented(gateway.ask("/bank/account", cookie: token)) == true)
        #expect(presented(gateway.ask("/bank/", cookie: token)) == true)   // the entry keeps the session
        #expect(presented(gateway.ask("/bank/account", cookie: "garbage")) == false)
        #expect(presented(gateway.ask("/bank/account", cookie: gateway.pinToken(server: "nosuch", session: "s1"))) == false)
    }

    @Test func sourcePinsArePresentedByALaterRequestFromTheSameAddress() {
        let gateway = Asker(bankConfiguration(by: .source))
        #expect(presented(gateway.ask("/bank/")) == false)
        #expect(presented(gateway.ask("/bank/account")) == true)
        #expect(presented(gateway.ask("/bank/")) == true)                  // a new entry from a known address
        #expect(presented(gateway.ask("/bank/account", client: "192.0.2.9")) == false)
    }

    @Test func anAssignmentIsNotPresentedUntilItsTokenComesBack() throws {
        let gateway = Asker(bankConfiguration())
        guard case .local(.assignment(let assignment)) = gateway.ask("/.well-known/weir/assign?path=/bank/") else {
            Issue.record("no assignment"); return
        }
        guard case .touch(_, _, _, _, let early)? = assignment.register else { Issue.record("no register change"); return }
        #expect(!early)
        #expect(presented(gateway.ask("/bank/x", cookie: try #require(assignment.token))) == true)
    }
}
