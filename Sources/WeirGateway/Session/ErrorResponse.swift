import WeirIO

/// The responses Weir writes itself: a status line, a one-line plain-text reason, and `Connection: close`.
enum ErrorResponse {
    /// Appends a complete response to `output`. `retryAfter` adds a Retry-After header (seconds).
    /// `extraFields` (with CRLFs) go in too, e.g. the listener's Strict-Transport-Security.
    /// `keepAlive`: leave out `Connection: close` (the connection stays open after it).
    static func write(status: Int, reason: String, retryAfter: Int? = nil, extraFields: [UInt8] = [], keepAlive: Bool = false,
                      to output: Buffer) {
        let body = reason + "\n"
        output.append("HTTP/1.1 ")
        output.appendDecimal(status)
        output.append(" ")
        output.append(phrase(status))
        output.append("\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n")
        if !keepAlive { output.append("Connection: close\r\n") }
        output.append("Content-Length: ")
        output.appendDecimal(body.utf8.count)
        if let retryAfter {
            output.append("\r\nRetry-After: ")
            output.appendDecimal(retryAfter)
        }
        output.append("\r\n")
        output.append(extraFields)
        output.append("\r\n")
        output.append(body)
    }

    static func phrase(_ status: Int) -> String {
        switch status {
        case 400: return "Bad Request"
        case 404: return "Not Found"
        case 408: return "Request Timeout"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 431: return "Request Header Fields Too Large"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        default: return "Error"
        }
    }
}
