/// llama.cpp's pre-tokenizer types and the `tokenizer.ggml.pre` names that select them, as the
/// llama.cpp that llama-cpp-python 0.3.36 vendors defines them (`src/llama-vocab.cpp`). Each
/// type is its list of expressions and whether pieces are byte-encoded; a new type is one row
/// here, a new name one row below.
extension PreTokenizer {
    static let kinds: [String: (expressions: [String], byteEncoded: Bool)] = [
        "llama3": ([
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], true),
        "jais2": ([
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s{512}(?!\S)|\s{256}(?!\S)|\s{128}(?!\S)|\s{64}(?!\S)|\s{32}(?!\S)|\s{16}(?!\S)|\s{8}(?!\S)|\s{4}(?!\S)|\s{1,2}(?!\S)|\s{1}"#,
        ], true),
        "dbrx": ([
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], true),
        "smaug": ([
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], true),
        "deepseek-llm": ([
            #"[\#r\#n]"#,
            #"\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+"#,
            #"\s?[!-/:-~！-／：-～‘-‟　-。]+"#,
            #"\s+$"#,
            #"[一-龥ࠀ-一가-퟿]+"#,
            #"\p{N}+"#,
        ], true),
        "deepseek3-llm": ([
            #"\p{N}{1,3}"#,
            #"[一-龥぀-ゟ゠-ヿ]+"#,
            ##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\##r\##n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\##r\##n]*|\s*[\##r\##n]+|\s+(?!\S)|\s+"##,
        ], true),
        "hunyuan-dense": ([
            #"\p{N}{1,3}"#,
            #"[一-龥぀-ゟ゠-ヿ]+"#,
            ##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\##r\##n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\##r\##n]*|\s*[\##r\##n]+|\s+(?!\S)|\s+"##,
        ], true),
        "joyai-llm": ([
            #"\p{N}{1,3}"#,
            #"[一-龥぀-ゟ゠-ヿ]+"#,
            ##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\##r\##n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\##r\##n]*|\s*[\##r\##n]+|\s+(?!\S)|\s+"##,
        ], true),
        "hy-v4": ([
            #"\p{N}{1,3}"#,
            #"[一-龥぀-ゟ゠-ヿ]+"#,
            ##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\##r\##n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\##r\##n]*|\s*[\##r\##n]+|\s+(?!\S)|\s+"##,
        ], true),
        "spark2-5": ([
            #"\p{N}{1,3}"#,
            #"[一-龥぀-ゟ゠-ヿ]+"#,
            ##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\##r\##n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+|[\##r\##n]|\s+(?!\S)|\s+"##,
            #"\p{N}"#,
        ], true),
        "youtu": ([
            #"[가-힣ㄱ-ㆎ]+|[！…“”‘’—：；，、-〿︰-﹏]+|[ㄅ-ㄯ]+|[一-龥぀-ゟ゠-ヿ]+"#,
            #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], true),
        "deepseek-coder": ([
            #"[\#r\#n]"#,
            #"\s?\p{L}+"#,
            #"\s?\p{P}+"#,
            #"[一-龥ࠀ-一가-퟿]+"#,
            #"\p{N}"#,
        ], true),
        "falcon": ([
            #"[\p{P}\$\+<=>\^~\|`]+"#,
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
            #"[0-9][0-9][0-9]"#,
        ], true),
        "starcoder": ([
            #"\p{N}"#,
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ], true),
        "refact": ([
            #"\p{N}"#,
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ], true),
        "command-r": ([
            #"\p{N}"#,
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ], true),
        "smollm": ([
            #"\p{N}"#,
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ], true),
        "codeshell": ([
            #"\p{N}"#,
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ], true),
        "exaone": ([
            #"\p{N}"#,
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ], true),
        "minerva": ([
            #"\p{N}"#,
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ], true),
        "mellum2": ([
            #"\p{N}"#,
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ], true),
        "gpt2": ([
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ], true),
        "mpt": ([
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ], true),
        "olmo": ([
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ], true),
        "jais": ([
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ], true),
        "trillion": ([
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ], true),
        "granite-docling": ([
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ], true),
        "stablelm2": ([
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], true),
        "qwen2": ([
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], true),
        "hunyuan": ([
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], true),
        "solar-open": ([
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], true),
        "qwen35": ([
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], true),
        "poro": ([
            #" ?[^(\s|.,!?…。，、।۔،)]+"#,
        ], true),
        "bloom": ([
            #" ?[^(\s|.,!?…。，、।۔،)]+"#,
        ], true),
        "gpt3-finnish": ([
            #" ?[^(\s|.,!?…。，、।۔،)]+"#,
        ], true),
        "chatglm4": ([
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], true),
        "viking": ([
            #" ?[^(\s|.,!?…。，、।۔،)]+"#,
            #"\p{N}"#,
        ], true),
        "tekken": ([
            #"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], true),
        "chameleon": ([
            #"<sentinel:[0-9]+>"#,
            #"(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z"#,
            #"([\t\n]|    |  )"#,
            #"\p{N}"#,
            #"[\p{P}!-/:-@\[-`{-~]"#,
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ], true),
        "gpt4o": ([
            #"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], true),
        "minimax-m2": ([
            #"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], true),
        "granite-emb-multi": ([
            #"[^\r\n\p{L}\p{N}]?((?=[\p{L}\p{M}])([^a-z]))*((?=[\p{L}\p{M}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}\p{M}])([^a-z]))+((?=[\p{L}\p{M}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], true),
        "tiny-aya": ([
            #"\d{1,3}(?=(?:\d{3})*\b)"#,
            #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], true),
        "kimi-k2": ([
            #"\p{Han}+"#,
        ], true),
        "superbpe": ([
            #"\p{N}+"#,
            #"(?=(\d{3})+(?!\d))"#,
        ], true),
        "bailingmoe": ([
            #"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"#,
        ], true),
        "seed-coder": ([
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], true),
        "ufakzeka": ([
            #"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], true),
        "grok-2": ([
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], true),
        "afmoe": ([
            #"\p{AFMoE_digits}"#,
            #"[一-鿿㐀-䶿豈-﫿぀-ゟ゠-ヿ･-ﾟ⼀-⿟เ-๿຀-໿ក-៿က-႟ꩠ-ꩿꧠ-꧿가-힯ᄀ-ᇿ]+"#,
            ##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
        ], true),
        "laguna": ([
            #"[^\n]+|[\n]+"#,
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], true),
        "exaone-moe": ([
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]?|\s*[\r\n]|\s+(?!\S)|\s+"#,
        ], true),
        "gemma4": ([
            #"[^\n]+|[\n]+"#,
        ], false),
        "sarvam-moe": ([
            #"[^\n]+|[\n]+"#,
        ], false),
        "minicpm5": ([
            #"\p{N}{1,3}"#,
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], true),
        "whitespace": ([
            #"\S+"#,
        ], false),
        "default": ([
            #"[\p{P}\$\+<=>\^~\|]+"#,
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
            #"\p{N}+"#,
            #"[0-9][0-9][0-9]"#,
        ], true),
    ]

    /// `tokenizer.ggml.pre` → type, and whether llama.cpp looks whole pieces up before merging.
    static let ggufNames: [String: (kind: String, ignoresMerges: Bool)] = [
        "default": ("default", false),
        "minicpm5": ("minicpm5", true),
        "llama3": ("llama3", true),
        "llama-v3": ("llama3", true),
        "llama-bpe": ("llama3", true),
        "falcon3": ("llama3", true),
        "falcon-h1": ("llama3", true),
        "pixtral": ("llama3", true),
        "midm-2.0": ("llama3", true),
        "lfm2": ("llama3", true),
        "jina-v5-nano": ("llama3", true),
        "deepseek-llm": ("deepseek-llm", false),
        "deepseek-coder": ("deepseek-coder", false),
        "deepseek-v3": ("deepseek3-llm", false),
        "spark2_5": ("spark2-5", false),
        "youtu": ("youtu", true),
        "falcon": ("falcon", false),
        "mpt": ("mpt", false),
        "starcoder": ("starcoder", false),
        "gpt-2": ("gpt2", false),
        "phi-2": ("gpt2", false),
        "jina-es": ("gpt2", false),
        "jina-de": ("gpt2", false),
        "gigachat": ("gpt2", false),
        "jina-v2-es": ("gpt2", false),
        "jina-v2-de": ("gpt2", false),
        "a.x-4.0": ("gpt2", false),
        "mellum": ("gpt2", false),
        "modern-bert": ("gpt2", false),
        "jais-2": ("jais2", false),
        "gemma4": ("gemma4", false),
        "granite-embed-multi-311m": ("gemma4", false),
        "sarvam-moe": ("sarvam-moe", false),
        "jina-v1-en": ("gpt2", false),
        "jina-v2-code": ("gpt2", false),
        "roberta-bpe": ("gpt2", false),
        "whitespace": ("whitespace", false),
        "refact": ("refact", false),
        "command-r": ("command-r", false),
        "qwen2": ("qwen2", false),
        "deepseek-r1-qwen": ("qwen2", false),
        "kormo": ("qwen2", false),
        "f2llmv2": ("qwen2", false),
        "qwen35": ("qwen35", false),
        "stablelm2": ("stablelm2", false),
        "olmo": ("olmo", false),
        "dbrx": ("dbrx", false),
        "smaug-bpe": ("smaug", false),
        "poro-chat": ("poro", false),
        "chatglm-bpe": ("chatglm4", false),
        "glm4": ("chatglm4", true),
        "glm5": ("chatglm4", true),
        "viking": ("viking", false),
        "jais": ("jais", false),
        "tekken": ("tekken", true),
        "smollm": ("smollm", false),
        "codeshell": ("codeshell", false),
        "bloom": ("bloom", false),
        "gpt3-finnish": ("gpt3-finnish", false),
        "exaone": ("exaone", false),
        "exaone4": ("gpt2", false),
        "exaone-moe": ("exaone-moe", false),
        "chameleon": ("chameleon", false),
        "minerva-7b": ("minerva", false),
        "megrez": ("qwen2", false),
        "gpt-4o": ("gpt4o", false),
        "llama4": ("gpt4o", false),
        "kanana2": ("gpt4o", false),
        "talkie": ("gpt4o", false),
        "granite-embed-multi-97m": ("granite-emb-multi", true),
        "tiny_aya": ("tiny-aya", false),
        "cohere2moe": ("tiny-aya", false),
        "superbpe": ("superbpe", false),
        "trillion": ("trillion", false),
        "granite-docling": ("granite-docling", false),
        "bailingmoe": ("bailingmoe", false),
        "bailingmoe2": ("bailingmoe", false),
        "llada-moe": ("bailingmoe", false),
        "seed-coder": ("seed-coder", false),
        "hunyuan": ("hunyuan", false),
        "hunyuan-dense": ("hunyuan-dense", false),
        "hy_v4": ("hy-v4", false),
        "joyai-llm": ("joyai-llm", false),
        "kimi-k2": ("kimi-k2", false),
        "ufakzeka": ("ufakzeka", false),
        "grok-2": ("grok-2", false),
        "afmoe": ("afmoe", false),
        "laguna": ("laguna", false),
        "minimax-m2": ("minimax-m2", false),
        "solar-open": ("solar-open", false),
        "mellum2": ("mellum2", false),
    ]

    /// The names whose vocabularies spell spaces `▁` (SentencePiece-style BPE).
    static let escapingWhitespace: Set<String> = ["gemma4", "granite-embed-multi-311m", "sarvam-moe"]
}
