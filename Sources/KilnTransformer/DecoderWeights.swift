import KilnFormats
import KilnKernels

/// A decoder's weights over a memory-mapped GGUF file, located and shape-checked once by the
/// architecture's description and never written: one `DecoderWeights` serves any number of
/// `DecoderSequence`s at once. Weights stay quantized in the file; products run on the blocks.
public final class DecoderWeights: @unchecked Sendable {  // immutable views into the mapped file
    public let configuration: DecoderConfiguration
    public let file: GGUFFile

    struct Layer {
        let attentionNorm: UnsafeBufferPointer<Float>
        let queryKeyValue: QueryKeyValue
        let output: Projection
        /// Added to the products before RoPE when the file carries them (attn_q.bias, …).
        let queryBias, keyBias, valueBias: UnsafeBufferPointer<Float>?
        /// Each head's RMSNorm weight before RoPE, where the architecture normalizes heads.
        let queryNorm, keyNorm: UnsafeBufferPointer<Float>?
        /// RMSNorm weights of the attention and feed-forward outputs, where the architecture has them.
        let attentionOutputNorm, feedForwardOutputNorm: UnsafeBufferPointer<Float>?
        let feedForwardNorm: UnsafeBufferPointer<Float>
        let gateUp: GateUp
        let down: Projection

        var projections: [Projection] {
            let qkv: [Projection], gu: [Projection]
            switch queryKeyValue {
            case .separate(let q, let k, let v): qkv = [q, k, v]
            case .fused(let p): qkv = [p]
            }
            switch gateUp {
            case .separate(let g, let u): gu = [g, u]
            case .fused(let p): gu = [p]
            }
            return qkv + [output] + gu + [down]
        }
    }

    /// Q, K and V as three matrices, or as one whose rows are Q's, then K's, then V's (attn_qkv).
    enum QueryKeyValue {
        case separate(Projection, Projection, Projection)
        case fused(Projection)
    }

    /// The feed-forward gate and up matrices, or one ffn_up whose rows are the gate's then the up's.
    enum GateUp {
        case separate(gate: Projection, up: Projection)
        case fused(Projection)
    }

    struct Projection {
        let type: QuantizationType
        let weights: UnsafeRawBufferPointer
        let rows: Int
        let columns: Int
    }

    let layers: [Layer]
    let embedding: Projection  // token_embd: vocabulary × hidden, also the output head when tied
    let outputHead: Projection
    let outputNorm: UnsafeBufferPointer<Float>
    /// Divisors of the RoPE angles, one per rotated pair, where the file and architecture have them.
    let ropeFrequencyFactors: UnsafeBufferPointer<Float>?

    public init(file: GGUFFile) throws {
        let c = try DecoderConfiguration(gguf: file)
        configuration = c
        self.file = file
        func tensor(_ name: String) throws -> GGUFTensor {
            guard let t = file.tensor(named: name) else { throw GGUFError.invalid(field: "tensors", reason: "\(name) is missing") }
            return t
        }
        func vector(_ name: String, _ count: Int) throws -> UnsafeBufferPointer<Float> {
            let t = try tensor(name)
            guard t.type == .f32, t.elementCount == count else {
                throw GGUFError.invalid(field: "tensor \(name)", reason: "expected \(count) F32 values, found \(t.type) \(t.shape)")
            }
            return file.data(of: t).withMemoryRebound(to: Float.self) { $0 }
        }
        func matrix(_ name: String, rows: Int, columns: Int) throws -> Projection {
            let t = try tensor(name)
            guard t.shape == [columns, rows] else {
                throw GGUFError.invalid(field: "tensor \(name)", reason: "shape \(t.shape), expected [\(columns), \(rows)]")
            }
            guard let type = QuantizationType(rawValue: Int32(t.type.rawValue)) else {
                throw GGUFError.unsupportedTensorType(tensor: name, type: t.type)
            }
            return Projection(type: type, weights: file.data(of: t), rows: rows, columns: columns)
        }
        func optionalVector(_ name: String, _ count: Int) throws -> UnsafeBufferPointer<Float>? {
            file.tensor(named: name) == nil ? nil : try vector(name, count)
        }
        // Phi-3's long-context files scale RoPE per frequency by context length (rope_factors_long
        // and _short); Kiln does not implement that scaling, so it refuses them rather than run wrong.
        for name in ["rope_factors_long.weight", "rope_factors_short.weight"] where file.tensor(named: name) != nil {
            throw GGUFError.invalid(field: "tensor \(name)", reason: "per-context RoPE factors are not supported")
        }
        var layers: [Layer] = []
        let a = c.architecture
        for i in 0..<c.layerCount {
            let p = "blk.\(i)."
            let queryKeyValue: QueryKeyValue
            if file.tensor(named: p + "attn_qkv.weight") != nil {
                guard file.tensor(named: p + "attn_qkv.bias") == nil else {
                    throw GGUFError.invalid(field: "tensor \(p)attn_qkv.bias", reason: "a fused QKV bias is not supported")
                }
                queryKeyValue = .fused(try matrix(p + "attn_qkv.weight", rows: c.querySize + 2 * c.kvSize, columns: c.hiddenSize))
            } else {
                queryKeyValue = .separate(try matrix(p + "attn_q.weight", rows: c.querySize, columns: c.hiddenSize),
                                          try matrix(p + "attn_k.weight", rows: c.kvSize, columns: c.hiddenSize),
                                          try matrix(p + "attn_v.weight", rows: c.kvSize, columns: c.hiddenSize))
            }
            let gateUp: GateUp = file.tensor(named: p + "ffn_gate.weight") == nil
                ? .fused(try matrix(p + "ffn_up.weight", rows: 2 * c.intermediateSize, columns: c.hiddenSize))
                : .separate(gate: try matrix(p + "ffn_gate.weight", rows: c.intermediateSize, columns: c.hiddenSize),
                            up: try matrix(p + "ffn_up.weight", rows: c.intermediateSize, columns: c.hiddenSize))
            layers.append(Layer(
                attentionNorm: try vector(p + "attn_norm.weight", c.hiddenSize),
                queryKeyValue: queryKeyValue,
                output: try matrix(p + "attn_output.weight", rows: c.hiddenSize, columns: c.querySize),
                queryBias: try optionalVector(p + "attn_q.bias", c.querySize),
                keyBias: try optionalVector(p + "attn_k.bias", c.kvSize),
                valueBias: try optionalVector(p + "attn_v.bias", c.kvSize),
                queryNorm: a.normalizesQueryKeyHeads ? try vector(p + "attn_q_norm.weight", c.headDimension) : nil,
                keyNorm: a.normalizesQueryKeyHeads ? try vector(p + "attn_k_norm.weight", c.headDimension) : nil,
                attentionOutputNorm: a.normalizesBlockOutputs ? try vector(p + "post_attention_norm.weight", c.hiddenSize) : nil,
                feedForwardOutputNorm: a.normalizesBlockOutputs ? try vector(p + "post_ffw_norm.weight", c.hiddenSize) : nil,
                feedForwardNorm: try vector(p + "ffn_norm.weight", c.hiddenSize),
                gateUp: gateUp,
                down: try matrix(p + "ffn_down.weight", rows: c.hiddenSize, columns: c.intermediateSize)))
        }
        self.layers = layers
        embedding = try matrix("token_embd.weight", rows: c.vocabularySize, columns: c.hiddenSize)
        outputHead = file.tensor(named: "output.weight") != nil
            ? try matrix("output.weight", rows: c.vocabularySize, columns: c.hiddenSize) : embedding
        outputNorm = try vector("output_norm.weight", c.hiddenSize)
        ropeFrequencyFactors = c.architecture.readsRopeFrequencyFactors
            ? try optionalVector("rope_freqs.weight", c.rotaryDimension / 2) : nil
        if let factors = ropeFrequencyFactors, let bad = factors.first(where: { !($0.isFinite && $0 > 0) }) {
            throw GGUFError.invalid(field: "tensor rope_freqs.weight", reason: "factor \(bad) is not a positive number")
        }
    }
}
