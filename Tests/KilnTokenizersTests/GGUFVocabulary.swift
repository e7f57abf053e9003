import KilnFormats
import KilnTokenizers

/// Builds a byte-level BPE tokenizer from a GGUF's `tokenizer.ggml.*` metadata (test-side until
/// the model layer owns this adapter).
func byteLevelTokenizer(from file: GGUFFile) throws -> ByteLevelBPETokenizer {
    let tokens = try file.strings("tokenizer.ggml.tokens")
    let merges = try file.strings("tokenizer.ggml.merges")
    let kinds = try file.array("tokenizer.ggml.token_type").integers?.map { TokenKind(rawValue: $0) ?? .normal }
    let pre = try PreTokenizer(ggufName: file["tokenizer.ggml.pre"].flatMap { if case .string(let s) = $0 { s } else { nil } })
    func id(_ key: String) -> Int? { file[key]?.integer }
    func flag(_ key: String) -> Bool? { if case .bool(let b)? = file[key] { b } else { nil } }
    return try ByteLevelBPETokenizer(
        tokens: tokens, merges: merges, kinds: kinds, preTokenizer: pre,
        specialTokens: SpecialTokens(bos: id("tokenizer.ggml.bos_token_id"), eos: id("tokenizer.ggml.eos_token_id"),
                                     pad: id("tokenizer.ggml.padding_token_id"), unknown: id("tokenizer.ggml.unknown_token_id")),
        addsBOS: flag("tokenizer.ggml.add_bos_token") ?? false, addsEOS: flag("tokenizer.ggml.add_eos_token") ?? false,
        ignoresMerges: pre == .llama3)
}

/// Builds a SentencePiece-style tokenizer from a GGUF whose `tokenizer.ggml.model` is `llama`.
func scoredTokenizer(from file: GGUFFile) throws -> ScoredBPETokenizer {
    let tokens = try file.strings("tokenizer.ggml.tokens")
    guard let scores = try file.array("tokenizer.ggml.scores").floats else {
        throw GGUFError.wrongType(key: "tokenizer.ggml.scores", expected: "array of float32", found: "another array")
    }
    let kinds = try file.array("tokenizer.ggml.token_type").integers?.map { TokenKind(rawValue: $0) ?? .normal }
    func id(_ key: String) -> Int? { file[key]?.integer }
    func flag(_ key: String) -> Bool? { if case .bool(let b)? = file[key] { b } else { nil } }
    return try ScoredBPETokenizer(
        tokens: tokens, scores: scores, kinds: kinds,
        specialTokens: SpecialTokens(bos: id("tokenizer.ggml.bos_token_id"), eos: id("tokenizer.ggml.eos_token_id"),
                                     pad: id("tokenizer.ggml.padding_token_id"), unknown: id("tokenizer.ggml.unknown_token_id")),
        addsBOS: flag("tokenizer.ggml.add_bos_token") ?? true, addsEOS: flag("tokenizer.ggml.add_eos_token") ?? false,
        addsSpacePrefix: flag("tokenizer.ggml.add_space_prefix") ?? true)
}

/// Builds a WordPiece tokenizer from a GGUF whose `tokenizer.ggml.model` is `bert`.
func wordPieceTokenizer(from file: GGUFFile) throws -> WordPieceTokenizer {
    let tokens = try file.strings("tokenizer.ggml.tokens")
    let kinds = try file.array("tokenizer.ggml.token_type").integers?.map { TokenKind(rawValue: $0) ?? .normal }
    func id(_ key: String) -> Int? { file[key]?.integer }
    return try WordPieceTokenizer(
        tokens: tokens, kinds: kinds, marking: .wordStartPrefix("\u{2581}"),
        specialTokens: SpecialTokens(pad: id("tokenizer.ggml.padding_token_id"), unknown: id("tokenizer.ggml.unknown_token_id")),
        classifier: id("tokenizer.ggml.cls_token_id"), separator: id("tokenizer.ggml.seperator_token_id"))
}
