import Testing
@testable import WeirConfig

/// `[group] share_load` (issue 15, the shared view of load between gateways).
@Suite struct LoadSharingConfigTests {
    static let group = UserSharingConfigTests.group.replacingOccurrences(of: "share_users = true\n", with: "share_load = true\n")

    @Test func defaultIsOffAndTrueIsRead() throws {
        let on = try #require(parse([("a.toml", baseTOML + Self.group)]).group)
        #expect(on.shareLoad && !on.shareUsers)
        let off = try #require(parse([("a.toml", baseTOML + UserSharingConfigTests.group)]).group)
        #expect(!off.shareLoad)
    }

    @Test func errorsNameTheKey() {
        let noID = errorLines([("a.toml", baseTOML + Self.group.replacingOccurrences(of: "id = \"gw-a\"\n", with: ""))])
        #expect(noID.count == 1 && noID[0].contains("share_load") && noID[0].contains("needs this gateway's id"), "\(noID)")
        let notBool = errorLines([("a.toml", baseTOML + Self.group.replacingOccurrences(of: "share_load = true", with: "share_load = \"yes\""))])
        #expect(notBool.count == 1 && notBool[0].contains("share_load"), "\(notBool)")
        let onAPeer = errorLines([("a.toml", peerTOML.replacingOccurrences(of: "[group]\n", with: "[group]\nshare_load = true\nid = \"gw-x\"\n"))])
        #expect(onAPeer.count == 1 && onAPeer[0].contains("share_load is for gateways"), "\(onAPeer)")
    }
}
