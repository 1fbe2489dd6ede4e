/// Marks a request one peer sends on to another, so the receiver processes it locally instead of
/// balancing it again (one hop at most). The token is `<sender>.<unix seconds>.<MAC>`, where the MAC
/// is the first 16 bytes of `mac("weir-hop|<sender>|<seconds>")` in base64url: only characters
/// [A-Za-z0-9._-], so it fits a request header (proxy routing) and a `weir-hop=` query parameter
/// (redirect routing) without escaping. It is valid for ±`maximumAgeSeconds`; within that window it
/// can be replayed, which only makes a request be processed where it lands.
public enum HopToken {
    public static let maximumAgeSeconds: Int64 = 30
    public static let headerName = "weir-hop"
    public static let queryName = "weir-hop"

    /// A token for `sender` (a member id) at wall time `nowWallMs`.
    public static func make(sender: String, nowWallMs: Int64, mac: ([UInt8]) -> [UInt8]) -> String {
        let seconds = floorSeconds(nowWallMs)
        return "\(sender).\(seconds).\(tag(sender: sender, seconds: seconds, mac: mac))"
    }

    /// The sender of a valid `token`: a member (`isMember`), the MAC matches, and its time is within
    /// `maximumAgeSeconds` of `nowWallMs`. Nil otherwise.
    public static func verify(_ token: String, isMember: (String) -> Bool, nowWallMs: Int64,
                              mac: ([UInt8]) -> [UInt8]) -> String? {
        let bytes = Array(token.utf8)
        guard bytes.count <= BeaconCodec.maximumIDBytes + 64,
              let macDot = bytes.lastIndex(of: UInt8(ascii: ".")),
              let timeDot = bytes[..<macDot].lastIndex(of: UInt8(ascii: ".")) else { return nil }
        let sender = String(decoding: bytes[..<timeDot], as: UTF8.self)
        let digits = bytes[(timeDot + 1)..<macDot]
        guard BeaconCodec.isID(sender), isMember(sender),
              (1...19).contains(digits.count), digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
              let seconds = Int64(String(decoding: digits, as: UTF8.self)),
              (seconds - floorSeconds(nowWallMs)).magnitude <= UInt64(maximumAgeSeconds) else { return nil }
        let expected = tag(sender: sender, seconds: seconds, mac: mac)
        guard BeaconCodec.constantTimeEqual(Array(expected.utf8), bytes[(macDot + 1)...]) else { return nil }
        return sender
    }

    private static func tag(sender: String, seconds: Int64, mac: ([UInt8]) -> [UInt8]) -> String {
        Base64URL.encode(Array(mac(Array("weir-hop|\(sender)|\(seconds)".utf8)).prefix(16)))
    }

    private static func floorSeconds(_ ms: Int64) -> Int64 { ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000) }
}
