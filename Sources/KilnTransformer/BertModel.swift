import Foundation
import KilnFormats
import KilnKernels
import KilnTokenizers

/// A BERT encoder for sentence-transformers models (first: all-MiniLM-L6-v2), reading f32
/// weights in place from `model.safetensors`. Per layer: x = LayerNorm(x + Wo·attention(x)),
/// then x = LayerNorm(x + W2·gelu(W1·x)), every product an OpenBLAS GEMM and the attention the
/// kernel layer's fused, bidirectional, key-padding mode.
public final class BertModel: @unchecked Sendable {
    public struct Configuration: Decodable, Sendable {
        public let hiddenSize: Int
        public let layerCount: Int
        public let headCount: Int
        public let intermediateSize: Int
        public let maximumPositions: Int
        public let layerNormEpsilon: Float
        public let vocabularySize: Int
        public let hiddenActivation: String

        enum CodingKeys: String, CodingKey {
            case hiddenSize = "hidden_size", layerCount = "num_hidden_layers", headCount = "num_attention_heads"
            case intermediateSize = "intermediate_size", maximumPositions = "max_position_embeddings"
            case layerNormEpsilon = "layer_norm_eps", vocabularySize = "vocab_size", hiddenActivation = "hidden_act"
        }
    }

    struct Linear {
        let weight: UnsafeBufferPointer<Float>  // [out][in]
        let bias: UnsafeBufferPointer<Float>    // [out]
        let inputs: Int
        let outputs: Int
    }

    struct Norm {
        let weight: UnsafeBufferPointer<Float>
        let bias: UnsafeBufferPointer<Float>
    }

    struct Layer {
        let query, key, value, attentionOutput, intermediate, output: Linear
        let attentionNorm, outputNorm: Norm
    }

    public let configuration: Configuration
    let weights: SafetensorsFile
    let wordEmbeddings, positionEmbeddings, typeEmbeddings: UnsafeBufferPointer<Float>
    let embeddingNorm: Norm
    let layers: [Layer]
    let pool: ThreadPool

    /// Loads `config.json` and `model.safetensors` from a sentence-transformers folder.
    public init(folder: URL, pool: ThreadPool = .shared) throws {
        let configURL = folder.appendingPathComponent("config.json")
        guard let configData = try? Data(contentsOf: configURL) else {
            throw SafetensorsError.invalid("\(folder.path) has no readable config.json (expected a sentence-transformers folder)")
        }
        let configuration: Configuration
        do {
            configuration = try JSONDecoder().decode(Configuration.self, from: configData)
        } catch {
            throw SafetensorsError.invalid("\(configURL.path) does not describe a BERT model: \(error)")
        }
        let c = configuration
        guard c.hiddenSize > 0, c.headCount > 0, c.hiddenSize % c.headCount == 0, c.layerCount > 0, c.intermediateSize > 0 else {
            throw SafetensorsError.invalid("config.json: hidden size \(c.hiddenSize) must be a positive multiple of the head count \(c.headCount)")
        }
        guard c.hiddenActivation == "gelu" else { throw SafetensorsError.invalid("config.json: activation \(c.hiddenActivation) is not supported (gelu is)") }
        self.configuration = c
        self.pool = pool
        let file = try SafetensorsFile(path: folder.appendingPathComponent("model.safetensors").path)
        weights = file
        func tensor(_ name: String, _ shape: [Int]) throws -> UnsafeBufferPointer<Float> {
            // Some exports prefix every name with the model type.
            guard let t = file.tensor(named: name) ?? file.tensor(named: "bert." + name) else {
                throw SafetensorsError.invalid("tensor \(name) is missing")
            }
            guard t.dtype == .f32, t.shape == shape else {
                throw SafetensorsError.invalid("tensor \(name) is \(t.dtype.rawValue) \(t.shape), expected F32 \(shape)")
            }
            return file.data(of: t).withMemoryRebound(to: Float.self) { $0 }
        }
        func linear(_ name: String, _ inputs: Int, _ outputs: Int) throws -> Linear {
            Linear(weight: try tensor(name + ".weight", [outputs, inputs]), bias: try tensor(name + ".bias", [outputs]),
                   inputs: inputs, outputs: outputs)
        }
        func norm(_ name: String) throws -> Norm {
            Norm(weight: try tensor(name + ".weight", [c.hiddenSize]), bias: try tensor(name + ".bias", [c.hiddenSize]))
        }
        let h = c.hiddenSize, f = c.intermediateSize
        wordEmbeddings = try tensor("embeddings.word_embeddings.weight", [c.vocabularySize, h])
        positionEmbeddings = try tensor("embeddings.position_embeddings.weight", [c.maximumPositions, h])
        typeEmbeddings = try tensor("embeddings.token_type_embeddings.weight", [2, h])
        embeddingNorm = try norm("embeddings.LayerNorm")
        layers = try (0..<c.layerCount).map { i in
            let p = "encoder.layer.\(i)."
            return Layer(
                query: try linear(p + "attention.self.query", h, h), key: try linear(p + "attention.self.key", h, h),
                value: try linear(p + "attention.self.value", h, h),
                attentionOutput: try linear(p + "attention.output.dense", h, h),
                intermediate: try linear(p + "intermediate.dense", h, f), output: try linear(p + "output.dense", f, h),
                attentionNorm: try norm(p + "attention.output.LayerNorm"), outputNorm: try norm(p + "output.LayerNorm"))
        }
    }

    /// Embeddings of any number of sequences in batches of `batchSize` similar lengths (sorted by
    /// length, so little padding is computed), in the input order. `progress` receives the number
    /// of sequences done after each batch.
    public func embedAll(_ sequences: [[Int]], batchSize: Int = 32, progress: (Int) -> Void = { _ in }) throws -> [[Float]] {
        let order = sequences.indices.sorted { sequences[$0].count < sequences[$1].count }
        var vectors = [[Float]](repeating: [], count: sequences.count)
        for start in stride(from: 0, to: order.count, by: max(1, batchSize)) {
            let batch = Array(order[start..<min(order.count, start + max(1, batchSize))])
            for (i, v) in zip(batch, try embed(batch.map { sequences[$0] })) { vectors[i] = v }
            progress(min(order.count, start + max(1, batchSize)))
        }
        return vectors
    }

    /// Mean-pooled, L2-normalized embeddings of token sequences (each ≤ maximumPositions ids,
    /// [CLS] … [SEP] included). Sequences run as one padded batch with a key mask.
    public func embed(_ sequences: [[Int]]) throws -> [[Float]] {
        let c = configuration
        guard !sequences.isEmpty else { return [] }
        let length = sequences.map(\.count).max()!
        guard length > 0, length <= c.maximumPositions else {
            throw SafetensorsError.invalid("sequences must have 1…\(c.maximumPositions) tokens, got \(length)")
        }
        if let bad = sequences.joined().first(where: { !(0..<c.vocabularySize).contains($0) }) {
            throw TokenizerError.idOutOfRange(bad, vocabularySize: c.vocabularySize)
        }
        let batch = sequences.count, h = c.hiddenSize, rows = batch * length
        var x = [Float](repeating: 0, count: rows * h)
        var mask = [UInt8](repeating: 0, count: rows)
        // Embeddings: word + position + token type 0, then LayerNorm.
        x.withUnsafeMutableBufferPointer { xb in
            for (b, ids) in sequences.enumerated() {
                for (p, id) in ids.enumerated() {
                    mask[b * length + p] = 1
                    let row = UnsafeMutableBufferPointer(rebasing: xb[((b * length + p) * h)..<((b * length + p + 1) * h)])
                    VectorOps.add(UnsafeBufferPointer(rebasing: wordEmbeddings[(id * h)...]),
                                  UnsafeBufferPointer(rebasing: positionEmbeddings[(p * h)...]), into: row, count: h)
                    VectorOps.add(UnsafeBufferPointer(row), typeEmbeddings, into: row, count: h)
                }
            }
        }
        layerNorm(&x, rows, embeddingNorm)
        var q = [Float](repeating: 0, count: rows * h), k = q, v = q, attention = q, projected = q
        var wide = [Float](repeating: 0, count: rows * c.intermediateSize)
        let shape = AttentionShape(batchCount: batch, queryCount: length, keyCount: length, headCount: c.headCount,
                                   headDimension: h / c.headCount)
        for layer in layers {
            apply(layer.query, x, &q, rows)
            apply(layer.key, x, &k, rows)
            apply(layer.value, x, &v, rows)
            q.withUnsafeBufferPointer { qb in k.withUnsafeBufferPointer { kb in v.withUnsafeBufferPointer { vb in
                mask.withUnsafeBufferPointer { mb in attention.withUnsafeMutableBufferPointer { ob in
                    Attention.forward(shape: shape, scale: 1 / Float(h / c.headCount).squareRoot(), masking: .bidirectional,
                                      keyMask: mb, query: qb, key: kb, value: vb, output: ob, pool: pool)
                } }
            } } }
            apply(layer.attentionOutput, attention, &projected, rows)
            addInPlace(&x, projected)
            layerNorm(&x, rows, layer.attentionNorm)
            apply(layer.intermediate, x, &wide, rows)
            wide.withUnsafeMutableBufferPointer { w in
                let f = c.intermediateSize
                pool.parallelFor(rows, grain: 8) { range in
                    let part = UnsafeMutableBufferPointer(rebasing: w[(range.lowerBound * f)..<(range.upperBound * f)])
                    VectorOps.gelu(UnsafeBufferPointer(part), approximation: .erf, into: part, count: part.count)
                }
            }
            apply(layer.output, wide, &projected, rows)
            addInPlace(&x, projected)
            layerNorm(&x, rows, layer.outputNorm)
        }
        // Mean over the real tokens, then unit length.
        return x.withUnsafeBufferPointer { xb in
            sequences.enumerated().map { b, ids in
                var mean = [Float](repeating: 0, count: h)
                mean.withUnsafeMutableBufferPointer { m in
                    for p in 0..<ids.count {
                        VectorOps.axpy(1, UnsafeBufferPointer(rebasing: xb[((b * length + p) * h)...]), m, count: h)
                    }
                    let squared = VectorOps.dot(UnsafeBufferPointer(m), UnsafeBufferPointer(m), count: h) / Float(ids.count * ids.count)
                    // mean / ‖mean‖ = sum / ‖sum‖; the 1/n only matters for the norm guard.
                    let inverse = 1 / (max(squared.squareRoot(), 1e-12) * Float(ids.count))
                    VectorOps.scale(UnsafeBufferPointer(m), by: inverse, into: m, count: h)
                }
                return mean
            }
        }
    }

    /// y[rows][out] = x[rows][in] · Wᵀ + b: the bias is copied into y first and the GEMM adds to it
    /// (β = 1), which saves a pass over y.
    private func apply(_ l: Linear, _ x: [Float], _ y: inout [Float], _ rows: Int) {
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                let bias = l.bias.baseAddress!, out = yb.baseAddress!
                for r in 0..<rows { (out + r * l.outputs).update(from: bias, count: l.outputs) }
                BLAS.gemm(transposeB: .transposed, m: rows, n: l.outputs, k: l.inputs, a: xb, lda: l.inputs,
                          b: l.weight, ldb: l.inputs, beta: 1, c: yb, ldc: l.outputs, pool: pool)
            }
        }
    }

    private func addInPlace(_ x: inout [Float], _ y: [Float]) {
        x.withUnsafeMutableBufferPointer { xb in
            y.withUnsafeBufferPointer { yb in VectorOps.add(UnsafeBufferPointer(xb), yb, into: xb, count: xb.count) }
        }
    }

    private func layerNorm(_ x: inout [Float], _ rows: Int, _ n: Norm) {
        let h = configuration.hiddenSize
        let epsilon = configuration.layerNormEpsilon
        x.withUnsafeMutableBufferPointer { xb in
            pool.parallelFor(rows, grain: 16) { range in
                for r in range {
                    let row = UnsafeMutableBufferPointer(rebasing: xb[(r * h)..<((r + 1) * h)])
                    VectorOps.layerNorm(UnsafeBufferPointer(row), weight: n.weight, bias: n.bias, epsilon: epsilon,
                                        into: row, count: h)
                }
            }
        }
    }
}
