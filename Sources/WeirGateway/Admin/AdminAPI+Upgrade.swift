import WeirBalance

extension AdminAPI {
    /// `POST /upgrade[?binary=/absolute/path]`: starts a binary upgrade (`UpgradeControl`) and
    /// answers once its outcome is known: 200 with "upgraded: pid N serves now; ...", or 500
    /// with why the new process did not take over (this one keeps serving). The answer comes from
    /// the old process, just before it stops accepting. Returns nil for any other request (it
    /// gets an immediate answer from `answer(method:target:)`).
    func deferredAnswer(method: String, target: String) -> ((@escaping (Answer) -> Void) -> Void)? {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        guard method == "POST", parts.first == "/upgrade", let upgrade else { return nil }
        let binary = parts.count > 1 ? QueryString.value("binary", in: parts[1]) : nil
        return { reply in
            if let binary, !binary.hasPrefix("/") {
                reply(Answer(status: 400, contentType: "text/plain; charset=utf-8",
                             body: Array("binary=\(binary): give an absolute path\n".utf8)))
                return
            }
            upgrade.request(binary: binary) { outcome in
                reply(Answer(status: outcome.succeeded ? 200 : 500, contentType: "text/plain; charset=utf-8",
                             body: Array((outcome.message + "\n").utf8)))
            }
        }
    }
}
