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
        /// Query, key and value stacked into one [3·hidden][hidden] product (one GEMM reads the
        /// layer input once instead of three times).
        let queryKeyValue, attentionOutput, intermediate, output: Linear
        let attentionNorm, outputNorm: Norm
    }

    /// The stacked query/key/value weights and biases (the file's tensors stay mapped).
    private var stacked: [UnsafeMutableBufferPointer<Float>] = []

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
        var stackedParts: [UnsafeMutableBufferPointer<Float>] = []
        layers = try (0..<c.layerCount).map { i in
            let p = "encoder.layer.\(i)."
            let parts = try ["query", "key", "value"].map { try linear(p + "attention.self." + $0, h, h) }
            let weight = UnsafeMutableBufferPointer<Float>.allocate(capacity: 3 * h * h)
            let bias = UnsafeMutableBufferPointer<Float>.allocate(capacity: 3 * h)
            for (i, part) in parts.enumerated() {
                _ = UnsafeMutableBufferPointer(rebasing: weight[(i * h * h)..<((i + 1) * h * h)]).initialize(from: part.weight)
                _ = UnsafeMutableBufferPointer(rebasing: bias[(i * h)..<((i + 1) * h)]).initialize(from: part.bias)
            }
            stackedParts += [weight, bias]
            return Layer(
                queryKeyValue: Linear(weight: UnsafeBufferPointer(weight), bias: UnsafeBufferPointer(bias), inputs: h, outputs: 3 * h),
                attentionOutput: try linear(p + "attention.output.dense", h, h),
                intermediate: try linear(p + "intermediate.dense", h, f), output: try linear(p + "output.dense", f, h),
                attentionNorm: try norm(p + "attention.output.LayerNorm"), outputNorm: try norm(p + "output.LayerNorm"))
        }
        stacked = stackedParts
    }

    deinit {
        for buffer in stacked { buffer.deallocate() }
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
        // Embeddings: word + position + token type 0, then LayerNorm; one sequence per task.
        x.withUnsafeMutableBufferPointer { xb in
            mask.withUnsafeMutableBufferPointer { mb in
                let xs = xb.baseAddress!, ms = mb.baseAddress!
                pool.parallelFor(batch) { range in
                    for b in range {
                        for (p, id) in sequences[b].enumerated() {
                            ms[b * length + p] = 1
                            let row = UnsafeMutableBufferPointer(start: xs + (b * length + p) * h, count: h)
                            VectorOps.add(UnsafeBufferPointer(rebasing: self.wordEmbeddings[(id * h)...]),
                                          UnsafeBufferPointer(rebasing: self.positionEmbeddings[(p * h)...]), into: row, count: h)
                            VectorOps.add(UnsafeBufferPointer(row), self.typeEmbeddings, into: row, count: h)
                        }
                    }
                }
            }
        }
        layerNorm(&x, rows, embeddingNorm)
        var queryKeyValue = [Float](repeating: 0, count: rows * 3 * h)
        var attention = [Float](repeating: 0, count: rows * h), projected = attention
        var wide = [Float](repeating: 0, count: rows * c.intermediateSize)
        // Queries, keys and values interleave per position: [q | k | v] rows of 3·hidden.
        var shape = AttentionShape(batchCount: batch, queryCount: length, keyCount: length, headCount: c.headCount,
                                   headDimension: h / c.headCount)
        (shape.queryPositionStride, shape.keyPositionStride, shape.valuePositionStride) = (3 * h, 3 * h, 3 * h)
        (shape.queryBatchStride, shape.keyBatchStride, shape.valueBatchStride) = (3 * h * length, 3 * h * length, 3 * h * length)
        for layer in layers {
            apply(layer.queryKeyValue, x, &queryKeyValue, rows)
            queryKeyValue.withUnsafeBufferPointer { qkv in
                mask.withUnsafeBufferPointer { mb in attention.withUnsafeMutableBufferPointer { ob in
                    Attention.forwardMaterialized(shape: shape, scale: 1 / Float(h / c.headCount).squareRoot(), masking: .bidirectional,
                                                  keyMask: mb, query: qkv, key: UnsafeBufferPointer(rebasing: qkv[h...]),
                                                  value: UnsafeBufferPointer(rebasing: qkv[(2 * h)...]), output: ob, pool: pool)
                } }
            }
            apply(layer.attentionOutput, attention, &projected, rows, residual: x)
            swap(&x, &projected)
            layerNorm(&x, rows, layer.attentionNorm)
            apply(layer.intermediate, x, &wide, rows)
            wide.withUnsafeMutableBufferPointer { w in
                let f = c.intermediateSize
                pool.parallelFor(rows, grain: 8) { range in
                    let part = UnsafeMutableBufferPointer(rebasing: w[(range.lowerBound * f)..<(range.upperBound * f)])
                    VectorOps.gelu(UnsafeBufferPointer(part), approximation: .erf, into: part, count: part.count)
                }
            }
            apply(layer.output, wide, &projected, rows, residual: x)
            swap(&x, &projected)
            layerNorm(&x, rows, layer.outputNorm)
        }
        // Mean over the real tokens, then unit length; one sequence per task.
        var pooled = [[Float]](repeating: [], count: batch)
        x.withUnsafeBufferPointer { xb in
            pooled.withUnsafeMutableBufferPointer { out in
                let xs = xb.baseAddress!, slots = out.baseAddress!
                pool.parallelFor(batch) { range in
                    for b in range {
                        let count = sequences[b].count
                        var mean = [Float](repeating: 0, count: h)
                        mean.withUnsafeMutableBufferPointer { m in
                            for p in 0..<count {
                                VectorOps.axpy(1, UnsafeBufferPointer(start: xs + (b * length + p) * h, count: h), m, count: h)
                            }
                            let squared = VectorOps.dot(UnsafeBufferPointer(m), UnsafeBufferPointer(m), count: h) / Float(count * count)
                            // mean / ‖mean‖ = sum / ‖sum‖; the 1/n only matters for the norm guard.
                            let inverse = 1 / (max(squared.squareRoot(), 1e-12) * Float(count))
                            VectorOps.scale(UnsafeBufferPointer(m), by: inverse, into: m, count: h)
                        }
                        (slots + b).pointee = mean
                    }
                }
            }
        }
        return pooled
    }

    /// y[rows][out] = x[rows][in] · Wᵀ + b (+ residual): y starts as b (plus the residual row) and
    /// the GEMM adds to it (β = 1), so neither the bias nor the residual costs a pass of its own.
    private func apply(_ l: Linear, _ x: [Float], _ y: inout [Float], _ rows: Int, residual: [Float]? = nil) {
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                let bias = l.bias.baseAddress!, out = yb.baseAddress!, n = l.outputs
                let empty: [Float] = []
                (residual ?? empty).withUnsafeBufferPointer { rb in
                    let start = residual == nil ? nil : rb.baseAddress
                    pool.parallelFor(rows, grain: 64) { range in
                        for r in range {
                            let row = out + r * n
                            if let start {
                                VectorOps.add(UnsafeBufferPointer(start: start + r * n, count: n), UnsafeBufferPointer(start: bias, count: n),
                                              into: UnsafeMutableBufferPointer(start: row, count: n), count: n)
                            } else {
                                row.update(from: bias, count: n)
                            }
                        }
                    }
                }
                BLAS.gemm(transposeB: .transposed, m: rows, n: n, k: l.inputs, a: xb, lda: l.inputs,
                          b: l.weight, ldb: l.inputs, beta: 1, c: yb, ldc: n, pool: pool)
            }
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
