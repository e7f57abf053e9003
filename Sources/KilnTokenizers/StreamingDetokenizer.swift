/// Turns ids into text as they are generated, emitting only complete UTF-8: a character whose
/// bytes arrive in two tokens (a byte-fallback emoji, a split CJK character) is held back until
/// its last byte arrives, so a stream never shows half a character.
public struct StreamingDetokenizer {
    public let tokenizer: any Tokenizer
    public let skipSpecial: Bool
    private var pending: [UInt8] = []

    public init(tokenizer: any Tokenizer, skipSpecial: Bool = true) {
        self.tokenizer = tokenizer
        self.skipSpecial = skipSpecial
    }

    /// Adds a token; returns the text that became complete (possibly empty).
    public mutating func append(_ id: Int) throws -> String {
        pending += try tokenizer.bytes(for: id, skipSpecial: skipSpecial)
        let complete = Self.completePrefixLength(pending)
        let text = String(decoding: pending[0..<complete], as: UTF8.self)
        pending.removeFirst(complete)
        return text
    }

    /// Whatever is still held back, with an unfinished character as U+FFFD.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Bytes that can be emitted now: everything except a trailing sequence that is a valid but
    /// unfinished UTF-8 character. Invalid bytes are emitted (they decode to U+FFFD).
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        // Look back at most 3 bytes for the start of the last character.
        var start = bytes.count - 1
        while start >= 0 && start >= bytes.count - 4 && bytes[start] & 0xC0 == 0x80 { start -= 1 }
        guard start >= 0 && start >= bytes.count - 4 else { return bytes.count }
        let lead = bytes[start]
        let needed: Int
        switch lead {
        case 0xC2...0xDF: needed = 2
        case 0xE0...0xEF: needed = 3
        case 0xF0...0xF4: needed = 4
        default: return bytes.count  // ASCII or an invalid lead: nothing to wait for
        }
        let have = bytes.count - start
        return have < needed ? start : bytes.count
    }
}
