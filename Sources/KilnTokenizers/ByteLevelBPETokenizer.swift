/// GPT-2-style byte-level BPE (GGUF `tokenizer.ggml.model = gpt2`): text is split by the
/// model's pre-tokenizer, each piece's UTF-8 bytes are mapped to visible characters, and the
/// vocabulary's merges are applied lowest rank first (leftmost on ties), as llama.cpp does.
public final class ByteLevelBPETokenizer: Tokenizer {
    public let vocabularySize: Int
    public let specialTokens: SpecialTokens
    public let preTokenizer: PreTokenizer
    /// Prepend BOS when `addSpecial` is set (GGUF `tokenizer.ggml.add_bos_token`).
    public let addsBOS: Bool
    /// Append EOS when `addSpecial` is set (GGUF `tokenizer.ggml.add_eos_token`).
    public let addsEOS: Bool
    /// Look a whole piece up before merging (Llama 3 does).
    public let ignoresMerges: Bool

    private let pieces: [String]
    private let kinds: [TokenKind]
    private let ids: [String: Int]
    private let ranks: [String: Int]  // "left right" → merge rank
    private let splitter: SpecialTokenSplitter

    /// - Parameters:
    ///   - tokens: the vocabulary, in byte-level form, indexed by id.
    ///   - merges: "left right" pairs, highest priority first.
    ///   - kinds: per-token kinds (GGUF token types); nil treats every token as normal.
    public init(
        tokens: [String], merges: [String], kinds: [TokenKind]? = nil, preTokenizer: PreTokenizer,
        specialTokens: SpecialTokens = SpecialTokens(), addsBOS: Bool = false, addsEOS: Bool = false,
        ignoresMerges: Bool = false
    ) throws {
        try validateVocabulary(tokens: tokens, kinds: kinds, specialTokens: specialTokens)
        vocabularySize = tokens.count
        pieces = tokens
        self.kinds = kinds ?? [TokenKind](repeating: .normal, count: tokens.count)
        ids = indexTokens(tokens)
        var ranks: [String: Int] = [:]
        ranks.reserveCapacity(merges.count)
        for (rank, merge) in merges.enumerated() {
            let parts = merge.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw TokenizerError.invalidVocabulary("merge #\(rank) \"\(merge)\" is not two pieces separated by a space")
            }
            if ranks[merge] == nil { ranks[merge] = rank }
        }
        self.ranks = ranks
        splitter = SpecialTokenSplitter(tokens: tokens, kinds: self.kinds)
        self.specialTokens = specialTokens
        self.preTokenizer = preTokenizer
        self.addsBOS = addsBOS
        self.addsEOS = addsEOS
        self.ignoresMerges = ignoresMerges
    }

    public func piece(for id: Int) -> String? { pieces.indices.contains(id) ? pieces[id] : nil }
    public func id(for piece: String) -> Int? { ids[piece] }
    public func kind(of id: Int) -> TokenKind? { kinds.indices.contains(id) ? kinds[id] : nil }

    // MARK: encoding

    public func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int] {
        var out: [Int] = []
        if addSpecial && addsBOS, let bos = specialTokens.bos { out.append(bos) }
        for fragment in splitter.split(text, parseSpecial: parseSpecial) {
            switch fragment {
            case .special(let id): out.append(id)
            case .text(let t): encodePlain(t, into: &out)
            }
        }
        if addSpecial && addsEOS, let eos = specialTokens.eos { out.append(eos) }
        return out
    }

    func encodePlain(_ text: Substring, into out: inout [Int]) {
        let scalars = Array(text.unicodeScalars)
        for range in preTokenizer.split(scalars) {
            var utf8: [UInt8] = []
            for scalar in scalars[range] { utf8.append(contentsOf: String(scalar).utf8) }
            let word = ByteLevel.encode(utf8)
            if ignoresMerges, let id = ids[word] {
                out.append(id)
                continue
            }
            for symbol in merge(word) {
                if let id = ids[symbol] {
                    out.append(id)
                } else {  // not in the vocabulary: fall back to one token per byte
                    for scalar in symbol.unicodeScalars {
                        if let id = ids[String(scalar)] { out.append(id) } else if let unknown = specialTokens.unknown { out.append(unknown) }
                    }
                }
            }
        }
    }

    /// The word's characters merged pair by pair, lowest rank first, leftmost on ties.
    func merge(_ word: String) -> [String] {
        var symbols = word.unicodeScalars.map { String($0) }
        while symbols.count > 1 {
            var best = Int.max, at = -1
            for i in 0..<(symbols.count - 1) {
                if let rank = ranks[symbols[i] + " " + symbols[i + 1]], rank < best {
                    best = rank
                    at = i
                }
            }
            if at < 0 { break }
            symbols[at] += symbols[at + 1]
            symbols.remove(at: at + 1)
        }
        return symbols
    }

    // MARK: decoding

    public func bytes(for id: Int, skipSpecial: Bool) throws -> [UInt8] {
        guard pieces.indices.contains(id) else { throw TokenizerError.idOutOfRange(id, vocabularySize: vocabularySize) }
        switch kinds[id] {
        case .control: return skipSpecial ? [] : Array(pieces[id].utf8)
        case .userDefined: return Array(pieces[id].utf8)
        default: return ByteLevel.decode(pieces[id]) ?? Array(pieces[id].utf8)
        }
    }

    public func decode(_ ids: [Int], skipSpecial: Bool) throws -> String {
        var utf8: [UInt8] = []
        for id in ids { utf8 += try bytes(for: id, skipSpecial: skipSpecial) }
        return String(decoding: utf8, as: UTF8.self)
    }
}
