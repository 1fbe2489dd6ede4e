import Foundation
import WeirBalance
import WeirConfig
import WeirGateway
import WeirIO

/// The shell of a peer group on the control thread (DESIGN §8): sends this peer's beacon to every
/// member each `interval`, runs every datagram that arrives through `BeaconIntake` (codec, MAC,
/// membership, replay guard, failure detector), writes what the beacons say into the members'
/// `ServerState`s (load, capacity, state, paths served; off-line = down), and holds or releases
/// the addresses of off-line peers by `TakeoverPlan` through an `AddressKeeper`.
///
/// Two roles: a peer (`weir peer`, `[peer]` present) does all of the above; a gateway with
/// `load_source = "beacons"` pools only listens (it takes over nothing). A gateway with
/// `[group] share_users` also sends beacons of its own, to the members with role "listener" (the
/// other gateways), carrying its confirmed users per server, and adds the other gateways' fresh
/// reports to its server list and register. With `[group] share_load` those beacons also carry its
/// requests in flight per server, and the others' fresh reports are summed into each server's
/// `remoteInFlight` (its load's in-flight term). Both through `SharedLoad`: a gateway silent for
/// dead_after intervals stops counting, and counts again with its next beacon.
/// Used on the control loop's thread only.
public final class GroupRuntime: ControlService {
    private let configuration: WeirConfiguration
    private let group: GroupSettings
    private let peer: PeerSettings?
    private let key: [UInt8]
    private let log: (String) -> Void
    private let keeper: AddressKeeper?
    /// Role-peer members (routed to) and every member (beacons go to each).
    private let peerIDs: Set<String>
    private let members: [GroupMember]
    /// Owner id → the addresses this host may assume for it (from `[[group.member]] takeover`).
    private let assume: [String: [String]]
    private let assumable: [String: InterfaceAddress]
    private let ownAddresses: [InterfaceAddress]
    /// The CIDR texts of `ownAddresses` (what this host holds as its own, not for others).
    private let ownCIDRs: Set<String>
    private let incarnation: UInt64
    private var sequence: UInt64 = 0

    private var intake: BeaconIntake
    private var lastBeacon: [String: Beacon] = [:]
    private var socket: UDPSocket?
    private var beaconTimer: LoopTimer?
    private var refreshTimer: LoopTimer?
    /// Fires at the earliest moment an on-line member's silence reaches the deadline, so that it is
    /// declared off-line then, not at the next beacon tick (up to an interval later).
    private var deadlineTimer: LoopTimer?
    private var loop: EventLoop?
    private var snapshot: RoutingSnapshot?
    private var clock: (any BalanceClock)?
    /// Member id → its server index in the snapshot (the peer pool, or beacon-fed gateway pools).
    private var serverOfMember: [String: Int] = [:]
    private var wasIsolated = false
    private var stopping = false
    /// `[group] share_users` or `share_load` on a gateway: listener members are heard, and this
    /// gateway sends too.
    private let sharing: Bool
    /// What its beacons carry and what it takes from the others': users, requests in flight.
    private let sharingUsers: Bool
    private let sharingLoad: Bool
    /// The other gateways' reports: users (`share_users`) and requests in flight (`share_load`).
    private var sharedLoad: SharedLoad
    /// Role-listener members (the other gateways, when sharing users).
    private let listenerIDs: Set<String>
    /// The register of users (set by the gateway before `start` when sharing).
    private var exchange: UserExchange?

    private var sent = 0
    private var accepted = 0
    private var refused: [String: Int] = [:]
    private var refusalsLogged = 0

    /// How often held addresses are announced again, and how many ARP replies each announcement sends.
    static let refreshMilliseconds: Int64 = 10_000
    static let announcementsAtTakeover = 3

    /// Builds the runtime for `configuration`, which has a `[group]` (precondition). `key` is the
    /// group secret's bytes; `keeper` does the address work (nil: this host takes over nothing and
    /// adds no address of its own).
    public init(configuration: WeirConfiguration, key: [UInt8], keeper: AddressKeeper?, log: @escaping (String) -> Void,
                startNanoseconds: UInt64, wallMilliseconds: Int64) {
        precondition(configuration.group != nil, "GroupRuntime needs a [group]")
        self.configuration = configuration
        group = configuration.group!
        peer = configuration.peer
        self.key = key
        self.keeper = keeper
        self.log = log
        members = group.members
        peerIDs = Set(group.members.filter { $0.role == .peer }.map(\.id))
        var assume: [String: [String]] = [:]
        var assumable: [String: InterfaceAddress] = [:]
        for member in group.members where !member.takeover.isEmpty {
            assume[member.id] = member.takeover.map(\.cidr)
            for address in member.takeover { assumable[address.cidr] = address }
        }
        self.assume = assume
        self.assumable = assumable
        ownAddresses = configuration.peer?.addresses ?? []
        ownCIDRs = Set(ownAddresses.map(\.cidr))
        incarnation = UInt64(max(0, wallMilliseconds))
        let gateway = configuration.peer == nil && group.id != nil
        sharingUsers = gateway && group.shareUsers
        sharingLoad = gateway && group.shareLoad
        let sharing = sharingUsers || sharingLoad
        self.sharing = sharing
        let (maxAge, overflow) = group.interval.weirNanoseconds.multipliedReportingOverflow(by: UInt64(max(1, group.deadAfter)))
        sharedLoad = SharedLoad(maxAgeNanoseconds: overflow ? .max : maxAge, selfID: group.id ?? "")
        listenerIDs = Set(group.members.filter { $0.role == .listener }.map(\.id))
        // Peers send beacons; a gateway that listens is heard only when gateways share their users.
        let ids = group.members.filter { $0.role == .peer || (sharing && $0.role == .listener) }.map(\.id)
        let detector = FailureDetector(members: ids, intervalNanoseconds: group.interval.weirNanoseconds,
                                       deadAfter: group.deadAfter, rise: group.rise, start: startNanoseconds)
        intake = BeaconIntake(selfID: configuration.peer?.id ?? group.id ?? "", members: Set(ids), replay: ReplayGuard(),
                              detector: detector)
    }

    private func mac(_ message: [UInt8]) -> [UInt8] { Digest.hmacSHA256(key: key, message: message) }

    /// What this gateway's beacons share, for log lines: "users", "requests in flight" or both.
    private var sharedViews: String {
        [sharingUsers ? "users" : nil, sharingLoad ? "requests in flight" : nil].compactMap { $0 }.joined(separator: " and ")
    }

    // MARK: - ControlService

    public func shareUsers(_ exchange: UserExchange) {
        if sharingUsers { self.exchange = exchange }
    }

    public func peerContext(snapshot: RoutingSnapshot) -> PeerContext? {
        guard let peer else { return nil }
        let key = self.key
        let selfID = peer.id
        let memberIDs = peerIDs
        return PeerContext(snapshot: snapshot, memberIDs: memberIDs,
            makeToken: { now in HopToken.make(sender: selfID, nowWallMs: now) { Digest.hmacSHA256(key: key, message: $0) } },
            verifyToken: { token, now in
                HopToken.verify(String(decoding: token, as: UTF8.self), isMember: { memberIDs.contains($0) }, nowWallMs: now) {
                    Digest.hmacSHA256(key: key, message: $0)
                } != nil
            })
    }

    /// Why this peer's beacon could not carry its configuration (too many or too long paths,
    /// addresses or members for one datagram), or nil when it can. `weir check` reports it too.
    public static func beaconProblem(_ configuration: WeirConfiguration) -> String? {
        guard let peer = configuration.peer, let group = configuration.group else { return nil }
        let beacon = Beacon(sender: peer.id, incarnation: 0, sequence: 0, sentAtMs: 0, load: 0, capacity: peer.capacity,
                            state: .up, serves: peer.serves, addresses: peer.addresses.map(\.cidr), holding: [],
                            standsInFor: group.members.filter { !$0.takeover.isEmpty }.map(\.id).sorted())
        if let problem = BeaconCodec.problem(with: beacon) {
            return "[peer] \(peer.id): its beacon cannot carry this configuration: \(problem)"
        }
        // Beacons must come from an address that never moves: while a stand-in holds a service
        // address, its kernel drops packets from that address as martians (a local source), so it
        // would never hear the owner again and never give the address back.
        let moving = peer.addresses.map(\.address) + group.members.flatMap { $0.takeover.map(\.address) }
        if moving.contains(group.beacon.host) {
            return "[group] beacon \(group.beacon) uses a service address that can move ([peer] addresses or a member's takeover); "
                + "send beacons from the host's own fixed address, e.g. beacon = \"198.51.100.1:7946\" beside addresses = [\"198.51.100.10/24 dev eth0\"]"
        }
        return nil
    }

    /// Points each member at its server in `snapshot` (a beacon-fed pool's). A member not in `known`
    /// (the previous mapping) is off-line until its beacons say otherwise (rise valid ones); a known
    /// one keeps its state (a reload carries the server's run-time state over).
    private func mapMembers(_ snapshot: RoutingSnapshot, known: [String: Int], now: UInt64) {
        serverOfMember = [:]
        for member in members {
            guard let index = snapshot.serverIndex(id: member.id) else { continue }
            let pool = snapshot.pools.firstIndex { $0.servers.contains(index) }
            guard let pool, snapshot.pools[pool].config.loadSource == .beacons else { continue }
            serverOfMember[member.id] = index
            if known[member.id] == nil { snapshot.servers[index].recordReport(load: nil, state: .down, now: now) }
        }
    }

    public func adopt(snapshot: RoutingSnapshot) {
        guard let clock else { return }
        self.snapshot = snapshot
        mapMembers(snapshot, known: serverOfMember, now: clock.nowNanoseconds)
        // Server indexes may have moved: the others' counts go to the servers' new places.
        shareRemoteCounts(now: clock.nowNanoseconds)
    }

    public func start(loop: EventLoop, snapshot: RoutingSnapshot, clock: any BalanceClock) throws {
        if let problem = Self.beaconProblem(configuration) { throw IOError(problem) }
        self.loop = loop
        self.snapshot = snapshot
        self.clock = clock
        mapMembers(snapshot, known: [:], now: clock.nowNanoseconds)
        socket = try UDPSocket(loop: loop, host: group.beacon.host, port: Int(group.beacon.port)) { [unowned self] bytes, from, truncated in
            self.receive(bytes, from: from, truncated: truncated)
        }
        for address in ownAddresses { _ = keeper?.hold(ManagedAddress(address)) }
        let interval = Int64(max(1, group.interval.weirNanoseconds / 1_000_000))
        beaconTimer = LoopTimer(loop: loop, repeating: true) { [unowned self] in self.tick() }
        beaconTimer?.schedule(milliseconds: interval)
        deadlineTimer = LoopTimer(loop: loop) { [unowned self] in self.checkDeadlines() }
        if keeper != nil {
            refreshTimer = LoopTimer(loop: loop, repeating: true) { [unowned self] in self.keeper?.refresh() }
            refreshTimer?.schedule(milliseconds: Self.refreshMilliseconds)
        }
        let role = peer.map { "peer \($0.id)" } ?? (sharing ? "gateway \(group.id ?? "") sharing its \(sharedViews) with \(listenerIDs.count) gateway(s)" : "listener")
        log("weir: group: \(role) on udp \(group.beacon), \(members.count) member(s), beacon every \(group.interval), "
            + "off-line after \(group.deadAfter) silent intervals, on-line after \(group.rise) beacons")
        if peer != nil { sendBeacons() }
        sendUserBeacon()
    }

    public func stop() {
        guard !stopping else { return }
        stopping = true
        // A last beacon saying "drain": the others stop routing new requests here at once.
        if peer != nil { sendBeacons() }
        // A gateway's last one carries no users: the others stop counting its users at once.
        sendUserBeacon()
        beaconTimer?.cancel()
        refreshTimer?.cancel()
        deadlineTimer?.cancel()
        // Addresses held for others go back (their owners or another stand-in take them).
        if let keeper {
            for address in keeper.held where !ownCIDRs.contains(address.cidr) {
                _ = keeper.release(address)
            }
        }
    }

    public var beaconIntervalMilliseconds: Int64? {
        peer == nil ? nil : Int64(intake.detector.intervalNanoseconds / 1_000_000)
    }

    public func setBeaconInterval(milliseconds: Int64) {
        precondition((50...60_000).contains(milliseconds), "interval out of range")
        guard peer != nil else { return }
        intake.detector.setInterval(UInt64(milliseconds) * 1_000_000)
        beaconTimer?.schedule(milliseconds: milliseconds)
        log("weir: group: beacon interval is now \(milliseconds) ms (off-line after \(group.deadAfter) silent intervals); "
            + "set the same on every member, whose deadlines for this peer follow their own setting")
        if let clock { armDeadline(now: clock.nowNanoseconds) }
    }

    /// After the gateway stopped: removes this peer's own service addresses, which it added at start.
    public func releaseOwnAddresses() {
        guard let keeper else { return }
        for address in ownAddresses { _ = keeper.release(ManagedAddress(address)) }
    }

    public func groupStatus() -> GroupStatus? {
        guard let snapshot, let clock else { return nil }
        let now = clock.nowNanoseconds
        let detector = intake.detector
        let memberEntries = members.map { member -> GroupStatus.Member in
            let beacon = lastBeacon[member.id]
            let server = serverOfMember[member.id].map { snapshot.servers[$0] }
            let age = detector.lastHeardNanoseconds(member.id).map { Int((now > $0 ? now - $0 : 0) / 1_000_000) }
            return GroupStatus.Member(
                id: member.id, role: member.role.rawValue, online: detector.isOnline(member.id),
                state: beacon?.state.description, load: beacon?.load, capacity: beacon?.capacity,
                effective_load: server.map { $0.effectiveLoad(now: now) }, last_beacon_age_ms: age,
                routed: server.map { $0.totalRequests.load(ordering: .relaxed) + $0.redirected.load(ordering: .relaxed) } ?? 0,
                serves: beacon?.serves ?? [], holding: beacon?.holding ?? [])
        }
        let local = snapshot.localServer.map { snapshot.servers[$0] }
        return GroupStatus(
            id: peer?.id ?? group.id ?? "", role: peer == nil ? "listener" : "peer",
            load: local.map { $0.effectiveLoad(now: now) }, state: local.map { localCondition($0).description },
            routed_local: local.map { $0.totalRequests.load(ordering: .relaxed) },
            isolated: peer != nil && detector.isIsolated(now: now),
            holding: heldForOthers,
            members: memberEntries, beacons_sent: sent, beacons_accepted: accepted, beacons_refused: refused,
            hops_received: 0, hops_refused: 0, takeovers: keeper?.takeovers ?? 0, releases: keeper?.releases ?? 0)
    }

    // MARK: - Beacons

    /// The addresses this host holds for off-line peers (CIDR, sorted), not its own.
    private var heldForOthers: [String] {
        (keeper?.held ?? []).map(\.cidr).filter { !ownCIDRs.contains($0) }.sorted()
    }

    /// The state this peer advertises: its application's condition (down when its health check
    /// fails), drain while stopping.
    private func localCondition(_ local: ServerState) -> ServerCondition {
        if stopping { return local.condition == .up ? .drain : local.condition }
        return local.condition
    }

    private func sendBeacons() {
        guard let peer, let snapshot, let clock, let loop, let socket, let localIndex = snapshot.localServer else { return }
        let local = snapshot.servers[localIndex]
        sequence += 1
        let beacon = Beacon(sender: peer.id, incarnation: incarnation, sequence: sequence, sentAtMs: loop.wallClockMilliseconds,
                            load: local.effectiveLoad(now: clock.nowNanoseconds), capacity: peer.capacity,
                            state: localCondition(local), serves: peer.serves, addresses: ownAddresses.map(\.cidr),
                            holding: heldForOthers,
                            standsInFor: assume.keys.sorted())
        let datagram = BeaconCodec.encode(beacon, mac: mac)
        for member in members {
            if socket.send(datagram, host: member.beacon.host, port: Int(member.beacon.port)) { sent += 1 }
        }
    }

    /// A gateway sharing users or load: its confirmed users and its own requests in flight per
    /// server id (never what others reported), to the other gateways. Stopping: none of either.
    private func sendUserBeacon() {
        guard sharing, let snapshot, let loop, let socket, let id = group.id else { return }
        sequence += 1
        let now = loop.wallClockMilliseconds
        let counts = stopping ? [:] : exchange?.local(nowMs: now) ?? [:]
        let users = counts.filter { $0.value > 0 }
            .map { Beacon.UserCount(server: snapshot.servers[$0.key].config.id, count: $0.value) }
            .sorted { $0.server < $1.server }
        let inFlight = stopping || !sharingLoad ? [] : snapshot.servers.compactMap { server -> Beacon.ServerCount? in
            let count = server.inFlightCount
            return count > 0 ? Beacon.ServerCount(server: server.config.id, count: count) : nil
        }
        let beacon = Beacon(sender: id, incarnation: incarnation, sequence: sequence, sentAtMs: now, load: 0, capacity: 1,
                            state: stopping ? .drain : .up, users: users, inFlight: inFlight)
        let datagram = BeaconCodec.encode(beacon, mac: mac)
        for member in members where member.role == .listener {
            if socket.send(datagram, host: member.beacon.host, port: Int(member.beacon.port)) { sent += 1 }
        }
    }

    /// What the other gateways' fresh reports say at `now`, into this gateway's view: their users
    /// into the register (`share_users`), their requests in flight into each server's
    /// `remoteInFlight` (`share_load`; 0 where none is reported). A stale report counts for neither.
    private func shareRemoteCounts(now: UInt64) {
        guard sharing, let snapshot else { return }
        if sharingUsers, let exchange {
            var users: [Int: Int] = [:]
            for (id, count) in sharedLoad.userSums(now: now) {
                guard let index = snapshot.serverIndex(id: id) else { continue }
                users[index, default: 0] += count
            }
            exchange.setRemote(users)
        }
        if sharingLoad {
            let inFlight = sharedLoad.sums(now: now)
            for server in snapshot.servers { server.setRemoteInFlight(inFlight[server.config.id] ?? 0) }
        }
    }

    private func receive(_ datagram: [UInt8], from: PeerAddress, truncated: Bool) {
        guard let clock, let loop else { return }
        if truncated { refuse("too_large", detail: "a datagram from \(from.host) longer than any beacon"); return }
        let now = clock.nowNanoseconds
        switch intake.receive(datagram, now: now, nowWallMs: loop.wallClockMilliseconds, mac: mac) {
        case .accepted(let beacon, let transitions):
            accepted += 1
            apply(beacon, now: now)
            for transition in transitions { changed(transition, now: now) }
            if listenerIDs.contains(beacon.sender), sharedLoad.record(beacon, now: now) { shareRemoteCounts(now: now) }
            if !transitions.isEmpty { planTakeover(now: now) }
            armDeadline(now: now)
        case .rejected(let rejection):
            refuse(Self.reason(rejection), detail: "a beacon from \(from.host):\(from.port): \(rejection)")
        case .unknownSender(let id):
            refuse("unknown_sender", detail: "a beacon from \(from.host):\(from.port) signed as \"\(id)\", which is not a member")
        case .refused(let id, let verdict):
            refuse(verdict == .replayed ? "replayed" : "stale",
                   detail: "a \(verdict == .replayed ? "replayed" : "stale (clock skew or delayed)") beacon of \(id) from \(from.host)")
        }
    }

    /// Writes what a valid beacon says into its member's server state.
    private func apply(_ beacon: Beacon, now: UInt64) {
        let previousHolding = lastBeacon[beacon.sender]?.holding ?? []
        lastBeacon[beacon.sender] = beacon
        if beacon.holding != previousHolding, !ownAddresses.isEmpty,
           previousHolding.contains(where: { ownCIDRs.contains($0) }) {
            // A stand-in let go of one of our addresses: tell the neighbours it is here again.
            for address in ownAddresses { keeper?.announce(ManagedAddress(address), count: Self.announcementsAtTakeover) }
        }
        guard let index = serverOfMember[beacon.sender], let snapshot else { return }
        let server = snapshot.servers[index]
        server.recordCapacity(beacon.capacity)
        server.setServedPaths(beacon.serves)
        if intake.detector.isOnline(beacon.sender) {
            // A passive mark-down (a failed forward) lasts until the next beacon of an on-line peer.
            if !server.isHealthy { server.setHealth(up: true, now: now) }
            server.recordReport(load: beacon.load, state: beacon.state, now: now)
        } else {
            server.recordReport(load: beacon.load, state: .down, now: now)
        }
    }

    private func changed(_ transition: FailureDetector.Transition, now: UInt64) {
        guard let snapshot else { return }
        let server = serverOfMember[transition.id].map { snapshot.servers[$0] }
        if transition.online {
            log(LogLevel.notice.tag + "weir: group: \(transition.id) is on-line")
            if let server, let beacon = lastBeacon[transition.id] {
                if !server.isHealthy { server.setHealth(up: true, now: now) }
                server.recordReport(load: beacon.load, state: beacon.state, now: now)
            }
        } else {
            let silence = intake.detector.silenceNanoseconds(transition.id, now: now).map { " (silent for \($0 / 1_000_000) ms)" } ?? ""
            let what = listenerIDs.contains(transition.id) ? "its \(sharedViews) are no longer counted" : "it gets no requests"
            log(LogLevel.warning.tag + "weir: group: \(transition.id) is off-line\(silence): \(what)")
            server?.recordReport(load: nil, state: .down, now: now)
        }
        if listenerIDs.contains(transition.id) { shareRemoteCounts(now: now) }
    }

    /// Every interval: off-line detection, this peer's beacons, and the takeover plan.
    private func tick() {
        guard let clock, !stopping else { return }
        let now = clock.nowNanoseconds
        for transition in intake.detector.tick(now: now) { changed(transition, now: now) }
        shareRemoteCounts(now: now)   // a report past its deadline stops counting
        sendUserBeacon()
        guard peer != nil else { return }
        sendBeacons()
        planTakeover(now: now)
    }

    /// The deadline timer: declares off-line whoever has been silent too long, and acts on it at once.
    private func checkDeadlines() {
        guard let clock, !stopping else { return }
        let now = clock.nowNanoseconds
        let transitions = intake.detector.tick(now: now)
        for transition in transitions { changed(transition, now: now) }
        shareRemoteCounts(now: now)
        if !transitions.isEmpty { planTakeover(now: now) }
        armDeadline(now: now)
    }

    /// Arms the deadline timer for the earliest moment an on-line member reaches its deadline.
    private func armDeadline(now: UInt64) {
        guard let deadlineTimer, !stopping else { return }
        let detector = intake.detector
        var earliest: UInt64? = nil
        for id in detector.onlineIDs {
            guard let last = detector.lastHeardNanoseconds(id) else { continue }
            let (due, overflow) = last.addingReportingOverflow(detector.deadlineNanoseconds)
            if !overflow, earliest == nil || due < earliest! { earliest = due }
        }
        guard let earliest else { deadlineTimer.cancel(); return }
        let waitNs = earliest > now ? earliest - now : 0
        deadlineTimer.schedule(milliseconds: Int64(waitNs / 1_000_000) + 1)
    }

    private func planTakeover(now: UInt64) {
        guard let peer else { return }
        let isolated = intake.detector.isIsolated(now: now)
        if isolated != wasIsolated {
            wasIsolated = isolated
            log(isolated ? LogLevel.warning.tag + "weir: group: \(peer.id) hears no member at all: standing back (takes over nothing, releases what it holds for others)"
                         : LogLevel.notice.tag + "weir: group: \(peer.id) hears the group again")
        }
        guard let keeper else { return }
        let views = lastBeacon.mapValues { TakeoverPlan.MemberView(standsInFor: $0.standsInFor, addresses: $0.addresses) }
        let online = intake.detector.onlineIDs
        // A member that advertises it is down still beacons: it is on-line, and holds its addresses.
        // Until the first deadline has passed since start, a member not heard yet may simply not
        // have been heard yet: nothing is taken over before then.
        let detector = intake.detector
        let settled = now >= detector.startedNanoseconds &+ detector.deadlineNanoseconds
        let wanted = TakeoverPlan.addressesToHold(selfID: peer.id, isolated: isolated || !settled, online: online,
                                                  members: views, assume: assume)
        // A new takeover also needs a beacon from someone within the last 1.5 intervals: when a
        // peer's own link is cut, its members' deadlines pass one by one before it counts as
        // isolated, and it must not take the first one's address in between.
        var newest: UInt64 = 0
        for id in detector.memberIDs { if let heard = detector.lastHeardNanoseconds(id), heard > newest { newest = heard } }
        let hearsOthers = newest > 0 && now &- newest <= detector.intervalNanoseconds + detector.intervalNanoseconds / 2
        for address in keeper.held where !ownCIDRs.contains(address.cidr) && !wanted.contains(address.cidr) {
            log(LogLevel.notice.tag + "weir: group: releasing \(address) (its owner is back, or another peer stands in)")
            _ = keeper.release(address)
        }
        let held = Set(keeper.held.map(\.cidr))
        for cidr in wanted.sorted() where !held.contains(cidr) && hearsOthers {
            guard let address = assumable[cidr] else { continue }
            let owner = assume.first { $0.value.contains(cidr) }?.key ?? "?"
            log(LogLevel.warning.tag + "weir: group: taking over \(address) for \(owner), which is off-line")
            _ = keeper.hold(ManagedAddress(address))
        }
    }

    private func refuse(_ reason: String, detail: String) {
        refused[reason, default: 0] += 1
        // The first few are logged; after that only counted (a flood must not flood the log).
        if refusalsLogged < 20 {
            refusalsLogged += 1
            log(LogLevel.warning.tag + "weir: group: dropped \(detail)\(refusalsLogged == 20 ? " (further drops are only counted, see weir status)" : "")")
        }
    }

    static func reason(_ rejection: BeaconCodec.Rejection) -> String {
        switch rejection {
        case .truncated: "truncated"
        case .badMagic: "bad_magic"
        case .unsupportedVersion: "unsupported_version"
        case .malformed: "malformed"
        case .tooLarge: "too_large"
        case .badMAC: "bad_mac"
        }
    }
}

extension ManagedAddress {
    /// The address as the configuration gives it.
    init(_ address: InterfaceAddress) {
        self.init(cidr: address.cidr, device: address.device)
    }
}
