import KilnKernels

/// Parameters of a SAGAN self-attention block over C channels: 1×1 convolutions q, k (C → C/8)
/// and v (C → C) with biases, and the residual gate γ.
public struct SelfAttentionParameters {
    public let queryWeight, queryBias, keyWeight, keyBias, valueWeight, valueBias, gamma: Tensor

    public init(queryWeight: Tensor, queryBias: Tensor, keyWeight: Tensor, keyBias: Tensor,
                valueWeight: Tensor, valueBias: Tensor, gamma: Tensor) {
        (self.queryWeight, self.queryBias, self.keyWeight, self.keyBias) = (queryWeight, queryBias, keyWeight, keyBias)
        (self.valueWeight, self.valueBias, self.gamma) = (valueWeight, valueBias, gamma)
    }

    public var all: [Tensor] { [queryWeight, queryBias, keyWeight, keyBias, valueWeight, valueBias, gamma] }
}

extension Tensor {
    /// y = x + γ·softmax(Q·Kᵀ)·V over the H·W positions of each image (no 1/√d scale, one head),
    /// with Q, K, V the 1×1 convolutions of x. One GEMM makes [q | k | v] for every position of
    /// the batch, the kernel layer's materialized attention (forward and backward: GEMMs over the
    /// 49 or 196 positions) does the rest.
    public func selfAttention(_ p: SelfAttentionParameters, pool: ThreadPool = .shared) -> Tensor {
        precondition(shape.count == 4, "self-attention takes [N, C, H, W], got \(shape)")
        let batch = shape[0], c = shape[1], positions = shape[2] * shape[3], d = p.queryWeight.count / c
        precondition(p.queryWeight.count == d * c && p.keyWeight.count == d * c && p.valueWeight.count == c * c
                     && p.queryBias.count == d && p.keyBias.count == d && p.valueBias.count == c && p.gamma.count == 1,
                     "self-attention parameters do not fit \(c) channels")
        let width = 2 * d + c, rows = batch * positions
        let weight = p.queryWeight.data + p.keyWeight.data + p.valueWeight.data  // [2d + C, C]
        let bias = p.queryBias.data + p.keyBias.data + p.valueBias.data
        // xᵀ: [B·N, C], position-major as the attention kernel reads it.
        var xt = Tensor.uninitialized(rows * c)
        transpose(data, into: &xt, batch: batch, channels: c, positions: positions, toPositionMajor: true, pool: pool)
        var qkv = Tensor.uninitialized(rows * width)
        for r in 0..<rows { qkv.replaceSubrange((r * width)..<((r + 1) * width), with: bias) }
        xt.withUnsafeBufferPointer { a in
            weight.withUnsafeBufferPointer { w in
                qkv.withUnsafeMutableBufferPointer { out in
                    BLAS.gemm(transposeB: .transposed, m: rows, n: width, k: c, a: a, lda: c, b: w, ldb: c,
                              beta: 1, c: out, ldc: width, pool: pool)
                }
            }
        }
        var shape = AttentionShape(batchCount: batch, queryCount: positions, keyCount: positions, headCount: 1,
                                   headDimension: d, valueDimension: c)
        (shape.queryPositionStride, shape.keyPositionStride, shape.valuePositionStride) = (width, width, width)
        (shape.queryBatchStride, shape.keyBatchStride, shape.valueBatchStride) = (positions * width, positions * width, positions * width)
        var o = Tensor.uninitialized(rows * c)
        var lse = Tensor.uninitialized(rows)
        qkv.withUnsafeBufferPointer { s in
            o.withUnsafeMutableBufferPointer { ob in
                lse.withUnsafeMutableBufferPointer { lb in
                    Attention.forwardMaterialized(shape: shape, scale: 1, query: s, key: UnsafeBufferPointer(rebasing: s[d...]),
                                      value: UnsafeBufferPointer(rebasing: s[(2 * d)...]), output: ob, logSumExp: lb, pool: pool)
                }
            }
        }
        let gamma = p.gamma.data[0]
        // y = x + γ·oᵀ, back in channel-major order.
        var y = Tensor.uninitialized(count)
        transpose(o, into: &y, batch: batch, channels: c, positions: positions, toPositionMajor: false, scale: gamma, adding: data, pool: pool)
        return Tensor(shape: self.shape, data: y, inputs: [self] + p.all) { out in
            let dy = out.gradient
            if self.requiresGradient { self.accumulateGradient(dy) }
            // dO = γ·dyᵀ (position-major); dγ = Σ dy ⊙ oᵀ = Σ dO ⊙ o / γ, summed below without the division.
            var dyT = Tensor.uninitialized(rows * c)
            transpose(dy, into: &dyT, batch: batch, channels: c, positions: positions, toPositionMajor: true, pool: pool)
            var dGamma: Float = 0
            for i in 0..<(rows * c) { dGamma += dyT[i] * o[i] }
            var dO = dyT
            for i in 0..<(rows * c) { dO[i] *= gamma }
            if p.gamma.requiresGradient { p.gamma.accumulateGradient([dGamma]) }
            guard gamma != 0 else { return }  // nothing flows through the attention path yet
            var dQKV = Tensor.uninitialized(rows * width)
            qkv.withUnsafeBufferPointer { s in
                o.withUnsafeBufferPointer { ob in
                    lse.withUnsafeBufferPointer { lb in
                        dO.withUnsafeBufferPointer { dob in
                            dQKV.withUnsafeMutableBufferPointer { g in
                                let base = g.baseAddress!
                                Attention.backwardMaterialized(
                                    shape: shape, scale: 1, query: s, key: UnsafeBufferPointer(rebasing: s[d...]),
                                    value: UnsafeBufferPointer(rebasing: s[(2 * d)...]), output: ob, logSumExp: lb,
                                    outputGradient: dob, queryGradient: g,
                                    keyGradient: UnsafeMutableBufferPointer(start: base + d, count: g.count - d),
                                    valueGradient: UnsafeMutableBufferPointer(start: base + 2 * d, count: g.count - 2 * d), pool: pool)
                            }
                        }
                    }
                }
            }
            var dW = Tensor.uninitialized(width * c), dB = [Float](repeating: 0, count: width)
            var dXt = Tensor.uninitialized(rows * c)
            dQKV.withUnsafeBufferPointer { g in
                xt.withUnsafeBufferPointer { a in
                    dW.withUnsafeMutableBufferPointer { dw in
                        BLAS.gemm(transposeA: .transposed, m: width, n: c, k: rows, a: g, lda: width, b: a, ldb: c,
                                  c: dw, ldc: c, pool: pool)
                    }
                }
                if self.requiresGradient {
                    weight.withUnsafeBufferPointer { w in
                        dXt.withUnsafeMutableBufferPointer { dx in
                            BLAS.gemm(m: rows, n: c, k: width, a: g, lda: width, b: w, ldb: c, c: dx, ldc: c, pool: pool)
                        }
                    }
                }
                for r in 0..<rows {
                    for j in 0..<width { dB[j] += g[r * width + j] }
                }
            }
            let parts: [(Tensor, Tensor, Range<Int>)] = [
                (p.queryWeight, p.queryBias, 0..<d), (p.keyWeight, p.keyBias, d..<(2 * d)), (p.valueWeight, p.valueBias, (2 * d)..<width),
            ]
            for (w, b, range) in parts {
                if w.requiresGradient { w.accumulateGradient(Array(dW[(range.lowerBound * c)..<(range.upperBound * c)])) }
                if b.requiresGradient { b.accumulateGradient(Array(dB[range])) }
            }
            if self.requiresGradient {
                var dx = Tensor.uninitialized(self.count)
                transpose(dXt, into: &dx, batch: batch, channels: c, positions: positions, toPositionMajor: false, pool: pool)
                self.accumulateGradient(dx)
            }
        }
    }
}

/// [batch][channels][positions] ↔ [batch][positions][channels] through the kernel layer; going
/// back to channel-major, `scale` multiplies and `adding` (channel-major) is added.
private func transpose(_ source: [Float], into target: inout [Float], batch: Int, channels c: Int, positions: Int,
                       toPositionMajor: Bool, scale: Float = 1, adding base: [Float]? = nil, pool: ThreadPool) {
    let (rows, columns) = toPositionMajor ? (c, positions) : (positions, c)
    source.withUnsafeBufferPointer { sb in
        target.withUnsafeMutableBufferPointer { tb in
            if let base {
                base.withUnsafeBufferPointer { bb in
                    VectorOps.transposeBatched(sb, batch: batch, rows: rows, columns: columns, scale: scale, adding: bb, into: tb, pool: pool)
                }
            } else {
                VectorOps.transposeBatched(sb, batch: batch, rows: rows, columns: columns, scale: scale, into: tb, pool: pool)
            }
        }
    }
}
