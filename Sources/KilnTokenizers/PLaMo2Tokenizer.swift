/// PLaMo 2's vocabulary (GGUF `tokenizer.ggml.model = plamo2`): a Unigram-style lowest-cost
/// path over code points, computed from the end of the text, as llama.cpp's PLaMo-2 tokenizer
/// does. A piece costs −round(score × 10⁴); a code point no piece covers costs 10⁷ and is
/// spelled with its UTF-8 `<0xNN>` byte tokens. Among equal costs the longest piece wins, and
/// the unknown spelling comes last. A leading byte-order mark is dropped.
public final class PLaMo2Tokenizer: Tokenizer {
    public let vocabularySize: Int
    public let specialTokens: SpecialTokens

    private let pieces: [String]
    private let kinds: [TokenKind]
    private let ids: [String: Int]
    private let trie: ByteTrie  // every piece but the byte tokens, → index into `costs`
    private let costs: [(id: Int32, cost: Int64)]
    private let byteTokens: [Int]
    private let splitter: SpecialTokenSplitter

    private static let unknownCost: Int64 = 10_000_000

    public init(tokens: [String], scores: [Float], kinds: [TokenKind]? = nil, specialTokens: SpecialTokens = SpecialTokens(),
                kindOverrides: [Int: TokenKind] = [:]) throws {
        try validateVocabulary(tokens: tokens, kinds: kinds, specialTokens: specialTokens)
        guard scores.count == tokens.count else {
            throw TokenizerError.invalidVocabulary("\(scores.count) scores for \(tokens.count) tokens")
        }
        vocabularySize = tokens.count
        pieces = tokens
        let kinds = kinds ?? [TokenKind](repeating: .normal, count: tokens.count)
        self.kinds = kinds
        ids = indexTokens(tokens)
        var byteTokens = [Int](repeating: 0, count: 256)
        // The last token of a text wins, as llama.cpp's maps keep it (keyed by bytes: a String
        // key would merge canonically equal spellings such as "é" and "e\u{301}").
        var latest: [[UInt8]: (id: Int, score: Float)] = [:]
        for (id, token) in tokens.enumerated() {
            if kinds[id] == .byte {
                let hex = token.utf8.count == 6 && token.hasPrefix("<0x") && token.hasSuffix(">")
                    ? UInt8(token.dropFirst(3).dropLast(), radix: 16) : nil
                if let hex { byteTokens[Int(hex)] = id }
                continue
            }
            latest[Array(token.utf8)] = (id, scores[id])
        }
        if let missing = byteTokens.firstIndex(of: 0) {
            throw TokenizerError.invalidVocabulary("PLaMo 2 needs a byte token for every byte; <0x\(String(missing, radix: 16, uppercase: true))> is missing")
        }
        var trie = ByteTrie()
        var costs: [(id: Int32, cost: Int64)] = []
        for (text, entry) in latest where entry.score.isFinite && !text.isEmpty {
            let scaled = (Double(entry.score) * 1e4).rounded(.toNearestOrAwayFromZero)
            // llama.cpp keeps scaled scores in 32 bits; anything outside is a broken file, not a trap here.
            guard abs(scaled) <= Double(Int32.max) else {
                throw TokenizerError.invalidVocabulary("token \(entry.id) has score \(entry.score), outside what PLaMo 2's integer scores hold")
            }
            trie.insert(text, value: Int32(costs.count))
            costs.append((Int32(entry.id), -Int64(scaled)))
        }
        self.trie = trie
        self.costs = costs
        self.byteTokens = byteTokens
        splitter = SpecialTokenSplitter(tokens: tokens, kinds: kinds, overrides: kindOverrides)
        self.specialTokens = specialTokens
    }

    public func piece(for id: Int) -> String? { pieces.indices.contains(id) ? pieces[id] : nil }
    public func id(for piece: String) -> Int? { ids[piece] }

    public func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int] {
        var out: [Int] = []
        splitter.encode(text, parseSpecial: parseSpecial, into: &out) { t, out in encodeText(t, into: &out) }
        return out
    }

    private func encodeText(_ text: Substring, into out: inout [Int]) {
        var scalars = Array(text.unicodeScalars)
        if scalars.first == "\u{FEFF}" { scalars.removeFirst() }
        guard !scalars.isEmpty else { return }
        var utf8: [UInt8] = [], offsets: [Int] = []
        for s in scalars {
            offsets.append(utf8.count)
            utf8 += String(s).utf8
        }
        var scalarAt = [Int](repeating: -1, count: utf8.count + 1)  // byte offset → scalar index
        for (i, offset) in offsets.enumerated() { scalarAt[offset] = i }
        scalarAt[utf8.count] = scalars.count
        let n = scalars.count
        var cost = [Int64](repeating: 1 << 60, count: n + 1)
        cost[n] = 0
        var length = [Int](repeating: 1, count: n + 1)
        var token = [Int32](repeating: -1, count: n + 1)
        for i in stride(from: n - 1, through: 0, by: -1) {
            var matches: [(end: Int, index: Int32)] = []
            trie.forEachPrefix(utf8, from: offsets[i]) { end, index in
                if scalarAt[end] >= 0 { matches.append((scalarAt[end], index)) }
            }
            for match in matches.reversed() {  // longest first; a tie keeps the earlier
                let c = cost[match.end] + costs[Int(match.index)].cost
                if c < cost[i] {
                    cost[i] = c
                    length[i] = match.end - i
                    token[i] = costs[Int(match.index)].id
                }
            }
            if cost[i + 1] + Self.unknownCost < cost[i] {
                cost[i] = cost[i + 1] + Self.unknownCost
                length[i] = 1
                token[i] = -1
            }
        }
        var i = 0
        while i < n {
            if token[i] >= 0 {
                out.append(Int(token[i]))
            } else {
                for byte in String(scalars[i]).utf8 { out.append(byteTokens[Int(byte)]) }
            }
            i += length[i]
        }
    }

    public func bytes(for id: Int, skipSpecial: Bool) throws -> [UInt8] {
        guard pieces.indices.contains(id) else { throw TokenizerError.idOutOfRange(id, vocabularySize: vocabularySize) }
        return pieceBytes(pieces[id], kind: kinds[id], skipSpecial: skipSpecial, spaceMarks: false)
    }

    public func decode(_ ids: [Int], skipSpecial: Bool) throws -> String {
        try decodedText(ids, skipSpecial: skipSpecial, droppingLeadingSpace: false)
    }
}
