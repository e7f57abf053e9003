import KilnFormats
import KilnKernels

/// What sets one decoder-only architecture apart from another, as data. The one shared forward
/// pass (`DecoderSequence`) and the weight loader (`DecoderWeights`) read only this, so adding an
/// architecture is an entry in `registry`, not a copy of the decoder.
public struct ModelArchitecture: Sendable, Equatable, CustomStringConvertible {
    /// `general.architecture` in a GGUF file, and the prefix of its hyper-parameter keys.
    public let name: String
    /// How RoPE pairs a head's dimensions (llama.cpp's "normal" mode for Llama files).
    public let ropePairing: RoPEPairing
    /// Whether each query and key head is RMS-normalized (attn_q_norm, attn_k_norm) before RoPE.
    public var normalizesQueryKeyHeads = false
    /// Whether a rope_freqs.weight tensor, when present, divides the RoPE angles (Llama 3.1+).
    public var readsRopeFrequencyFactors = false
    /// The gate's nonlinearity in the gated feed-forward: act(Wgate·m) ⊙ Wup·m.
    public var activation: FeedForwardActivation = .silu
    /// Whether the token embeddings are multiplied by √hidden before the first block (Gemma).
    public var scalesEmbeddings = false
    /// Whether the attention and feed-forward outputs are RMS-normalized before their residual
    /// add (post_attention_norm, post_ffw_norm: Gemma 2 and 3).
    public var normalizesBlockOutputs = false
    /// Whether the queries are multiplied by the attention scale before the product (in f32, so
    /// before the f16 rounding of the product's input) rather than the scores after it.
    public var scalesQueriesFirst = false
    /// Layer counts whose model scales queries by 1/√(hidden / heads) instead of
    /// 1/√(head dimension): Gemma's 27B models.
    public var hiddenPerHeadScaleLayerCounts: Set<Int> = []
    /// Which layers attend through a sliding window, and how wide; nil: every layer sees the whole
    /// context.
    public var slidingWindow: SlidingWindowRule?
    /// Soft-capping of the attention scores, c·tanh(s/c) (`attn_logit_softcapping`).
    public var attentionSoftCap: SoftCapRule = .none
    /// Soft-capping of the output logits (`final_logit_softcapping`).
    public var finalLogitSoftCap: SoftCapRule = .none

    public var description: String { name }

    /// The hyper-parameter key `suffix` of this architecture: "llama.block_count".
    public func key(_ suffix: String) -> String { "\(name).\(suffix)" }

    /// Llama 2 / SmolLM-style decoders: RMSNorm, SiLU-gated feed-forward, adjacent-pair RoPE,
    /// grouped-query attention, an optional separate output head.
    /// Llama 3.1+ files add per-frequency RoPE divisors (rope_freqs.weight).
    public static let llama = ModelArchitecture(name: "llama", ropePairing: .adjacent, readsRopeFrequencyFactors: true)

    /// Qwen 2 / 2.5: Llama's blocks with NeoX-pair RoPE (and, in its files, Q/K/V biases, which
    /// the decoder adds for any architecture that carries them, as llama.cpp does).
    public static let qwen2 = ModelArchitecture(name: "qwen2", ropePairing: .halfSplit)

    /// Qwen 3: NeoX-pair RoPE after an RMSNorm of every query and key head, heads of
    /// `attention.key_length` whatever the width.
    public static let qwen3 = ModelArchitecture(name: "qwen3", ropePairing: .halfSplit, normalizesQueryKeyHeads: true)

    /// Phi-3: Llama's blocks with NeoX-pair RoPE, queries scaled before the product, and in its
    /// files fused projections (attn_qkv, and ffn_up holding the gate rows then the up rows),
    /// which the decoder reads for any architecture that carries them. Phi-3's sliding-window
    /// metadata is ignored, as llama.cpp ignores it: every layer sees the whole context.
    public static let phi3 = ModelArchitecture(name: "phi3", ropePairing: .halfSplit, scalesQueriesFirst: true)

    /// Gemma 2: GELU-tanh gate, embeddings × √hidden, post-norms, queries scaled first, a
    /// 4096-key window on every other layer (the even ones), attention scores capped at 50 and
    /// logits at 30 unless the file says otherwise.
    public static let gemma2 = ModelArchitecture(
        name: "gemma2", ropePairing: .halfSplit, activation: .geluTanh, scalesEmbeddings: true,
        normalizesBlockOutputs: true, scalesQueriesFirst: true, hiddenPerHeadScaleLayerCounts: [46],
        slidingWindow: SlidingWindowRule(defaultWindow: 4096, defaultPattern: 2, windowedRopeBase: .global),
        attentionSoftCap: .byDefault(50), finalLogitSoftCap: .byDefault(30))

    /// Gemma 3: Gemma 2's blocks with RMS-normalized query and key heads and no attention
    /// soft-cap; where the file gives a window, five of every six layers use it, with RoPE base
    /// 10,000 unless `rope.freq_base_swa` says otherwise.
    public static let gemma3 = ModelArchitecture(
        name: "gemma3", ropePairing: .halfSplit, normalizesQueryKeyHeads: true, activation: .geluTanh,
        scalesEmbeddings: true, normalizesBlockOutputs: true, scalesQueriesFirst: true,
        hiddenPerHeadScaleLayerCounts: [62],
        slidingWindow: SlidingWindowRule(defaultWindow: nil, defaultPattern: 6, windowedRopeBase: .fixed(10_000)),
        finalLogitSoftCap: .whenGiven)

    /// Every architecture Kiln runs.
    public static let registry: [ModelArchitecture] = [.llama, .qwen2, .qwen3, .phi3, .gemma2, .gemma3]

    /// The registry entry for `general.architecture` = `name`; an error naming the supported ones
    /// for any other.
    public static func named(_ name: String) throws -> ModelArchitecture {
        guard let architecture = registry.first(where: { $0.name == name }) else {
            throw GGUFError.invalid(field: "general.architecture",
                                    reason: "\"\(name)\" is not supported (supported: \(registry.map(\.name).joined(separator: ", ")))")
        }
        return architecture
    }
}

public enum FeedForwardActivation: Sendable, Equatable {
    /// silu(g) · u (Llama, Qwen, Phi-3).
    case silu
    /// GELU-tanh(g) · u through llama.cpp's f16 table (Gemma).
    case geluTanh
}

/// Which layers of an architecture attend through a sliding window. The file's
/// `attention.sliding_window` gives the width (else `defaultWindow`; neither: no window), and
/// `attention.sliding_window_pattern` the layers — an array of booleans, or n: layer l is
/// windowed unless l % n == n − 1 (else `defaultPattern`).
public struct SlidingWindowRule: Sendable, Equatable {
    public var defaultWindow: Int?
    public var defaultPattern: Int
    /// RoPE base of the windowed layers when the file has no `rope.freq_base_swa`.
    public var windowedRopeBase: WindowedRopeBase

    public enum WindowedRopeBase: Sendable, Equatable {
        /// The global layers' base.
        case global
        case fixed(Float)
    }
}

/// Where a soft-cap c (x → c·tanh(x/c)) comes from.
public enum SoftCapRule: Sendable, Equatable {
    /// Never capped.
    case none
    /// Capped when the file gives the cap.
    case whenGiven
    /// Capped by the file's cap, or this one.
    case byDefault(Float)
}
