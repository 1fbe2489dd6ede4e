import ArgumentParser
import Foundation
import WeirConfig
import WeirGateway

// `weir state`, `weir server ...` and `weir weight`: runtime changes that persist (see README, "Runtime changes
// that persist"). Each talks to the admin listener, like `weir mode`.

/// The admin listener options every runtime-change command takes.
struct AdminOptions: ParsableArguments {
    @Option(help: "Admin listener address (default: [admin] address of -c DIR, else 127.0.0.1:9090).") var admin: String?
    @Option(name: [.customShort("c"), .customLong("config")], help: "Configuration directory to read the admin address (and state_dir) from.")
    var directory: String?
    @Option(help: adminTokenHelp) var token: String?

    /// Sends `method path` and prints the answer; exits 1 with the listener's message otherwise.
    func send(_ method: String, _ path: String, command: String) throws {
        let address = try adminAddress(admin: admin, directory: directory, command: command)
        do {
            let body = try StatusClient.send(method: method, path: path, host: address.host, port: Int(address.port),
                                             token: try adminToken(token, directory: directory))
            print(String(decoding: body, as: UTF8.self), terminator: "")
        } catch {
            logLine("weir \(command): \(error)")
            throw ExitCode(1)
        }
    }
}

/// A path segment or query value, percent-encoded.
func encoded(_ text: String) -> String {
    text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
}

struct StateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "state",
        abstract: "Show the runtime changes kept in state_dir (modes, drains, weights, servers added or removed).",
        discussion: "From the admin listener; when it does not answer and -c DIR is given, from DIR's state_dir/runtime.json.",
        subcommands: [Show.self, Clear.self], defaultSubcommand: Show.self)

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show the runtime state (the default).")
        @OptionGroup var options: AdminOptions
        @Flag(help: "Print the raw JSON document.") var json = false

        func run() throws {
            let document = try StateSource(options: options, command: "state").document()
            print(json ? String(decoding: document.encoded(pretty: true), as: UTF8.self) : StateTable.render(document), terminator: json ? "" : "\n")
        }
    }

    struct Clear: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "clear",
            abstract: "Forget runtime changes: all, a section, or one entry; conf.d applies again from the next reload or restart.",
            discussion: "Sections: \(RuntimeState.sections.joined(separator: ", ")). KEY: a listener name (modes) or a server id.")
        @Argument(help: "Section to clear (default: everything).") var section: String?
        @Argument(help: "Only this entry of the section (a listener name or a server id).") var key: String?
        @OptionGroup var options: AdminOptions

        func run() throws {
            if let section, !RuntimeState.sections.contains(section) {
                logLine("weir state clear: \(section) is not a section; use \(RuntimeState.sections.joined(separator: ", "))")
                throw ExitCode(1)
            }
            let path = "/state" + [section, key].compactMap { $0.map { "/" + encoded($0) } }.joined()
            try StateSource(options: options, command: "state clear").clear(path: path, section: section, key: key)
        }
    }
}

/// Where `weir state` reads from: the running gateway, else (with -c) the file it keeps.
struct StateSource {
    let options: AdminOptions
    let command: String

    func document() throws -> StateDocument {
        switch try ask("GET", "/state") {
        case .answer(let body):
            do { return try JSONDecoder().decode(StateDocument.self, from: Data(body)) } catch {
                logLine("weir \(command): the admin listener's /state is not a state document: \(error)")
                throw ExitCode(1)
            }
        case .down(let directory):
            let configuration = try ConfigOptions(directory: directory).load()
            let store = RuntimeStateStore(stateDirectory: configuration.global.stateDirectory, log: logLine)
            let warnings = store.state.apply(to: configuration).warnings
            logLine("weir \(command): the gateway does not answer; showing \(store.path)")
            return StateDocument(file: store.path, state: store.state, not_applied: warnings)
        }
    }

    func clear(path: String, section: String?, key: String?) throws {
        switch try ask("DELETE", path) {
        case .answer(let body):
            print(String(decoding: body, as: UTF8.self), terminator: "")
        case .down(let directory):
            // Nobody else writes the file while the gateway is down.
            let configuration = try ConfigOptions(directory: directory).load()
            let store = RuntimeStateStore(stateDirectory: configuration.global.stateDirectory, log: logLine)
            let (cleared, error) = store.clear(section: section, key: key)
            if let error {
                logLine("weir \(command): cannot write \(store.path): \(error)")
                throw ExitCode(1)
            }
            print("weir \(command): the gateway does not answer; \(cleared) entries cleared in \(store.path)")
        }
    }

    private enum Reply {
        case answer([UInt8])
        /// The admin listener did not answer and `-c DIR` names the configuration.
        case down(String)
    }

    private func ask(_ method: String, _ path: String) throws -> Reply {
        let address = try adminAddress(admin: options.admin, directory: options.directory, command: command)
        do {
            return .answer(try StatusClient.send(method: method, path: path, host: address.host, port: Int(address.port),
                                                 token: try adminToken(options.token, directory: options.directory)))
        } catch let failure as StatusClient.Failure where failure.unreachable && options.directory != nil {
            return .down(options.directory!)
        } catch {
            logLine("weir \(command): \(error)")
            throw ExitCode(1)
        }
    }
}

/// What `weir state` prints.
enum StateTable {
    static func render(_ document: StateDocument) -> String {
        let s = document.state
        var lines = ["runtime state \(document.file): \(s.isEmpty ? "nothing changed at run time" : "\(s.count) entries")"]
        for (listener, mode) in s.modes.sorted(by: { $0.key < $1.key }) { lines.append("  mode     listener \(listener): \(mode.rawValue)") }
        for o in s.servers {
            if let c = o.condition { lines.append("  \(c.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(o.pool)/\(o.id)") }
            if let w = o.weight { lines.append("  weight   \(o.pool)/\(o.id): \(w)") }
        }
        for a in s.added {
            let extras = [a.weight.map { "weight \($0)" }, a.capacity.map { "capacity \($0)" }, a.group.map { "group \($0)" },
                          a.maxConns.map { "max_conns \($0)" }, a.publicURL.map { "public_url \($0)" }].compactMap { $0 }
            lines.append("  added    \(a.pool)/\(a.id) \(a.address)" + (extras.isEmpty ? "" : " (\(extras.joined(separator: ", ")))"))
        }
        for r in s.removed { lines.append("  removed  \(r.pool)/\(r.id)") }
        if !document.not_applied.isEmpty {
            lines.append("not applied (conf.d changed since; clear with weir state clear SECTION KEY):")
            lines += document.not_applied.map { "  " + $0 }
        }
        return lines.joined(separator: "\n")
    }
}

struct ServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "server",
        abstract: "Change a server at run time: drain, maint, enable, add, remove (kept in state_dir across restarts and reloads).",
        subcommands: [Condition<DrainAction>.self, Condition<MaintAction>.self, Condition<EnableAction>.self, Add.self, Remove.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a server to a pool (checked as a [[pool.server]] of conf.d would be).")
        @Argument(help: "The pool.") var pool: String
        @Argument(help: "The new server's id (unique across all pools).") var id: String
        @Argument(help: "Its numeric address and port, e.g. 127.0.0.1:9003.") var address: String
        @Option(help: "Relative share of requests, 1...256.") var weight: Int?
        @Option(help: "Requests in flight it is meant to carry.") var capacity: Int?
        @Option(help: "Priority group (lower first).") var group: Int?
        @Option(help: "Hard limit of requests in flight.") var maxConns: Int?
        @Option(help: "URL under which it is reachable directly (redirect mode).") var publicURL: String?
        @OptionGroup var options: AdminOptions

        func run() throws {
            var query = ["id=\(encoded(id))", "address=\(encoded(address))"]
            let extras: [(String, String?)] = [("weight", weight.map(String.init)), ("capacity", capacity.map(String.init)),
                                               ("group", group.map(String.init)), ("max_conns", maxConns.map(String.init)),
                                               ("public_url", publicURL)]
            for (name, value) in extras { if let value { query.append("\(name)=\(encoded(value))") } }
            try options.send("POST", "/pools/\(encoded(pool))/servers?" + query.joined(separator: "&"), command: "server add")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a server from its pool: drained at once, gone at the next reload or restart.")
        @Argument(help: "The pool.") var pool: String
        @Argument(help: "The server's id.") var id: String
        @Flag(help: "Reload at once instead of letting its pinned transactions finish.") var now = false
        @OptionGroup var options: AdminOptions

        func run() throws {
            try options.send("DELETE", "/pools/\(encoded(pool))/servers/\(encoded(id))" + (now ? "?now=1" : ""), command: "server remove")
        }
    }
}

/// `weir server drain|maint|enable ID`.
protocol ConditionAction { static var name: String { get }; static var help: String { get } }
enum DrainAction: ConditionAction { static let name = "drain"; static let help = "Keep its pinned transactions, send it no new requests." }
enum MaintAction: ConditionAction { static let name = "maint"; static let help = "Send it nothing." }
enum EnableAction: ConditionAction { static let name = "enable"; static let help = "Clear a drain or maint." }

struct Condition<Action: ConditionAction>: ParsableCommand {
    static var configuration: CommandConfiguration { CommandConfiguration(commandName: Action.name, abstract: Action.help) }
    @Argument(help: "The server's id.") var id: String
    @OptionGroup var options: AdminOptions

    func run() throws {
        try options.send("POST", "/servers/\(encoded(id))/\(Action.name)", command: "server \(Action.name)")
    }
}

struct WeightCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "weight",
        abstract: "Set a server's weight at run time (1...256; kept in state_dir; clear with weir state clear weights ID).")
    @Argument(help: "The server's id.") var id: String
    @Argument(help: "The weight, 1...256.") var value: String
    @OptionGroup var options: AdminOptions

    func run() throws {
        try options.send("POST", "/servers/\(encoded(id))/weight?value=\(encoded(value))", command: "weight")
    }
}
