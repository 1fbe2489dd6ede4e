import Foundation

/// One configuration problem, located by file and key.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file, as the loader was given it (`load(directory:)` joins the directory and the file name,
    /// e.g. `conf.d/20-pools.toml`). Problems that belong to no single file (no listener at all, an empty
    /// directory) name the directory, or `(configuration)` for `parse(files:)`.
    public var file: String
    /// Where in the file: a key path such as `pool[1].server[0].address`, with 0-based indexes counted within
    /// that file's array. TOML syntax errors use `line L, column C` instead.
    public var key: String
    /// What is wrong and, where it helps, an example of what is expected.
    public var message: String

    public init(file: String, key: String, message: String) {
        self.file = file
        self.key = key
        self.message = message
    }

    /// `"\(file): \(key): \(message)"`.
    public var description: String { "\(file): \(key): \(message)" }
}

/// Every problem found while loading a configuration (the loader does not stop at the first one).
public struct ConfigErrors: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// In discovery order: per file in file order, then the checks that span files.
    public var errors: [ConfigError]

    public init(errors: [ConfigError]) {
        self.errors = errors
    }

    /// One error per line (no trailing newline).
    public var description: String { errors.map(\.description).joined(separator: "\n") }

    public var errorDescription: String? { description }
}
