import ArgumentParser
import Foundation
import WeirConfig
import WeirDemoBackend
import WeirGateway

@main
struct Weir: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weir",
        abstract: "Weir: an HTTP reverse-proxy gateway and IP redirector.",
        subcommands: [Run.self, Check.self, DemoBackendCommand.self],
        defaultSubcommand: Run.self)
}

/// Where operational messages go: standard error, one line each (the access log owns stdout).
func logLine(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

struct ConfigOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .customLong("config")], help: "The configuration directory (*.toml read in lexical order).")
    var directory: String = "/etc/weir/conf.d"

    func load() throws -> WeirConfiguration {
        do {
            return try ConfigLoader.load(directory: directory)
        } catch let errors as ConfigErrors {
            logLine(errors.description)
            throw ExitCode(1)
        }
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway on a configuration directory.")
    @OptionGroup var config: ConfigOptions

    func run() throws {
        let configuration = try config.load()
        let gateway = Gateway(configuration: configuration, log: logLine)
        do {
            let status = try gateway.run()
            throw ExitCode(status)
        } catch let error as ExitCode {
            throw error
        } catch {
            logLine("weir: cannot start: \(error)")
            throw ExitCode(1)
        }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate a configuration directory without binding anything; exit 0 when valid, 1 otherwise.")
    @OptionGroup var config: ConfigOptions

    func run() throws {
        let configuration = try config.load()
        let servers = configuration.pools.reduce(0) { $0 + $1.servers.count }
        print("weir: configuration \(config.directory) is valid: \(configuration.listeners.count) listener(s), "
              + "\(configuration.pools.count) pool(s), \(servers) server(s), \(configuration.routes.count) route(s)")
    }
}

struct DemoBackendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "demo-backend",
                                                    abstract: "Run the demo origin server (for demos, tests and benchmarks).")
    @Option(help: "Port to listen on (0 picks a free one and prints it).") var port: Int
    @Option(help: "Name the server answers with.") var name: String
    @Option(help: "Numeric address to bind.") var host: String = "127.0.0.1"

    func run() throws {
        do {
            let backend = try DemoBackend(name: name, host: host, port: port)
            logLine("demo-backend \(name): listening on \(host.contains(":") ? "[\(host)]" : host):\(backend.port)")
            backend.run()
        } catch {
            logLine("demo-backend \(name): cannot start: \(error)")
            throw ExitCode(1)
        }
    }
}
