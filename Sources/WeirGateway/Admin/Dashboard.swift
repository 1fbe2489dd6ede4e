/// The live dashboard served at `GET /` (README, "Dashboard"): one self-contained page.
enum Dashboard {
    static let page: [UInt8] = Array("<!doctype html><title>Weir</title><p>dashboard</p>\n".utf8)
}
