/// Finds special-token text in input before ordinary tokenization, as llama.cpp does: longest
/// tokens first, user-defined tokens always, control tokens only when special parsing is on.
struct SpecialTokenSplitter: Sendable {
    enum Fragment {
        case text(Substring)
        case special(Int)
    }

    /// (UTF-8 of the text, id, is control), longest text first.
    private let specials: [(bytes: [UInt8], id: Int, control: Bool)]
    /// The specials' UTF-8 as a trie, to find in one pass which of them occur in a text at all:
    /// (node, byte) → child node, and the specials ending at each node (equal texts share one).
    private let edges: ByteSequenceTable
    private let ending: [[Int32]]
    private let firstBytes: [Bool]

    /// Control and unknown tokens split only with special parsing on; user-defined ones always.
    /// `overrides` replaces a token's kind for this purpose (llama.cpp gives end-of-turn texts
    /// such as `</s>` the control attribute whatever the file says).
    init(tokens: [String], kinds: [TokenKind], overrides: [Int: TokenKind] = [:]) {
        specials = kinds.enumerated()
            .map { (id: $0.offset, kind: overrides[$0.offset] ?? $0.element) }
            .filter { [.control, .userDefined, .unknown].contains($0.kind) && !tokens[$0.id].isEmpty }
            .map { (Array(tokens[$0.id].utf8), $0.id, $0.kind != .userDefined) }
            .sorted { $0.bytes.count > $1.bytes.count }
        var edges = ByteSequenceTable(capacity: specials.reduce(0) { $0 + $1.bytes.count })
        var ending: [[Int32]] = [[]]
        var firstBytes = [Bool](repeating: false, count: 256)
        for (index, special) in specials.enumerated() {
            var node = 0
            for byte in special.bytes {
                if let child = edges.value(in: [byte], 0..<1, split: node) {
                    node = Int(child)
                } else {
                    ending.append([])
                    edges.insert([byte], split: node, value: Int32(ending.count - 1))
                    node = ending.count - 1
                }
            }
            ending[node].append(Int32(index))
            firstBytes[Int(special.bytes[0])] = true
        }
        self.edges = edges
        self.ending = ending
        self.firstBytes = firstBytes
    }

    /// Indices into `specials` (ascending, so longest first) of every special whose text occurs
    /// somewhere in `utf8`: only these can split it.
    private func occurring(in utf8: [UInt8], parseSpecial: Bool) -> [Int] {
        guard !specials.isEmpty else { return [] }
        var nodes: [Int] = []  // few distinct specials occur in one text: a list beats a hashed set
        for start in utf8.indices where firstBytes[Int(utf8[start])] {
            var node = 0, i = start
            while i < utf8.count, let child = edges.value(in: utf8, i..<(i + 1), split: node) {
                node = Int(child)
                if !ending[node].isEmpty && !nodes.contains(node) { nodes.append(node) }
                i += 1
            }
        }
        return nodes.flatMap { ending[$0].map(Int.init) }.filter { parseSpecial || !specials[$0].control }.sorted()
    }

    /// `text`'s ids appended to `out`: each special token's id, and what `plain` makes of the
    /// text between them.
    func encode(_ text: String, parseSpecial: Bool, into out: inout [Int], plain: (Substring, inout [Int]) -> Void) {
        for fragment in split(text, parseSpecial: parseSpecial) {
            switch fragment {
            case .special(let id): out.append(id)
            case .text(let t): plain(t, &out)
            }
        }
    }

    /// The fragments of `text`, as llama.cpp makes them: each special in turn, longest first,
    /// splits every text fragment at each of its occurrences, left to right.
    func split(_ text: String, parseSpecial: Bool) -> [Fragment] {
        guard !text.isEmpty else { return [] }
        let utf8 = Array(text.utf8)
        let candidates = occurring(in: utf8, parseSpecial: parseSpecial)
        guard !candidates.isEmpty else { return [.text(Substring(text))] }
        enum Piece { case text(Range<Int>), special(Int) }
        var pieces: [Piece] = [.text(0..<utf8.count)]
        for index in candidates {
            let special = specials[index].bytes
            var next: [Piece] = []
            for piece in pieces {
                guard case .text(let range) = piece else {
                    next.append(piece)
                    continue
                }
                var rest = range.lowerBound, i = range.lowerBound
                while i + special.count <= range.upperBound {
                    if utf8[i] == special[0] && utf8[i..<(i + special.count)].elementsEqual(special) {
                        if i > rest { next.append(.text(rest..<i)) }
                        next.append(.special(specials[index].id))
                        i += special.count
                        rest = i
                    } else {
                        i += 1
                    }
                }
                if rest < range.upperBound { next.append(.text(rest..<range.upperBound)) }
            }
            pieces = next
        }
        // Every cut falls on a scalar boundary (a special's UTF-8 starts with a lead byte and is whole).
        let view = text.utf8
        return pieces.map { piece in
            switch piece {
            case .special(let id): return .special(id)
            case .text(let r):
                return .text(text[view.index(view.startIndex, offsetBy: r.lowerBound)..<view.index(view.startIndex, offsetBy: r.upperBound)])
            }
        }
    }
}

/// Checks shared by every vocabulary-backed tokenizer.
func validateVocabulary(tokens: [String], kinds: [TokenKind]?, specialTokens: SpecialTokens) throws {
    guard !tokens.isEmpty else { throw TokenizerError.invalidVocabulary("no tokens") }
    if let kinds, kinds.count != tokens.count {
        throw TokenizerError.invalidVocabulary("\(kinds.count) token types for \(tokens.count) tokens")
    }
    for (name, id) in [("bos", specialTokens.bos), ("eos", specialTokens.eos), ("pad", specialTokens.pad),
                       ("unknown", specialTokens.unknown)] {
        if let id, !(0..<tokens.count).contains(id) {
            throw TokenizerError.invalidVocabulary("\(name) id \(id) is outside the vocabulary of \(tokens.count)")
        }
    }
    if let bad = specialTokens.endOfGeneration.first(where: { !(0..<tokens.count).contains($0) }) {
        throw TokenizerError.invalidVocabulary("end-of-generation id \(bad) is outside the vocabulary of \(tokens.count)")
    }
}

/// First id of each distinct token string.
func indexTokens(_ tokens: [String]) -> [String: Int] {
    var ids: [String: Int] = [:]
    ids.reserveCapacity(tokens.count)
    for (id, token) in tokens.enumerated() where ids[token] == nil { ids[token] = id }
    return ids
}
