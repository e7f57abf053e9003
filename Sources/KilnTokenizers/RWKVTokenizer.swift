/// RWKV's "world" vocabulary (GGUF `tokenizer.ggml.model = rwkv`): pieces are byte strings
/// spelled with escapes (`\n`, `\t`, `\r`, `\xHH`, `\\`), and text is cut greedily into the
/// longest piece at each byte, as llama.cpp's RWKV tokenizer does.
public final class RWKVTokenizer: Tokenizer {
    public let vocabularySize: Int
    public let specialTokens: SpecialTokens

    private let pieces: [String]
    private let pieceBytes: [[UInt8]]
    private let kinds: [TokenKind]
    private let ids: [String: Int]
    private let trie: ByteTrie
    private let splitter: SpecialTokenSplitter

    public init(tokens: [String], kinds: [TokenKind]? = nil, specialTokens: SpecialTokens = SpecialTokens(),
                kindOverrides: [Int: TokenKind] = [:]) throws {
        try validateVocabulary(tokens: tokens, kinds: kinds, specialTokens: specialTokens)
        vocabularySize = tokens.count
        pieces = tokens
        pieceBytes = tokens.map(Self.unescape)
        let kinds = kinds ?? [TokenKind](repeating: .normal, count: tokens.count)
        self.kinds = kinds
        ids = indexTokens(tokens)
        var trie = ByteTrie()
        for (id, bytes) in pieceBytes.enumerated() { trie.insert(bytes, value: Int32(id)) }
        self.trie = trie
        splitter = SpecialTokenSplitter(tokens: tokens, kinds: kinds, overrides: kindOverrides)
        self.specialTokens = specialTokens
    }

    /// A piece's bytes from its escaped spelling (lowercase hex after `\x`, as llama.cpp reads it).
    static func unescape(_ escaped: String) -> [UInt8] {
        var out: [UInt8] = []
        var escaping = false, hexLeft = 0
        var hex: UInt8 = 0
        for c in escaped.utf8 {
            if hexLeft > 0 {
                hex = hex &<< 4 &+ (c >= 0x61 ? c &- 0x61 &+ 10 : c &- 0x30)
                hexLeft -= 1
                if hexLeft == 0 { out.append(hex); hex = 0 }
            } else if escaping {
                switch c {
                case 0x74: out.append(9)  // t
                case 0x6E: out.append(10)  // n
                case 0x72: out.append(13)  // r
                case 0x78: hexLeft = 2  // x
                default: out.append(c)
                }
                escaping = false
            } else if c == 0x5C {
                escaping = true
            } else {
                out.append(c)
            }
        }
        return out
    }

    public func piece(for id: Int) -> String? { pieces.indices.contains(id) ? pieces[id] : nil }
    public func id(for piece: String) -> Int? { ids[piece] }

    public func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int] {
        var out: [Int] = []
        splitter.encode(text, parseSpecial: parseSpecial, into: &out) { t, out in encodeBytes(Array(t.utf8), into: &out) }
        return out
    }

    /// The longest piece at each position; a byte no piece starts with is the unknown token
    /// (dropped when the vocabulary has none).
    private func encodeBytes(_ text: [UInt8], into out: inout [Int]) {
        var position = 0
        while position < text.count {
            var longest: (id: Int32, end: Int)?
            trie.forEachPrefix(text, from: position) { end, id in longest = (id, end) }
            if let longest {
                out.append(Int(longest.id))
                position = longest.end
            } else {
                if let unknown = specialTokens.unknown { out.append(unknown) }
                position += 1
            }
        }
    }

    public func bytes(for id: Int, skipSpecial: Bool) throws -> [UInt8] {
        guard pieces.indices.contains(id) else { throw TokenizerError.idOutOfRange(id, vocabularySize: vocabularySize) }
        if kinds[id] == .control && skipSpecial { return [] }
        return pieceBytes[id]
    }

    public func decode(_ ids: [Int], skipSpecial: Bool) throws -> String {
        try decodedText(ids, skipSpecial: skipSpecial, droppingLeadingSpace: false)
    }
}
