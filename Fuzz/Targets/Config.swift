// libFuzzer target: the configuration loader on arbitrary text (what an operator may write in conf.d).
//
// The input is one or more conf.d files separated by NUL bytes (NUL cannot occur in TOML text, so
// every file stays fuzzable), loaded in memory with `ConfigLoader.parse(files:)` as 00.toml, 01.toml...
// Invalid UTF-8 is skipped (the directory loader rejects it before parsing).
//
// /tmp/weir-fuzz-config/ holds cert.pem, key.pem, ocsp.der and secret.txt, so that seeds naming them
// reach the checks past "file exists".
//
// Invariants beyond "never crash":
// - the loader either returns a configuration or throws ConfigErrors, nothing else;
// - every ConfigError names one of the files (or "(configuration)"), a key and a message, each on one
//   line (weir check prints one problem per line as FILE: KEY: MESSAGE);
// - loading is deterministic (the same files give an equal result);
// - a configuration keeps the promises of WeirConfiguration's documentation: at least one listener and
//   route, unique names and server ids, routes naming pools and listeners that exist.
import Foundation
import WeirConfig

/// Created once: the directory with the files seeds may name. A fixed absolute path (seeds name it), not
/// the working directory: changing that would break libFuzzer's relative corpus paths.
let fixtureDirectory: String = {
    let dir = "/tmp/weir-fuzz-config"
    let fm = FileManager.default
    try? fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
    _ = fm.createFile(atPath: dir + "/cert.pem", contents: Data("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".utf8))
    _ = fm.createFile(atPath: dir + "/key.pem", contents: Data("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n".utf8))
    _ = fm.createFile(atPath: dir + "/ocsp.der", contents: Data([0x30, 0x03, 0x0A, 0x01, 0x00]))
    _ = fm.createFile(atPath: dir + "/secret.txt", contents: Data("0123456789abcdef0123456789abcdef0123\n".utf8))
    return dir
}()

func splitFiles(_ input: [UInt8]) -> [(name: String, contents: String)]? {
    var files: [(name: String, contents: String)] = []
    for (i, part) in input.split(separator: 0, omittingEmptySubsequences: false).enumerated() {
        guard let text = String(validating: part, as: UTF8.self) else { return nil }
        files.append((name: (i < 10 ? "0" : "") + "\(i).toml", contents: text))
    }
    return files
}

func oneLine(_ s: String) -> Bool { !s.isEmpty && !s.contains("\n") && !s.contains("\r") }

func unique(_ values: [String]) -> Bool { Set(values).count == values.count }

func checkErrors(_ errors: ConfigErrors, names: Set<String>) {
    require(!errors.errors.isEmpty, "ConfigErrors without an error")
    for e in errors.errors {
        require(names.contains(e.file) || e.file == "(configuration)", "error names no input file: \(e)")
        require(oneLine(e.key), "error key is empty or not one line: \(e.description.debugDescription)")
        require(oneLine(e.message), "error message is empty or not one line: \(e.description.debugDescription)")
    }
}

func checkConfiguration(_ c: WeirConfiguration, files: [String]) {
    require(c.sourceFiles == files, "sourceFiles \(c.sourceFiles) != \(files)")
    require(!c.listeners.isEmpty && !c.routes.isEmpty, "a configuration without a listener or a route")
    let listeners = c.listeners.map(\.name), pools = c.pools.map(\.name)
    require(unique(listeners) && unique(pools) && unique(c.routes.map(\.name)), "duplicate listener, pool or route name")
    require(unique(c.pools.flatMap { $0.servers.map(\.id) }), "duplicate server id")
    for p in c.pools { require(!p.servers.isEmpty, "pool \(p.name) without servers") }
    for r in c.routes {
        require(pools.contains(r.pool), "route \(r.name) names no pool: \(r.pool)")
        if let s = r.spill { require(pools.contains(s) && s != r.pool, "route \(r.name) spills to \(s)") }
        if let l = r.listener { require(listeners.contains(l), "route \(r.name) names no listener: \(l)") }
        require(r.pathPrefix.hasPrefix("/"), "route \(r.name) path \(r.pathPrefix) does not start with /")
        require([302, 303, 307, 308].contains(r.redirectStatus), "route \(r.name) redirect status \(r.redirectStatus)")
    }
}

/// The loader's answer: a configuration or its errors (anything else breaks the contract).
func load(_ files: [(name: String, contents: String)]) -> Result<WeirConfiguration, ConfigErrors> {
    do {
        return .success(try ConfigLoader.parse(files: files))
    } catch let errors as ConfigErrors {
        return .failure(errors)
    } catch {
        invariantBroken("loader threw \(type(of: error)), not ConfigErrors: \(error)", file: #fileID, line: #line)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    _ = fixtureDirectory
    guard let files = splitFiles(inputBytes(data, size)) else { return -1 }  // -1: not worth keeping
    let first = load(files)
    switch first {
    case .success(let c): checkConfiguration(c, files: files.map(\.name))
    case .failure(let e): checkErrors(e, names: Set(files.map(\.name)))
    }
    require(load(files) == first, "loading the same files twice gives different results")
    return 0
}
