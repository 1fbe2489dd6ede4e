import WeirIO

/// Echoes WebSocket frames (RFC 6455): text and binary back unmasked, ping → pong, close → close.
final class WebSocketEcho {
    /// Consumes complete frames from `input`; returns false once a close frame was answered.
    func consume(_ input: Buffer, output: Buffer) -> Bool {
        while input.count >= 2 {
            let header = input.copyPrefix(14)
            let opcode = header[0] & 0x0F
            let masked = header[1] & 0x80 != 0
            var length = Int(header[1] & 0x7F)
            var offset = 2
            if length == 126 {
                guard header.count >= 4 else { return true }
                length = Int(header[2]) << 8 | Int(header[3])
                offset = 4
            } else if length == 127 {
                guard header.count >= 10 else { return true }
                length = (2..<10).reduce(0) { $0 << 8 | Int(header[$1]) }
                offset = 10
            }
            let maskOffset = offset
            if masked { offset += 4 }
            guard input.count >= offset + length else { return true }
            var frame = input.copyPrefix(offset + length)
            input.drain(offset + length)
            var payload = Array(frame[offset...])
            if masked {
                let mask = Array(frame[maskOffset..<(maskOffset + 4)])
                for i in payload.indices { payload[i] ^= mask[i % 4] }
            }
            frame.removeAll()
            let replyOpcode: UInt8 = opcode == 0x9 ? 0xA : opcode
            var reply: [UInt8] = [0x80 | replyOpcode]
            if payload.count < 126 {
                reply.append(UInt8(payload.count))
            } else if payload.count < 65536 {
                reply += [126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
            } else {
                reply.append(127)
                for shift in stride(from: 56, through: 0, by: -8) { reply.append(UInt8((payload.count >> shift) & 0xFF)) }
            }
            reply += payload
            if opcode != 0xA { output.append(reply) }
            if opcode == 0x8 { return false }
        }
        return true
    }
}
