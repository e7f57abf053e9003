import KilnFormats
import KilnTokenizers

/// The tokenizer a GGUF model carries in its `tokenizer.ggml.*` metadata.
public enum GGUFTokenizer {
    /// Builds it for `tokenizer.ggml.model` gpt2 (byte-level BPE, every `tokenizer.ggml.pre`
    /// llama.cpp knows), gemma4 (BPE over raw UTF-8), llama (SentencePiece-style BPE), t5
    /// (SentencePiece Unigram), rwkv (greedy longest byte pieces), plamo2 (lowest-cost path from
    /// the end) or bert (WordPiece); any other model is an error naming it. `preTokenizerName`
    /// stands in for the file's `tokenizer.ggml.pre` (for files converted without it, or with
    /// the wrong one).
    public static func load(from file: GGUFFile, preTokenizerName: String? = nil) throws -> any Tokenizer {
        let model = try file.string("tokenizer.ggml.model")
        let tokens = try file.strings("tokenizer.ggml.tokens")
        let kinds = try file["tokenizer.ggml.token_type"].map { _ in
            guard let values = try file.array("tokenizer.ggml.token_type").integers else {
                throw GGUFError.wrongType(key: "tokenizer.ggml.token_type", expected: "array of integers", found: "another array")
            }
            return values.map { TokenKind(rawValue: $0) ?? .normal }
        }
        func id(_ key: String) -> Int? { file[key]?.integer }
        func flag(_ key: String) -> Bool? { if case .bool(let b)? = file[key] { b } else { nil } }
        // llama.cpp's default ids for the vocabulary kinds whose files may leave them out.
        let defaults: (bos: Int?, eos: Int?, pad: Int?, unknown: Int?) = switch model {
        case "t5": (nil, 1, 0, 2)
        case "plamo2": (1, 2, 3, 0)
        default: (nil, nil, nil, nil)
        }
        var special = SpecialTokens(
            bos: id("tokenizer.ggml.bos_token_id") ?? defaults.bos, eos: id("tokenizer.ggml.eos_token_id") ?? defaults.eos,
            pad: id("tokenizer.ggml.padding_token_id") ?? defaults.pad,
            unknown: id("tokenizer.ggml.unknown_token_id") ?? defaults.unknown)
        let turnEnds = [special.eos, id("tokenizer.ggml.eot_token_id"), id("tokenizer.ggml.eom_token_id")]
            .compactMap { $0 }.filter { tokens.indices.contains($0) }
        let controlLooking = controlLooking(tokens: tokens)
        special.endOfGeneration = endOfGeneration(tokens: tokens, ends: turnEnds, controlLooking: controlLooking)
        let kindOverrides = kindOverrides(tokens: tokens, ends: turnEnds, controlLooking: controlLooking)
        switch model {
        case "gpt2", "gemma4":
            // A gemma4 vocabulary is byte-level BPE's merges over raw UTF-8 with spaces as ▁.
            let name = preTokenizerName ?? (model == "gemma4" ? "gemma4" : file["tokenizer.ggml.pre"].flatMap { if case .string(let s) = $0 { s } else { nil } })
            return try ByteLevelBPETokenizer(
                tokens: tokens, merges: try file.strings("tokenizer.ggml.merges"), kinds: kinds,
                preTokenizer: try PreTokenizer(ggufName: name), specialTokens: special,
                addsBOS: flag("tokenizer.ggml.add_bos_token") ?? false, addsEOS: flag("tokenizer.ggml.add_eos_token") ?? false,
                ignoresMerges: PreTokenizer.ignoresMerges(ggufName: name),
                escapesWhitespace: PreTokenizer.escapesWhitespace(ggufName: name),
                kindOverrides: kindOverrides)
        case "llama":
            guard let scores = try file.array("tokenizer.ggml.scores").floats else {
                throw GGUFError.wrongType(key: "tokenizer.ggml.scores", expected: "array of float32", found: "another array")
            }
            return try ScoredBPETokenizer(
                tokens: tokens, scores: scores, kinds: kinds, specialTokens: special,
                addsBOS: flag("tokenizer.ggml.add_bos_token") ?? true, addsEOS: flag("tokenizer.ggml.add_eos_token") ?? false,
                addsSpacePrefix: flag("tokenizer.ggml.add_space_prefix") ?? true,
                kindOverrides: kindOverrides)
        case "t5":
            guard let scores = try file.array("tokenizer.ggml.scores").floats else {
                throw GGUFError.wrongType(key: "tokenizer.ggml.scores", expected: "array of float32", found: "another array")
            }
            var charsmap: [UInt8]?
            if file["tokenizer.ggml.precompiled_charsmap"] != nil {
                switch try file.array("tokenizer.ggml.precompiled_charsmap") {
                case .uint8(let bytes): charsmap = bytes
                case .int8(let bytes): charsmap = bytes.map { UInt8(bitPattern: $0) }
                default:
                    throw GGUFError.wrongType(key: "tokenizer.ggml.precompiled_charsmap", expected: "array of uint8", found: "another array")
                }
            }
            return try UnigramTokenizer(
                tokens: tokens, scores: scores, kinds: kinds, precompiledCharsmap: charsmap, specialTokens: special,
                addsBOS: flag("tokenizer.ggml.add_bos_token") ?? false, addsEOS: flag("tokenizer.ggml.add_eos_token") ?? true,
                addsSpacePrefix: flag("tokenizer.ggml.add_space_prefix") ?? true,
                removesExtraWhitespace: flag("tokenizer.ggml.remove_extra_whitespaces") ?? false,
                kindOverrides: kindOverrides)
        case "plamo2":
            guard let scores = try file.array("tokenizer.ggml.scores").floats else {
                throw GGUFError.wrongType(key: "tokenizer.ggml.scores", expected: "array of float32", found: "another array")
            }
            return try PLaMo2Tokenizer(tokens: tokens, scores: scores, kinds: kinds, specialTokens: special,
                                       kindOverrides: kindOverrides)
        case "rwkv":
            return try RWKVTokenizer(tokens: tokens, kinds: kinds, specialTokens: special, kindOverrides: kindOverrides)
        case "bert":
            return try WordPieceTokenizer(
                tokens: tokens, kinds: kinds, marking: .wordStartPrefix("\u{2581}"), specialTokens: special,
                classifier: id("tokenizer.ggml.cls_token_id"), separator: id("tokenizer.ggml.seperator_token_id"),
                kindOverrides: kindOverrides)
        default:
            throw GGUFError.invalid(field: "tokenizer.ggml.model", reason: "\"\(model)\" is not a tokenizer Kiln implements (gpt2, gemma4, llama, t5, rwkv, plamo2, bert)")
        }
    }

    /// The ids that end a reply, collected as llama.cpp's vocabulary loader collects them: EOS,
    /// EOT and EOM; the first fill-in-the-middle pad, repository and file-separator tokens; every
    /// token whose text marks an end of turn (whatever its type — llama.cpp makes it a control
    /// token); then `<|end|>` is dropped where `<|return|>`/`<|call|>` or `<|calls|>`/`<|flush|>`
    /// show it is a separator, and `</s>` where `<|tool_response>` or `<|plamo:eos|>` show it is
    /// ordinary text. SmolLM2: <|endoftext|>, <|im_end|>, <reponame>; Gemma 3: <eos>,
    /// <end_of_turn>, </s>.
    static func endOfGeneration(tokens: [String], ends: [Int],
                                controlLooking: (ids: Set<Int>, byText: [String: Int])) -> Set<Int> {
        var ids = Set(ends)
        let (markers, byText) = controlLooking
        ids.formUnion(markers)
        let texts = Set(ids.map { tokens[$0] })
        if let end = byText["<|end|>"], endIsSeparator(texts) { ids.remove(end) }
        if let s = byText["</s>"], closingSIsText(texts) { ids.remove(s) }
        return ids
    }

    /// `<|end|>` separates messages where `<|return|>`/`<|call|>` or `<|calls|>`/`<|flush|>` end them.
    static func endIsSeparator(_ texts: Set<String>) -> Bool {
        texts.isSuperset(of: ["<|return|>", "<|call|>"]) || texts.isSuperset(of: ["<|calls|>", "<|flush|>"])
    }

    /// `</s>` is ordinary text beside `<|tool_response>` (Gemma 4) or `<|plamo:eos|>`.
    static func closingSIsText(_ texts: Set<String>) -> Bool {
        texts.contains("<|tool_response>") || texts.contains("<|plamo:eos|>")
    }

    /// The token kinds llama.cpp's loader replaces, by text, when it finds special tokens: the
    /// control-looking tokens become control; then, judged among them and the EOS/EOT/EOM
    /// `ends`, `<|end|>` becomes user-defined where it is a separator and `</s>` normal where it
    /// is ordinary text.
    static func kindOverrides(tokens: [String], ends: [Int],
                              controlLooking: (ids: Set<Int>, byText: [String: Int])) -> [Int: TokenKind] {
        let (ids, byText) = controlLooking
        var overrides = Dictionary(uniqueKeysWithValues: ids.map { ($0, TokenKind.control) })
        let texts = Set(ids.union(ends).map { tokens[$0] })
        if let end = byText["<|end|>"], endIsSeparator(texts) { overrides[end] = .userDefined }
        if let s = byText["</s>"], closingSIsText(texts) { overrides[s] = .normal }
        return overrides
    }

    /// The tokens llama.cpp gives the control attribute by their text, whatever the file's type
    /// says: the first fill-in-the-middle prefix, suffix, middle, pad, repository and
    /// file-separator tokens and every end-of-turn marker (with each marker's id, the last token
    /// of that text).
    static func controlLooking(tokens: [String]) -> (ids: Set<Int>, byText: [String: Int]) {
        var ids = Set<Int>()
        for names in fillInTheMiddle {
            if let first = tokens.indices.first(where: { names.contains(tokens[$0]) }) { ids.insert(first) }
        }
        var byText: [String: Int] = [:]
        for (id, token) in tokens.enumerated() where endMarkers.contains(token) {
            ids.insert(id)
            byText[token] = id
        }
        return (ids, byText)
    }

    static let fillInTheMiddle: [Set<String>] = [
        ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\u{FF5C}fim\u{2581}begin\u{FF5C}>", "<PRE>", "\u{2581}<PRE>",
         "<|code_prefix|>", "<|prefix|>"],
        ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\u{FF5C}fim\u{2581}hole\u{FF5C}>", "<SUF>", "\u{2581}<SUF>",
         "<|code_suffix|>", "<|suffix|>"],
        ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\u{FF5C}fim\u{2581}end\u{FF5C}>", "<MID>", "\u{2581}<MID>",
         "<|code_middle|>", "<|middle|>"],
        ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
        ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"],
        ["<|file_sep|>"],
    ]

    static let endMarkers: Set<String> = [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
        "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
        "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
        "<\u{FF5C}end\u{2581}of\u{2581}sentence\u{FF5C}>", "[e~[",
    ]
}
