import KilnFormats

/// Hyper-parameters of a decoder, read from GGUF metadata under its architecture's key prefix and
/// checked for consistency before any buffer is sized from them.
public struct DecoderConfiguration: Sendable, Equatable {
    public var architecture: ModelArchitecture
    public var layerCount: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDimension: Int
    public var rotaryDimension: Int
    public var ropeTheta: Float
    public var rmsNormEpsilon: Float
    public var contextLength: Int
    public var vocabularySize: Int
    /// Per layer, the keys a query sees when the layer attends through a sliding window (the
    /// query's own and the window − 1 before it); nil: the whole context.
    public var layerWindows: [Int?]
    /// RoPE base of the windowed layers.
    public var windowedRopeTheta: Float
    /// The factor of the attention scores (or of the queries, where the architecture scales them
    /// first).
    public var attentionScale: Float
    /// c of the attention scores' soft-cap c·tanh(s/c), where the model caps them.
    public var attentionSoftCap: Float?
    /// c of the logits' soft-cap, where the model caps them.
    public var finalLogitSoftCap: Float?

    public init(gguf file: GGUFFile) throws {
        let a = try ModelArchitecture.named(try file.string("general.architecture"))
        architecture = a
        func int(_ key: String) throws -> Int { try file.integer(a.key(key)) }
        layerCount = try int("block_count")
        hiddenSize = try int("embedding_length")
        intermediateSize = try int("feed_forward_length")
        headCount = try int("attention.head_count")
        kvHeadCount = (try? int("attention.head_count_kv")) ?? headCount
        contextLength = try int("context_length")
        rmsNormEpsilon = Float(try file.number(a.key("attention.layer_norm_rms_epsilon")))
        ropeTheta = Float((try? file.number(a.key("rope.freq_base"))) ?? 10_000)
        vocabularySize = try file.strings("tokenizer.ggml.tokens").count
        guard headCount > 0, kvHeadCount > 0, hiddenSize > 0, layerCount > 0, intermediateSize > 0, contextLength > 0 else {
            throw GGUFError.invalid(field: "\(a) hyper-parameters", reason: "sizes must be positive")
        }
        guard headCount % kvHeadCount == 0 else {
            throw GGUFError.invalid(field: a.key("attention.head_count_kv"), reason: "\(kvHeadCount) does not divide the head count \(headCount)")
        }
        // Heads are hidden / heads wide unless the file says otherwise (Qwen 3: 128 on any width).
        if let keyLength = try? int("attention.key_length") {
            let valueLength = (try? int("attention.value_length")) ?? keyLength
            guard keyLength > 0, keyLength <= 1024, keyLength % 2 == 0 else {
                throw GGUFError.invalid(field: a.key("attention.key_length"), reason: "\(keyLength) is not a usable head dimension")
            }
            guard valueLength == keyLength else {
                throw GGUFError.invalid(field: a.key("attention.value_length"), reason: "\(valueLength) differs from the key length \(keyLength)")
            }
            headDimension = keyLength
        } else {
            guard hiddenSize % headCount == 0 else {
                throw GGUFError.invalid(field: a.key("attention.head_count"), reason: "\(headCount) does not divide the hidden size \(hiddenSize)")
            }
            headDimension = hiddenSize / headCount
        }
        rotaryDimension = (try? int("rope.dimension_count")) ?? headDimension
        guard rotaryDimension > 0, rotaryDimension % 2 == 0, rotaryDimension <= headDimension else {
            throw GGUFError.invalid(field: a.key("rope.dimension_count"), reason: "\(rotaryDimension) must be even and at most the head dimension \(headDimension)")
        }
        guard hiddenSize % 32 == 0, intermediateSize % 32 == 0, (headCount * headDimension) % 32 == 0 else {
            throw GGUFError.invalid(field: "\(a) hyper-parameters", reason: "hidden and feed-forward sizes must be multiples of 32 for quantized weights")
        }
        if let scaling = try? file.string(a.key("rope.scaling.type")), scaling != "none",
           let factor = try? file.number(a.key("rope.scaling.factor")), factor != 1 {
            throw GGUFError.invalid(field: a.key("rope.scaling.type"), reason: "\"\(scaling)\" RoPE scaling (factor \(factor)) is not supported")
        }
        attentionScale = a.hiddenPerHeadScaleLayerCounts.contains(layerCount)
            ? 1 / Float(hiddenSize / headCount).squareRoot() : 1 / Float(headDimension).squareRoot()
        func softCap(_ rule: SoftCapRule, _ key: String) throws -> Float? {
            let given = try? file.number(a.key(key))
            let cap: Float?
            switch rule {
            case .none: return nil
            case .whenGiven: cap = given.map(Float.init)
            case .byDefault(let c): cap = given.map(Float.init) ?? c
            }
            // llama.cpp reads a zero cap as "no cap".
            guard let cap, cap != 0 else { return nil }
            guard cap.isFinite, cap > 0 else { throw GGUFError.invalid(field: a.key(key), reason: "\(cap) is not a positive cap") }
            return cap
        }
        attentionSoftCap = try softCap(a.attentionSoftCap, "attn_logit_softcapping")
        finalLogitSoftCap = try softCap(a.finalLogitSoftCap, "final_logit_softcapping")
        (layerWindows, windowedRopeTheta) = try Self.slidingWindows(file, a, layerCount: layerCount, contextLength: contextLength, ropeTheta: ropeTheta)
        guard layerCount <= 1024, hiddenSize <= 65536, intermediateSize <= 262_144, vocabularySize <= 4_000_000 else {
            throw GGUFError.invalid(field: "\(a) hyper-parameters", reason: "implausibly large")
        }
    }

    /// Which layers are windowed and how wide, from the file's keys and the architecture's defaults
    /// (llama.cpp's rules: a pattern n windows layer l unless l % n == n − 1, and 0 windows every
    /// layer; Gemma 2's 4096-key default window may exceed a short context and then changes nothing).
    private static func slidingWindows(
        _ file: GGUFFile, _ a: ModelArchitecture, layerCount: Int, contextLength: Int, ropeTheta: Float
    ) throws -> ([Int?], Float) {
        guard let rule = a.slidingWindow else { return (Array(repeating: nil, count: layerCount), ropeTheta) }
        let windowKey = a.key("attention.sliding_window"), patternKey = a.key("attention.sliding_window_pattern")
        let window: Int
        if file[windowKey] != nil {
            window = try file.integer(windowKey)
            // A window of no keys, or wider than the context it slides over, contradicts the file.
            guard window >= 1, window <= contextLength else {
                throw GGUFError.invalid(field: windowKey, reason: "\(window) is not a window within the context of \(contextLength)")
            }
        } else {
            guard let defaultWindow = rule.defaultWindow else { return (Array(repeating: nil, count: layerCount), ropeTheta) }
            window = defaultWindow
        }
        let windowed: [Bool]
        switch file[patternKey] {
        case .array(.bool(let flags))?:
            guard flags.count == layerCount else {
                throw GGUFError.invalid(field: patternKey, reason: "\(flags.count) flags for \(layerCount) layers")
            }
            windowed = flags
        case nil:
            windowed = (0..<layerCount).map { $0 % rule.defaultPattern < rule.defaultPattern - 1 }
        default:
            let n = try file.integer(patternKey)
            guard n >= 0 else { throw GGUFError.invalid(field: patternKey, reason: "\(n) is negative") }
            windowed = (0..<layerCount).map { n == 0 || $0 % n < n - 1 }
        }
        let baseKey = a.key("rope.freq_base_swa")
        let windowedBase: Float
        if file[baseKey] != nil {
            windowedBase = Float(try file.number(baseKey))
        } else {
            switch rule.windowedRopeBase {
            case .global: windowedBase = ropeTheta
            case .fixed(let base): windowedBase = base
            }
        }
        guard windowedBase.isFinite, windowedBase > 0 else { throw GGUFError.invalid(field: baseKey, reason: "\(windowedBase) is not a positive base") }
        return (windowed.map { $0 ? window : nil }, windowedBase)
    }

    /// RoPE base of layer `layer`.
    public func ropeTheta(layer: Int) -> Float { layerWindows[layer] == nil ? ropeTheta : windowedRopeTheta }

    public var kvSize: Int { kvHeadCount * headDimension }
    /// Width of the queries and of the attention output: the heads side by side.
    public var querySize: Int { headCount * headDimension }
}
