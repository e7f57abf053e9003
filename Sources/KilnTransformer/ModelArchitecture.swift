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

    /// Every architecture Kiln runs.
    public static let registry: [ModelArchitecture] = [.llama, .qwen2, .qwen3]

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
