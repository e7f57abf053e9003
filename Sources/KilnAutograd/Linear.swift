import KilnKernels

extension Tensor {
    /// y[n][o] = Σ_i x[n][i]·W[o][i] + b[o] for x [N, in], W [out, in], b [out]: one GEMM forward,
    /// one GEMM per requested gradient backward.
    public func linear(weight: Tensor, bias: Tensor?, pool: ThreadPool = .shared) -> Tensor {
        precondition(weight.shape.count == 2, "linear weight must be [out, in], got \(weight.shape)")
        let outputs = weight.shape[0], inputs = weight.shape[1], rows = count / max(inputs, 1)
        precondition(rows * inputs == count, "linear over \(inputs) inputs cannot take \(shape)")
        if let bias { precondition(bias.shape == [outputs], "linear bias must be [\(outputs)], got \(bias.shape)") }
        var y = Tensor.uninitialized(rows * outputs)
        if let bias {
            for r in 0..<rows { y.replaceSubrange((r * outputs)..<((r + 1) * outputs), with: bias.data) }
        }
        data.withUnsafeBufferPointer { x in
            weight.data.withUnsafeBufferPointer { w in
                y.withUnsafeMutableBufferPointer { yb in
                    BLAS.gemm(transposeB: .transposed, m: rows, n: outputs, k: inputs, a: x, lda: inputs, b: w, ldb: inputs,
                              beta: bias == nil ? 0 : 1, c: yb, ldc: outputs, pool: pool)
                }
            }
        }
        return Tensor(shape: [rows, outputs], data: y, inputs: [self, weight] + (bias.map { [$0] } ?? [])) { out in
            out.gradient.withUnsafeBufferPointer { dy in
                if self.requiresGradient {
                    weight.data.withUnsafeBufferPointer { w in
                        self.withGradient { dx in
                            BLAS.gemm(m: rows, n: inputs, k: outputs, a: dy, lda: outputs, b: w, ldb: inputs,
                                      beta: 1, c: dx, ldc: inputs, pool: pool)
                        }
                    }
                }
                if weight.requiresGradient {
                    self.data.withUnsafeBufferPointer { x in
                        weight.withGradient { dw in
                            BLAS.gemm(transposeA: .transposed, m: outputs, n: inputs, k: rows, a: dy, lda: outputs, b: x,
                                      ldb: inputs, beta: 1, c: dw, ldc: inputs, pool: pool)
                        }
                    }
                }
                if let bias, bias.requiresGradient {
                    bias.withGradient { db in
                        for r in 0..<rows {
                            for o in 0..<outputs { db[o] += dy[r * outputs + o] }
                        }
                    }
                }
            }
        }
    }
}
