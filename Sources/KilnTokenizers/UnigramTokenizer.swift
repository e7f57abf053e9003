/// SentencePiece's Unigram model as GGUF stores it (`tokenizer.ggml.model = t5`): the text is
/// normalized by the model's precompiled character map (a XOR-compressed double array of
/// replacements), spaces become `▁` (one in front, runs merged when the model says so), and
/// the Viterbi path over every vocabulary piece that fits picks the tokenization with the
/// highest total score, as llama.cpp's UGM tokenizer does (unknown characters cost the lowest
/// score minus 10; user-defined pieces score 0; runs of unknowns collapse into one).
public final class UnigramTokenizer: Tokenizer {
    public let vocabularySize: Int
    public let specialTokens: SpecialTokens
    public let addsBOS: Bool
    public let addsEOS: Bool
    public let addsSpacePrefix: Bool
    public let removesExtraWhitespace: Bool

    private let pieces: [String]
    private let scores: [Float]
    private let kinds: [TokenKind]
    private let ids: [String: Int]
    private let pieceTrie: ByteTrie  // normal, user-defined and unused pieces
    private let userDefinedTrie: ByteTrie
    private let unknownScore: Double
    private let charsmap: PrecompiledCharsmap?
    private let splitter: SpecialTokenSplitter

    public init(
        tokens: [String], scores: [Float], kinds: [TokenKind]? = nil, precompiledCharsmap: [UInt8]?,
        specialTokens: SpecialTokens, addsBOS: Bool = false, addsEOS: Bool = true, addsSpacePrefix: Bool = true,
        removesExtraWhitespace: Bool = false, kindOverrides: [Int: TokenKind] = [:]
    ) throws {
        try validateVocabulary(tokens: tokens, kinds: kinds, specialTokens: specialTokens)
        guard scores.count == tokens.count else {
            throw TokenizerError.invalidVocabulary("\(scores.count) scores for \(tokens.count) tokens")
        }
        guard specialTokens.unknown != nil else { throw TokenizerError.invalidVocabulary("a Unigram vocabulary needs an unknown token") }
        vocabularySize = tokens.count
        pieces = tokens
        self.scores = scores
        let kinds = kinds ?? [TokenKind](repeating: .normal, count: tokens.count)
        self.kinds = kinds
        ids = indexTokens(tokens)
        var pieceTrie = ByteTrie(), userDefinedTrie = ByteTrie()
        var minimum = Float.greatestFiniteMagnitude
        for (id, token) in tokens.enumerated() {
            if kinds[id] == .normal { minimum = min(minimum, scores[id]) }
            if [.normal, .userDefined, .unused].contains(kinds[id]) { pieceTrie.insert(Array(token.utf8), value: Int32(id)) }
            if kinds[id] == .userDefined { userDefinedTrie.insert(Array(token.utf8), value: Int32(id)) }
        }
        self.pieceTrie = pieceTrie
        self.userDefinedTrie = userDefinedTrie
        unknownScore = Double(minimum) - 10
        charsmap = try precompiledCharsmap.map(PrecompiledCharsmap.init)
        splitter = SpecialTokenSplitter(tokens: tokens, kinds: kinds, overrides: kindOverrides)
        self.specialTokens = specialTokens
        self.addsBOS = addsBOS
        self.addsEOS = addsEOS
        self.addsSpacePrefix = addsSpacePrefix
        self.removesExtraWhitespace = removesExtraWhitespace
    }

    public func piece(for id: Int) -> String? { pieces.indices.contains(id) ? pieces[id] : nil }
    public func id(for piece: String) -> Int? { ids[piece] }

    public func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int] {
        var out: [Int] = []
        if addSpecial && addsBOS, let bos = specialTokens.bos { out.append(bos) }
        splitter.encode(text, parseSpecial: parseSpecial, into: &out) { t, out in encodeNormalized(normalize(Array(t.utf8)), into: &out) }
        if addSpecial && addsEOS, let eos = specialTokens.eos { out.append(eos) }
        return out
    }

    /// The charsmap's replacements (user-defined pieces kept whole), spaces as `▁`: one in
    /// front of the first non-space, every space kept unless runs are merged.
    func normalize(_ input: [UInt8]) -> [UInt8] {
        let space: [UInt8] = [0xE2, 0x96, 0x81]
        var out: [UInt8] = []
        out.reserveCapacity(input.count * 3)
        var spacePrepended = false, inWord = false
        var offset = 0
        while offset < input.count {
            let (replacement, consumed) = normalizedPrefix(input, at: offset)
            for c in replacement {
                if c != 0x20 {
                    if !inWord {
                        inWord = true
                        if (addsSpacePrefix && !spacePrepended) || removesExtraWhitespace {
                            out += space
                            spacePrepended = true
                        }
                    }
                    out.append(c)
                } else {
                    inWord = false
                    if !removesExtraWhitespace { out += space }
                }
            }
            offset += consumed
        }
        return out
    }

    private func normalizedPrefix(_ input: [UInt8], at offset: Int) -> (ArraySlice<UInt8>, Int) {
        let user = userDefinedTrie.longestPath(input, from: offset)
        if user > 0 { return (input[offset..<(offset + user)], user) }
        if let charsmap, let (replacement, length) = charsmap.longestReplacement(input, from: offset) {
            return (replacement, length)
        }
        let length = min(utf8Length(input[offset]), input.count - offset)
        return (input[offset..<(offset + length)], length)
    }

    /// Viterbi over the normalized bytes, one code point at a time.
    private func encodeNormalized(_ text: [UInt8], into out: inout [Int]) {
        guard !text.isEmpty else { return }
        let unknown = specialTokens.unknown!
        var bestID = [Int](repeating: unknown, count: text.count + 1)
        var bestStart = [Int](repeating: 0, count: text.count + 1)
        var bestScore = [Double](repeating: -Double.greatestFiniteMagnitude, count: text.count + 1)
        bestScore[0] = 0
        var offset = 0
        while offset < text.count {
            let width = min(utf8Length(text[offset]), text.count - offset)
            var wholeCharacter = false
            let base = bestScore[offset]
            pieceTrie.forEachPrefix(text, from: offset) { end, id in
                if end - offset == width { wholeCharacter = true }
                let score = base + (kinds[Int(id)] == .userDefined ? 0 : Double(scores[Int(id)]))
                if score > bestScore[end] {
                    bestScore[end] = score
                    bestID[end] = Int(id)
                    bestStart[end] = offset
                }
            }
            if !wholeCharacter {
                let end = offset + width
                let score = base + unknownScore
                if score > bestScore[end] {
                    bestScore[end] = score
                    bestID[end] = unknown
                    bestStart[end] = offset
                }
            }
            offset += width
        }
        var reversed: [Int] = []
        var position = text.count
        var previousUnknown = false
        while true {
            let id = bestID[position]
            let isUnknown = id == unknown
            if !(previousUnknown && isUnknown) { reversed.append(id) }
            if bestStart[position] == 0 { break }
            previousUnknown = isUnknown
            position = bestStart[position]
        }
        out += reversed.reversed()
    }

    /// The length llama.cpp gives a UTF-8 sequence from its first byte (1 for a stray
    /// continuation byte).
    private func utf8Length(_ first: UInt8) -> Int {
        switch first >> 4 {
        case 0xC, 0xD: return 2
        case 0xE: return 3
        case 0xF: return 4
        default: return 1
        }
    }

    public func bytes(for id: Int, skipSpecial: Bool) throws -> [UInt8] {
        guard pieces.indices.contains(id) else { throw TokenizerError.idOutOfRange(id, vocabularySize: vocabularySize) }
        return pieceBytes(pieces[id], kind: kinds[id], skipSpecial: skipSpecial, dropped: [.control, .unknown, .unused], spaceMarks: true)
    }

    /// Text of `ids`; the `▁` added in front is removed again.
    public func decode(_ ids: [Int], skipSpecial: Bool) throws -> String {
        try decodedText(ids, skipSpecial: skipSpecial, droppingLeadingSpace: addsSpacePrefix)
    }
}

/// A byte trie with a value at some nodes: (node, byte) → child in one byte table.
struct ByteTrie: Sendable {
    private var edges = ByteSequenceTable(capacity: 1024)
    private var values: [Int32] = [-1]

    /// Sets the value at `key`'s node (a later insert of the same key replaces it, as
    /// llama.cpp's trie does).
    mutating func insert(_ key: [UInt8], value: Int32) {
        var node = 0
        for byte in key {
            if let child = edges.value(in: [byte], 0..<1, split: node) {
                node = Int(child)
            } else {
                values.append(-1)
                edges.insert([byte], split: node, value: Int32(values.count - 1))
                node = values.count - 1
            }
        }
        if !key.isEmpty { values[node] = value }
    }

    /// Calls `body(end, value)` for every key that is a prefix of `text[from...]`, shortest first.
    func forEachPrefix(_ text: [UInt8], from: Int, _ body: (Int, Int32) -> Void) {
        var node = 0, i = from
        while i < text.count, let child = edges.value(in: text, i..<(i + 1), split: node) {
            node = Int(child)
            i += 1
            if values[node] >= 0 { body(i, values[node]) }
        }
    }

    /// How far `text[from...]` follows the trie's edges, whether or not a key ends there (what
    /// llama.cpp's `get_longest_prefix` returns).
    func longestPath(_ text: [UInt8], from: Int) -> Int {
        var node = 0, i = from
        while i < text.count, let child = edges.value(in: text, i..<(i + 1), split: node) {
            node = Int(child)
            i += 1
        }
        return i - from
    }
}

/// SentencePiece's precompiled normalization map: a XOR-compressed compact double array over
/// input bytes whose leaves index NUL-terminated replacement strings.
struct PrecompiledCharsmap: Sendable {
    private let array: [UInt32]
    private let replacements: [UInt8]

    init(_ blob: [UInt8]) throws {
        guard blob.count >= 4 else { throw TokenizerError.invalidVocabulary("the precompiled charsmap is shorter than its 4-byte header") }
        let size = Int(UInt32(blob[0]) | UInt32(blob[1]) << 8 | UInt32(blob[2]) << 16 | UInt32(blob[3]) << 24)
        guard size + 4 < blob.count, size % 4 == 0 else {
            throw TokenizerError.invalidVocabulary("the precompiled charsmap's double array (\(size) bytes) does not fit its \(blob.count) bytes")
        }
        array = stride(from: 4, to: 4 + size, by: 4).map {
            UInt32(blob[$0]) | UInt32(blob[$0 + 1]) << 8 | UInt32(blob[$0 + 2]) << 16 | UInt32(blob[$0 + 3]) << 24
        }
        replacements = Array(blob[(4 + size)...])
    }

    /// The replacement for the longest input prefix the map knows, and the prefix's length.
    /// A walk that leaves the array or a replacement without its NUL ends the match.
    func longestReplacement(_ input: [UInt8], from offset: Int) -> (ArraySlice<UInt8>, Int)? {
        func node(_ i: UInt32) -> UInt32? { Int(i) < array.count ? array[Int(i)] : nil }
        func base(_ n: UInt32) -> UInt32 { (n >> 10) << ((n & (1 << 9)) >> 6) }
        guard let root = node(0) else { return nil }
        var index = base(root)
        var best: (length: Int, value: UInt32)?
        var i = offset
        while i < input.count {
            let c = input[i]
            if c == 0 { break }
            index ^= UInt32(c)
            guard let n = node(index), n & ((1 << 31) | 0xFF) == UInt32(c) else { break }
            let leaf = (n >> 8) & 1 == 1
            index ^= base(n)
            if leaf {
                guard let v = node(index) else { break }
                best = (i - offset + 1, v & ((1 << 31) - 1))
            }
            i += 1
        }
        guard let best, Int(best.value) < replacements.count,
              let end = replacements[Int(best.value)...].firstIndex(of: 0) else { return nil }
        return (replacements[Int(best.value)..<end], best.length)
    }
}
