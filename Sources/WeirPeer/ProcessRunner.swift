import Foundation

/// Runs commands with Foundation's Process: stdout discarded, stderr kept for the log.
public struct ProcessRunner: CommandRunner {
    public init() {}

    public func run(_ arguments: [String]) -> CommandResult {
        do {
            let command = try ProcessCommand(arguments)
            command.process.waitUntilExit()
            return command.result ?? CommandResult(status: -1, standardError: "did not end")
        } catch {
            return CommandResult(status: -1, standardError: "cannot start: \(error)")
        }
    }

    public func start(_ arguments: [String]) throws -> RunningCommand {
        try ProcessCommand(arguments)
    }
}

/// One started process. Its stderr is read once it has ended: the tools write a line or two,
/// far below a pipe's capacity, so they never block on a full pipe.
final class ProcessCommand: RunningCommand {
    let process = Process()
    private let errors = Pipe()

    /// - Precondition: `arguments` is not empty; `arguments[0]` is an absolute path.
    init(_ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
    }

    var result: CommandResult? {
        guard !process.isRunning else { return nil }
        let data = errors.fileHandleForReading.readDataToEndOfFile()
        return CommandResult(status: process.terminationStatus, standardError: String(decoding: data, as: UTF8.self))
    }

    func stop() {
        if process.isRunning { process.terminate() }
    }
}
