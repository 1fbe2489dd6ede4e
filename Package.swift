// swift-tools-version: 6.0
import PackageDescription

// The data-path modules skip Swift's run-time exclusivity checks in release builds: each object
// of theirs is touched by one event-loop thread only, the compile-time checks still apply, and the
// run-time checks cost about 8 % of the instructions of a proxied request (callgrind, issue 9).
// `-disable-type-layout`: copies and destroys of a large struct (a parsed head, a `ResponseHead?`) are
// compiled as code for its fields instead of calls through its value witnesses (for an Optional,
// the generic enum witnesses of the runtime): 2-3.5 % of a request's instructions, 0.2 % more text.
// `-cross-module-optimization`: their small functions are inlined across the modules: about 1 % more.
let dataPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked", "-Xfrontend", "-disable-type-layout", "-cross-module-optimization"], .when(configuration: .release))]

let package = Package(
    name: "Weir",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "weir", targets: ["weir"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.2.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        // Module map and static-inline shims over the system libevent (event loop, evbuffers, listeners).
        .systemLibrary(name: "CLibevent", path: "Sysroot/CLibevent", pkgConfig: "libevent"),
        // Module map and shims over the system OpenSSL 3 (libssl, libcrypto).
        .systemLibrary(name: "COpenSSL", path: "Sysroot/COpenSSL", pkgConfig: "openssl"),
        // Module map over the system libnghttp2 (HTTP/2 framing, HPACK, flow control; the memory-based API).
        .systemLibrary(name: "CNghttp2", path: "Sysroot/CNghttp2", pkgConfig: "libnghttp2"),
        // The version and build commit (a header; scripts/build-stamp.sh writes the commit before `make build`).
        .systemLibrary(name: "CWeirBuild", path: "Sysroot/CWeirBuild"),
        // libevent's, nghttp2's and OpenSSL's allocator: per-thread free lists (C: installed before main).
        .target(name: "CWeirMemory", dependencies: ["CLibevent", "COpenSSL"]),
        // Incremental strict HTTP/1.1 head parsers, the body reader, the response head writer: pure, no I/O.
        .target(name: "WeirHTTP", swiftSettings: dataPath),
        // Reads conf.d/*.toml into one validated immutable snapshot; every error names file and key.
        .target(name: "WeirConfig", dependencies: [.product(name: "TOMLKit", package: "TOMLKit")]),
        // Backend state, routes, sticky plans and the pure Decision (every verdict); no I/O, injected clock and MAC.
        .target(name: "WeirBalance", dependencies: ["WeirConfig", .product(name: "Atomics", package: "swift-atomics")],
                swiftSettings: dataPath),
        // The only importer of the C modules: event loops, sockets, buffers, timers, signals, errno funnel.
        .target(name: "WeirIO", dependencies: ["CLibevent", "COpenSSL", "CNghttp2", "CWeirMemory"], swiftSettings: dataPath),
        // The session machine and its shell, head rewriting, upstream pools, access log, workers, drain.
        .target(name: "WeirGateway", dependencies: ["WeirHTTP", "WeirConfig", "WeirBalance", "WeirIO",
                                                    .product(name: "Atomics", package: "swift-atomics")],
                swiftSettings: dataPath),
        // The peer module (`weir peer`): the group's beacons on the control thread, address takeover (ip, arping).
        .target(name: "WeirPeer", dependencies: ["WeirGateway", "WeirBalance", "WeirConfig", "WeirIO"]),
        // The demo origin server used by `make run`, tests and benchmarks.
        .target(name: "WeirDemoBackend", dependencies: ["WeirHTTP", "WeirIO"]),
        // The command line: run, peer, check, status, mode, demo-backend.
        .executableTarget(name: "weir", dependencies: [
            "WeirGateway", "WeirConfig", "WeirDemoBackend", "WeirPeer", "CWeirBuild",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // `make bench-peers`: simulates the peer rule (figure 2 + herding correction) against simpler policies.
        .executableTarget(name: "weir-peer-sim", dependencies: ["WeirBalance"]),
        .testTarget(name: "WeirHTTPTests", dependencies: ["WeirHTTP"]),
        .testTarget(name: "WeirConfigTests", dependencies: ["WeirConfig"]),
        .testTarget(name: "WeirBalanceTests", dependencies: ["WeirBalance", "WeirConfig"]),
        .testTarget(name: "WeirIOTests", dependencies: ["WeirIO"]),
        .testTarget(name: "WeirGatewayTests", dependencies: ["WeirGateway", "WeirHTTP"]),
        .testTarget(name: "WeirPeerTests", dependencies: ["WeirPeer"]),
    ],
    swiftLanguageModes: [.v6]
)
