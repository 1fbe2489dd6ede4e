/// The request methods the proxy treats specially, recognized once at parse time.
/// Methods are case-sensitive tokens (RFC 9110 §9.1); anything else is `.other`.
@usableFromInline
enum KnownMethod: UInt8, Sendable {
    case get, head, post, put, delete, connect, options, trace, patch, other

    /// Classifies the method bytes `buf[range]` (exact, case-sensitive match).
    @usableFromInline
    static func classify(_ buf: UnsafeRawBufferPointer, _ range: Range<Int>) -> KnownMethod {
        switch range.count {
        case 3:
            if ASCII.equalsExactly(buf, range, "GET") { return .get }
            if ASCII.equalsExactly(buf, range, "PUT") { return .put }
        case 4:
            if ASCII.equalsExactly(buf, range, "HEAD") { return .head }
            if ASCII.equalsExactly(buf, range, "POST") { return .post }
        case 5:
            if ASCII.equalsExactly(buf, range, "TRACE") { return .trace }
            if ASCII.equalsExactly(buf, range, "PATCH") { return .patch }
        case 6:
            if ASCII.equalsExactly(buf, range, "DELETE") { return .delete }
        case 7:
            if ASCII.equalsExactly(buf, range, "CONNECT") { return .connect }
            if ASCII.equalsExactly(buf, range, "OPTIONS") { return .options }
        default:
            break
        }
        return .other
    }

    /// GET HEAD PUT DELETE OPTIONS TRACE (RFC 9110 §9.2.2).
    @inlinable
    var isIdempotent: Bool {
        switch self {
        case .get, .head, .put, .delete, .options, .trace: return true
        default: return false
        }
    }
}
