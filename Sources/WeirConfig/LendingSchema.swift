import TOMLKit

// The checks across the lending keys of a `[[pool]]` (`lend_level`, `return_level`): the return level must lie
// below the lend level, or a lent server would be given back while the pool is still loaded (and lent again).

extension Schema {
    /// `return_level` < the pool's lend level (`lend_level`, else `first_level`); checked only when both are valid.
    static func lendLevelsCheck(_ table: TOMLTable, _ site: Site, _ reader: inout Reader, _ pool: inout Pool) -> Bool {
        guard let returnLevel = pool.returnLevel else { return true }
        let lend = pool.effectiveLendLevel
        guard returnLevel >= lend else { return true }
        let lendKey = pool.lendLevel != nil ? "lend_level" : "first_level (the lend level when lend_level is not set)"
        reader.fail(site.child("return_level"), "must be below \(lendKey) (\(lend)), found \(returnLevel); a lent "
                    + "server is given back once the pool's load falls below return_level")
        return false
    }
}
