import WeirConfig

/// `WeirConfig.Mode` under a name that does not clash inside types that have their own `Mode`.
typealias WeirConfigMode = WeirConfig.Mode
