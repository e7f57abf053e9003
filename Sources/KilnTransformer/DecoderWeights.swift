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
        let query, key, value, output: Projection
        /// Added to the products before RoPE when the file carries them (attn_q.bias, …).
        let queryBias, keyBias, valueBias: UnsafeBufferPointer<Float>?
        /// Each head's RMSNorm weight before RoPE, where the architecture normalizes heads.
        let queryNorm, keyNorm: UnsafeBufferPointer<Float>?
        let feedForwardNorm: UnsafeBufferPointer<Float>
        let gate, up, down: Projection
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
        var layers: [Layer] = []
        for i in 0..<c.layerCount {
            let p = "blk.\(i)."
            layers.append(Layer(
                attentionNorm: try vector(p + "attn_norm.weight", c.hiddenSize),
                query: try matrix(p + "attn_q.weight", rows: c.querySize, columns: c.hiddenSize),
                key: try matrix(p + "attn_k.weight", rows: c.kvSize, columns: c.hiddenSize),
                value: try matrix(p + "attn_v.weight", rows: c.kvSize, columns: c.hiddenSize),
                output: try matrix(p + "attn_output.weight", rows: c.hiddenSize, columns: c.querySize),
                queryBias: try optionalVector(p + "attn_q.bias", c.querySize),
                keyBias: try optionalVector(p + "attn_k.bias", c.kvSize),
                valueBias: try optionalVector(p + "attn_v.bias", c.kvSize),
                queryNorm: c.architecture.normalizesQueryKeyHeads ? try vector(p + "attn_q_norm.weight", c.headDimension) : nil,
                keyNorm: c.architecture.normalizesQueryKeyHeads ? try vector(p + "attn_k_norm.weight", c.headDimension) : nil,
                feedForwardNorm: try vector(p + "ffn_norm.weight", c.hiddenSize),
                gate: try matrix(p + "ffn_gate.weight", rows: c.intermediateSize, columns: c.hiddenSize),
                up: try matrix(p + "ffn_up.weight", rows: c.intermediateSize, columns: c.hiddenSize),
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
