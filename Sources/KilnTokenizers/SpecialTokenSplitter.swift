/// Finds special-token text in input before ordinary tokenization, as llama.cpp does: longest
/// tokens first, user-defined tokens always, control tokens only when special parsing is on.
struct SpecialTokenSplitter: Sendable {
    enum Fragment {
        case text(Substring)
        case special(Int)
    }

    /// (text, id, is control), longest text first.
    private let specials: [(text: String, id: Int, control: Bool)]

    init(tokens: [String], kinds: [TokenKind]) {
        specials = kinds.enumerated()
            .filter { ($0.element == .control || $0.element == .userDefined) && !tokens[$0.offset].isEmpty }
            .map { (tokens[$0.offset], $0.offset, $0.element == .control) }
            .sorted { $0.text.utf8.count > $1.text.utf8.count }
    }

    func split(_ text: String, parseSpecial: Bool) -> [Fragment] {
        var fragments: [Fragment] = text.isEmpty ? [] : [.text(Substring(text))]
        for special in specials where parseSpecial || !special.control {
            var next: [Fragment] = []
            for fragment in fragments {
                guard case .text(var rest) = fragment else {
                    next.append(fragment)
                    continue
                }
                // Matched on scalars, not Characters: a combining mark after a token must not hide it.
                while let match = rest.unicodeScalars.firstRange(of: special.text.unicodeScalars) {
                    if match.lowerBound > rest.startIndex { next.append(.text(rest[rest.startIndex..<match.lowerBound])) }
                    next.append(.special(special.id))
                    rest = rest[match.upperBound...]
                }
                if !rest.isEmpty { next.append(.text(rest)) }
            }
            fragments = next
        }
        return fragments
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
