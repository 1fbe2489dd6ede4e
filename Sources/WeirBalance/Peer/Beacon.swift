/// One peer's report to its group: who it is, how loaded, what it serves, which addresses it owns
/// and holds. Sent over UDP every `interval`; the beacon is also the heartbeat.
public struct Beacon: Sendable, Equatable {
    /// The sender's member id (1...64 bytes of [A-Za-z0-9._-]).
    public var sender: String
    /// The sender's start time in unix ms: a restarted sender has a larger one (see `ReplayGuard`).
    public var incarnation: UInt64
    /// Counts up from 0 within one incarnation.
    public var sequence: UInt64
    /// Wall-clock send time, unix ms (checked against the receiver's clock, see `ReplayGuard`).
    public var sentAtMs: Int64
    /// In-flight requests / capacity (0 = idle, 1 = at capacity; may exceed 1).
    public var load: Double
    /// Concurrent requests its app is meant to carry (1...1_000_000).
    public var capacity: Int
    /// The local app's condition.
    public var state: ServerCondition
    /// Path patterns it serves ("/banking/*", "/api/"); empty = every path.
    public var serves: [String]
    /// Its own service addresses, CIDR text ("198.51.100.1/24").
    public var addresses: [String]
    /// Addresses it holds for others right now, CIDR text.
    public var holding: [String]
    /// Member ids whose addresses it may assume.
    public var standsInFor: [String]
    /// A gateway sharing its register of users (`[group] share_users`): its confirmed users per
    /// server id. Empty for peers (the datagram is then version 1, as before).
    public var users: [UserCount]
    /// A gateway sharing its load (`[group] share_load`): its requests in flight per server id
    /// (summed over its workers; servers with none are left out). Non-empty → version 3.
    public var inFlight: [ServerCount]

    /// Requests one gateway instance has in flight to one server (same shape as `UserCount`).
    public typealias ServerCount = UserCount

    /// Users one gateway instance counts on one server.
    public struct UserCount: Sendable, Equatable {
        public var server: String
        public var count: Int
        public init(server: String, count: Int) {
            self.server = server
            self.count = count
        }
    }

    public init(sender: String, incarnation: UInt64, sequence: UInt64, sentAtMs: Int64, load: Double,
                capacity: Int, state: ServerCondition, serves: [String] = [], addresses: [String] = [],
                holding: [String] = [], standsInFor: [String] = [], users: [UserCount] = [],
                inFlight: [ServerCount] = []) {
        self.users = users
        self.inFlight = inFlight
        self.sender = sender
        self.incarnation = incarnation
        self.sequence = sequence
        self.sentAtMs = sentAtMs
        self.load = load
        self.capacity = capacity
        self.state = state
        self.serves = serves
        self.addresses = addresses
        self.holding = holding
        self.standsInFor = standsInFor
    }
}

/// The beacon datagram, version 1. All integers big-endian; every text is length-prefixed by one
/// byte and made of printable ASCII (0x21...0x7E); lists are prefixed by a one-byte count.
///
///     offset size
///      0     3   magic "WRB"
///      3     1   version (1)
///      4     8   incarnation   UInt64
///     12     8   sequence      UInt64
///     20     8   sentAtMs      Int64 (two's complement)
///     28     8   load          Float64 bits (IEEE 754); finite, 0...maximumLoad
///     36     4   capacity      UInt32, 1...1_000_000
///     40     1   state         ServerCondition raw value (0 up, 1 drain, 2 down, 3 maint)
///     41     1+n sender        id, 1...64 bytes of [A-Za-z0-9._-]
///      …     1+… serves        ≤ 32 paths, each 1...128 bytes
///      …     1+… addresses     ≤ 16 CIDR texts, each 1...49 bytes
///      …     1+… holding       ≤ 16 CIDR texts, each 1...49 bytes
///      …     1+… standsInFor   ≤ 32 ids, each as `sender`
///      …     1+… users         version 2 only: ≤ 64 entries, each a server id (1...64 printable
///                              bytes, length-prefixed) and a UInt32 count ≤ maximumUserCount
///      …     1+… inFlight      version 3 only: ≤ 64 entries, as `users` (the users list may
///                              then be empty: count 0)
///     end-32 32  HMAC-SHA256 (the caller's `mac`) over every byte before it
///
/// Version 2 is version 1 with the `users` list appended; `encode` writes version 1 whenever
/// `users` is empty (every peer's beacon), so members built before version 2 still read peers'
/// beacons, and only gateways sharing users (to each other) send version 2.
///
/// Version 3 is version 2 with the `inFlight` list appended (and a `users` list that may be empty);
/// `encode` writes it only when `inFlight` is non-empty (a gateway with `share_load` and requests in
/// flight). A build that reads only versions 1 and 2 refuses version 3 as `unsupportedVersion`
/// (counted as "unsupported_version" and logged): it hears nothing of that gateway, neither users
/// nor liveness, while that gateway has requests in flight. So turn `share_load` on only once every
/// gateway of the group runs a build that reads version 3.
///
/// The whole datagram is at most `maximumSize` bytes (fits a 1500-byte Ethernet MTU with room for
/// IPv6 + UDP headers). Not every combination of the per-field limits fits in it: `problem(with:)`
/// says whether a beacon can be encoded.
///
/// Encoding: the static fields (sender, capacity, serves, addresses, standsInFor — they come from
/// the configuration) are checked with a precondition, so check them once at start with
/// `problem(with:)`; the run-time fields are clipped: `load` into 0...maximumLoad (NaN counts as
/// `maximumLoad`: "do not send me work"), `holding` loses trailing entries that break a limit or
/// do not fit, and so does `users` (after `holding`; counts above `maximumUserCount` are clipped). So `encode` never produces a datagram `decode` refuses.
///
/// Decoding checks, in order: size (> maximumSize → tooLarge), the fixed minimum (→ truncated),
/// magic, version, then the MAC (constant-time), and only then the fields of the authenticated body
/// (a length that runs past the end → truncated; any other broken rule or a trailing byte → malformed).
public enum BeaconCodec {
    /// Why a datagram was refused; each has a human description for logs and counters.
    public enum Rejection: Error, Equatable, CustomStringConvertible, Sendable {
        case truncated, badMagic, unsupportedVersion, malformed, tooLarge, badMAC

        public var description: String {
            switch self {
            case .truncated: "truncated beacon (shorter than its fields say)"
            case .badMagic: "not a beacon (magic is not \"WRB\")"
            case .unsupportedVersion: "unsupported beacon version (this build reads versions \(BeaconCodec.version) to \(BeaconCodec.loadVersion))"
            case .malformed: "malformed beacon (a field breaks its rule)"
            case .tooLarge: "beacon larger than \(BeaconCodec.maximumSize) bytes"
            case .badMAC: "beacon MAC does not match (wrong group secret, or altered)"
            }
        }
    }

    public static let maximumSize = 1400
    public static let version: UInt8 = 1
    /// The version whose beacons carry `users` (a gateway sharing its register).
    public static let usersVersion: UInt8 = 2
    /// The version whose beacons carry `inFlight` (a gateway sharing its load).
    public static let loadVersion: UInt8 = 3
    public static let magic: [UInt8] = Array("WRB".utf8)
    public static let macSize = 32
    /// Bytes before the sender field.
    static let fixedHeaderSize = 41

    /// Limits (documented in the layout above).
    public static let maximumIDBytes = 64
    public static let maximumPaths = 32
    public static let maximumPathBytes = 128
    public static let maximumAddresses = 16
    public static let maximumAddressBytes = 49      // "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128" is 49
    public static let maximumStandsInFor = 32
    public static let maximumCapacity = 1_000_000
    public static let maximumLoad = 1_000_000.0
    public static let maximumUserEntries = 64
    public static let maximumUserCount = 100_000_000

    /// The smallest datagram that can be a beacon: header, a 1-byte sender, four empty lists, the MAC.
    public static let minimumSize = fixedHeaderSize + 2 + 4 + macSize

    // MARK: encode

    /// Why `beacon` cannot be encoded (its static fields), or nil when it can. Call it at start on the
    /// beacon the configuration implies (with `holding` empty): `encode` traps on what this refuses.
    public static func problem(with beacon: Beacon) -> String? {
        if !isID(beacon.sender) { return "sender id must be 1...\(maximumIDBytes) bytes of [A-Za-z0-9._-]" }
        if !(1...maximumCapacity).contains(beacon.capacity) { return "capacity must be 1...\(maximumCapacity)" }
        if beacon.serves.count > maximumPaths { return "at most \(maximumPaths) served paths" }
        if let bad = beacon.serves.first(where: { !isText($0, maximumPathBytes) }) { return "served path \"\(bad)\" must be 1...\(maximumPathBytes) printable ASCII bytes" }
        if beacon.addresses.count > maximumAddresses { return "at most \(maximumAddresses) addresses" }
        if let bad = beacon.addresses.first(where: { !isText($0, maximumAddressBytes) }) { return "address \"\(bad)\" must be 1...\(maximumAddressBytes) printable ASCII bytes" }
        if beacon.standsInFor.count > maximumStandsInFor { return "at most \(maximumStandsInFor) members to stand in for" }
        if let bad = beacon.standsInFor.first(where: { !isID($0) }) { return "member id \"\(bad)\" must be 1...\(maximumIDBytes) bytes of [A-Za-z0-9._-]" }
        var empty = beacon
        empty.holding = []
        empty.users = []
        empty.inFlight = []
        if size(of: empty) > maximumSize { return "the beacon would be \(size(of: empty)) bytes, more than \(maximumSize): fewer or shorter paths, addresses or members" }
        return nil
    }

    /// The datagram for `beacon`, MAC appended. Preconditions `problem(with:) == nil`; clips `load`
    /// and `holding` (see the type's comment).
    public static func encode(_ beacon: Beacon, mac: ([UInt8]) -> [UInt8]) -> [UInt8] {
        if let problem = problem(with: beacon) { preconditionFailure("beacon cannot be encoded: \(problem)") }
        let clipped = clip(beacon)
        var out: [UInt8] = []
        out.reserveCapacity(size(of: clipped))
        out += magic
        out.append(!clipped.inFlight.isEmpty ? loadVersion : clipped.users.isEmpty ? version : usersVersion)
        append(clipped.incarnation, to: &out)
        append(clipped.sequence, to: &out)
        append(UInt64(bitPattern: clipped.sentAtMs), to: &out)
        append(clipped.load.bitPattern, to: &out)
        append32(UInt32(clipped.capacity), to: &out)
        out.append(clipped.state.rawValue)
        appendText(clipped.sender, to: &out)
        for list in [clipped.serves, clipped.addresses, clipped.holding, clipped.standsInFor] {
            out.append(UInt8(list.count))
            for item in list { appendText(item, to: &out) }
        }
        let lists = !clipped.inFlight.isEmpty ? [clipped.users, clipped.inFlight] : clipped.users.isEmpty ? [] : [clipped.users]
        for list in lists {
            out.append(UInt8(list.count))
            for entry in list {
                appendText(entry.server, to: &out)
                append32(UInt32(entry.count), to: &out)
            }
        }
        let tag = mac(out)
        precondition(tag.count == macSize, "mac must return \(macSize) bytes (HMAC-SHA256)")
        return out + tag
    }

    /// `beacon` with its run-time fields brought within the limits.
    static func clip(_ beacon: Beacon) -> Beacon {
        var clipped = beacon
        clipped.load = beacon.load.isNaN ? maximumLoad : min(max(beacon.load, 0), maximumLoad)
        clipped.holding = []
        clipped.users = []
        clipped.inFlight = []
        var room = maximumSize - size(of: clipped)
        for address in beacon.holding where clipped.holding.count < maximumAddresses && isText(address, maximumAddressBytes) {
            let cost = 1 + address.utf8.count
            if cost > room { break }
            clipped.holding.append(address)
            room -= cost
        }
        clipped.users = clippedCounts(beacon.users, room: &room)
        clipped.inFlight = clippedCounts(beacon.inFlight, room: &room)
        return clipped
    }

    /// The per-server counts (users, or requests in flight) that fit in `room` bytes after their
    /// count byte, each clamped to 0...maximumUserCount; `room` is reduced by what they take.
    private static func clippedCounts(_ entries: [Beacon.ServerCount], room: inout Int) -> [Beacon.ServerCount] {
        room -= 1   // the list's count byte
        var kept: [Beacon.ServerCount] = []
        for entry in entries where kept.count < maximumUserEntries && isText(entry.server, maximumIDBytes) {
            let cost = 1 + entry.server.utf8.count + 4
            if cost > room { break }
            kept.append(Beacon.ServerCount(server: entry.server, count: min(max(entry.count, 0), maximumUserCount)))
            room -= cost
        }
        return kept
    }

    /// Encoded size in bytes, MAC included (for a beacon within the per-field limits).
    static func size(of beacon: Beacon) -> Int {
        let texts = [beacon.serves, beacon.addresses, beacon.holding, beacon.standsInFor].reduce(0) { sum, list in
            sum + 1 + list.reduce(0) { $0 + 1 + $1.utf8.count }
        }
        let entries = { (list: [Beacon.UserCount]) in 1 + list.reduce(0) { $0 + 1 + $1.server.utf8.count + 4 } }
        let users = !beacon.inFlight.isEmpty ? entries(beacon.users) + entries(beacon.inFlight)
            : beacon.users.isEmpty ? 0 : entries(beacon.users)
        return fixedHeaderSize + 1 + beacon.sender.utf8.count + texts + users + macSize
    }

    private static func append(_ value: UInt64, to out: inout [UInt8]) {
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    private static func append32(_ value: UInt32, to out: inout [UInt8]) {
        for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    private static func appendText(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(text.utf8.count))
        out += text.utf8
    }

    // MARK: decode

    /// The beacon in `datagram`, or why it is refused. The caller must still refuse senders that are
    /// not members (before `ReplayGuard`), and check freshness with `ReplayGuard.admit`.
    public static func decode(_ datagram: [UInt8], mac: ([UInt8]) -> [UInt8]) -> Result<Beacon, Rejection> {
        if datagram.count > maximumSize { return .failure(.tooLarge) }
        if datagram.count < minimumSize { return .failure(.truncated) }
        if !datagram[0..<3].elementsEqual(magic) { return .failure(.badMagic) }
        if !(version...loadVersion).contains(datagram[3]) { return .failure(.unsupportedVersion) }
        let bodyEnd = datagram.count - macSize
        let body = Array(datagram[0..<bodyEnd])
        let expected = mac(body)
        guard expected.count == macSize, constantTimeEqual(expected, datagram[bodyEnd...]) else { return .failure(.badMAC) }
        var reader = Reader(bytes: body, position: 4, bodyVersion: datagram[3])
        return reader.beacon()
    }

    /// Compares two byte sequences of equal length without an early exit (no timing hint of where
    /// they differ). Different lengths compare unequal.
    public static func constantTimeEqual<A: Collection<UInt8>, B: Collection<UInt8>>(_ a: A, _ b: B) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }

    /// Member ids: 1...64 bytes of [A-Za-z0-9._-] (URL-safe, no separators HopToken or logs use besides ".").
    public static func isID(_ id: String) -> Bool {
        let bytes = id.utf8
        return (1...maximumIDBytes).contains(bytes.count) && bytes.allSatisfy(isIDByte)
    }

    static func isIDByte(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"): true
        default: false
        }
    }

    static func isText(_ text: String, _ maximum: Int) -> Bool {
        let bytes = text.utf8
        return (1...maximum).contains(bytes.count) && bytes.allSatisfy { (0x21...0x7E).contains($0) }
    }

    /// Reads the authenticated body field by field.
    private struct Reader {
        let bytes: [UInt8]
        var position: Int
        /// 2: a `users` list follows `standsInFor`; 3: a `users` list (maybe empty), then `inFlight`.
        let bodyVersion: UInt8

        mutating func beacon() -> Result<Beacon, Rejection> {
            do throws(Rejection) {
                let incarnation = try integer(8)
                let sequence = try integer(8)
                let sentAtMs = Int64(bitPattern: try integer(8))
                let load = Double(bitPattern: try integer(8))
                let capacity = Int(try integer(4))
                guard let state = ServerCondition(rawValue: UInt8(try integer(1))) else { throw Rejection.malformed }
                guard load.isFinite, (0...BeaconCodec.maximumLoad).contains(load),
                      (1...BeaconCodec.maximumCapacity).contains(capacity) else { throw Rejection.malformed }
                let sender = try text(maximum: BeaconCodec.maximumIDBytes, id: true)
                let serves = try list(count: BeaconCodec.maximumPaths, bytes: BeaconCodec.maximumPathBytes)
                let addresses = try list(count: BeaconCodec.maximumAddresses, bytes: BeaconCodec.maximumAddressBytes)
                let holding = try list(count: BeaconCodec.maximumAddresses, bytes: BeaconCodec.maximumAddressBytes)
                let standsInFor = try list(count: BeaconCodec.maximumStandsInFor, bytes: BeaconCodec.maximumIDBytes, id: true)
                let users = bodyVersion >= BeaconCodec.usersVersion ? try userCounts(allowEmpty: bodyVersion == BeaconCodec.loadVersion) : []
                let inFlight = bodyVersion == BeaconCodec.loadVersion ? try userCounts(allowEmpty: false) : []
                guard position == bytes.count else { throw Rejection.malformed }
                return .success(Beacon(sender: sender, incarnation: incarnation, sequence: sequence, sentAtMs: sentAtMs,
                                       load: load, capacity: capacity, state: state, serves: serves,
                                       addresses: addresses, holding: holding, standsInFor: standsInFor, users: users,
                                       inFlight: inFlight))
            } catch {
                return .failure(error)
            }
        }

        mutating func take(_ count: Int) throws(Rejection) -> ArraySlice<UInt8> {
            guard count <= bytes.count - position else { throw .truncated }
            defer { position += count }
            return bytes[position..<(position + count)]
        }

        mutating func integer(_ width: Int) throws(Rejection) -> UInt64 {
            try take(width).reduce(0) { $0 << 8 | UInt64($1) }
        }

        mutating func text(maximum: Int, id: Bool = false) throws(Rejection) -> String {
            let length = Int(try integer(1))
            let raw = try take(length)
            guard (1...maximum).contains(length),
                  raw.allSatisfy({ id ? BeaconCodec.isIDByte($0) : (0x21...0x7E).contains($0) }) else { throw .malformed }
            return String(decoding: raw, as: UTF8.self)
        }

        /// A list of counts per server (`users`, `inFlight`): at least one entry unless `allowEmpty`
        /// (version 3's `users`; an empty list is otherwise written as a lower version).
        mutating func userCounts(allowEmpty: Bool) throws(Rejection) -> [Beacon.UserCount] {
            let count = Int(try integer(1))
            guard ((allowEmpty ? 0 : 1)...BeaconCodec.maximumUserEntries).contains(count) else { throw .malformed }
            var entries: [Beacon.UserCount] = []
            for _ in 0..<count {
                let server = try text(maximum: BeaconCodec.maximumIDBytes)
                let users = Int(try integer(4))
                guard users <= BeaconCodec.maximumUserCount else { throw .malformed }
                entries.append(Beacon.UserCount(server: server, count: users))
            }
            return entries
        }

        mutating func list(count maximumCount: Int, bytes maximum: Int, id: Bool = false) throws(Rejection) -> [String] {
            let count = Int(try integer(1))
            guard count <= maximumCount else { throw .malformed }
            var items: [String] = []
            items.reserveCapacity(count)
            for _ in 0..<count { items.append(try text(maximum: maximum, id: id)) }
            return items
        }
    }
}
