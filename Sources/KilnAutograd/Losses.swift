import Foundation
import KilnKernels

/// The training objectives of the image models, each a fused operation with a closed-form gradient.
extension Tensor {
    /// Binary cross-entropy of logits against targets in [0, 1], per element
    /// max(ℓ,0) − ℓ·t + log(1 + e^(−|ℓ|)), summed and divided by `divisor` (1 for a sum, the
    /// element count for PyTorch's mean, the batch size for a per-image sum).
    public func binaryCrossEntropy(logitsAgainst targets: [Float], dividedBy divisor: Float) -> Tensor {
        precondition(targets.count == count, "\(targets.count) targets for \(count) logits")
        // Sums per block of 8192 logits (fixed blocks, so the total does not depend on the threads).
        let block = 8192, blocks = (count + block - 1) / block
        var partial = [Double](repeating: 0, count: blocks)
        data.withUnsafeBufferPointer { logits in
            targets.withUnsafeBufferPointer { t in
                partial.withUnsafeMutableBufferPointer { sums in
                    let l = logits.baseAddress!, tp = t.baseAddress!, sp = sums.baseAddress!
                    ThreadPool.shared.parallelFor(blocks) { range in
                        for b in range {
                            var total: Double = 0
                            for i in (b * block)..<min(count, (b + 1) * block) {
                                total += Double(max(l[i], 0) - l[i] * tp[i] + softplusOfNegativeMagnitude(l[i]))
                            }
                            sp[b] = total
                        }
                    }
                }
            }
        }
        let total = partial.reduce(0, +)
        return Tensor(shape: [1], data: [Float(total / Double(divisor))], inputs: [self]) { out in
            let scale = out.gradient[0] / divisor
            var g = Tensor.uninitialized(self.count)
            self.data.withUnsafeBufferPointer { logits in
                targets.withUnsafeBufferPointer { t in
                    g.withUnsafeMutableBufferPointer { gb in
                        let l = logits.baseAddress!, tp = t.baseAddress!, gp = gb.baseAddress!
                        ThreadPool.shared.parallelFor(gb.count, grain: 1 << 13) { range in
                            for i in range { gp[i] = (sigmoidScalar(l[i]) - tp[i]) * scale }
                        }
                    }
                }
            }
            self.accumulateGradient(g)
        }
    }

    /// Binary cross-entropy of logits against one target for every element, averaged (PyTorch's
    /// BCEWithLogitsLoss with reduction "mean").
    public func binaryCrossEntropy(logitsAgainst target: Float) -> Tensor {
        binaryCrossEntropy(logitsAgainst: [Float](repeating: target, count: count), dividedBy: Float(count))
    }
}

/// KL(N(μ, σ²) ‖ N(0, I)) = −½ Σ (1 + log σ² − μ² − σ²), summed over every element and divided
/// by `divisor` (the batch size for a per-image mean).
public func gaussianKLDivergence(mean mu: Tensor, logVariance logvar: Tensor, dividedBy divisor: Float) -> Tensor {
    precondition(mu.shape == logvar.shape, "μ \(mu.shape) and log σ² \(logvar.shape) differ")
    var total: Double = 0
    for i in 0..<mu.count {
        total += Double(1 + logvar.data[i] - mu.data[i] * mu.data[i] - Foundation.exp(logvar.data[i]))
    }
    return Tensor(shape: [1], data: [Float(-0.5 * total / Double(divisor))], inputs: [mu, logvar]) { out in
        let scale = out.gradient[0] / divisor
        if mu.requiresGradient { mu.accumulateGradient(mu.data.map { $0 * scale }) }
        if logvar.requiresGradient { logvar.accumulateGradient(logvar.data.map { 0.5 * (Foundation.exp($0) - 1) * scale }) }
    }
}

/// z = μ + e^(½·log σ²) ⊙ ε: a sample from N(μ, σ²) that stays differentiable in μ and log σ².
public func reparameterize(mean mu: Tensor, logVariance logvar: Tensor, noise epsilon: [Float]) -> Tensor {
    precondition(mu.shape == logvar.shape && epsilon.count == mu.count, "μ, log σ² and ε must have one shape")
    let sigma = logvar.data.map { Foundation.exp(0.5 * $0) }
    var z = mu.data
    for i in 0..<z.count { z[i] += sigma[i] * epsilon[i] }
    return Tensor(shape: mu.shape, data: z, inputs: [mu, logvar]) { out in
        if mu.requiresGradient { mu.accumulateGradient(out.gradient) }
        if logvar.requiresGradient {
            var g = out.gradient
            for i in 0..<g.count { g[i] *= 0.5 * sigma[i] * epsilon[i] }
            logvar.accumulateGradient(g)
        }
    }
}

