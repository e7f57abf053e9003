import Foundation
import KilnAutograd
import KilnFormats
import KilnKernels

/// Adam as PyTorch implements it (no weight decay, not AMSGrad): m ← β₁m + (1−β₁)g,
/// v ← β₂v + (1−β₂)g², p ← p − lr·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε). It owns the parameters it
/// was given (a GAN's two optimizers get disjoint sets) and their moments.
public final class Adam {
    public let parameters: [(name: String, tensor: Tensor)]
    public let learningRate: Float, beta1: Float, beta2: Float, epsilon: Float
    public private(set) var step = 0
    private var first: [[Float]], second: [[Float]]

    public init(_ parameters: [(name: String, tensor: Tensor)], learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-8) {
        self.parameters = parameters
        (self.learningRate, self.beta1, self.beta2, self.epsilon) = (learningRate, beta1, beta2, epsilon)
        first = parameters.map { [Float](repeating: 0, count: $0.tensor.count) }
        second = first
    }

    /// Clears every owned parameter's gradient.
    public func zeroGradients() { for p in parameters { p.tensor.zeroGradient() } }

    /// One update from the gradients now in the parameters (a parameter no gradient reached counts as 0).
    public func update() {
        step += 1
        let correction1 = 1 - Float(Foundation.pow(Double(beta1), Double(step)))
        let correction2 = 1 - Float(Foundation.pow(Double(beta2), Double(step)))
        let stepSize = learningRate / correction1
        let rootCorrection2 = correction2.squareRoot()
        for (index, p) in parameters.enumerated() {
            let t = p.tensor
            let g = t.gradient.isEmpty ? [Float](repeating: 0, count: t.count) : t.gradient
            let (b1, b2, eps) = (beta1, beta2, epsilon)
            first[index].withUnsafeMutableBufferPointer { m in
                second[index].withUnsafeMutableBufferPointer { v in
                    t.data.withUnsafeMutableBufferPointer { w in
                        g.withUnsafeBufferPointer { gb in
                            let mp = m.baseAddress!, vp = v.baseAddress!, wp = w.baseAddress!, gp = gb.baseAddress!
                            ThreadPool.shared.parallelFor(w.count, grain: 1 << 14) { range in
                                for i in range {
                                    mp[i] = b1 * mp[i] + (1 - b1) * gp[i]
                                    vp[i] = b2 * vp[i] + (1 - b2) * gp[i] * gp[i]
                                    // PyTorch: denom = √v / √(1−β₂ᵗ) + ε; p −= (lr/(1−β₁ᵗ))·m/denom.
                                    wp[i] -= stepSize * mp[i] / (vp[i].squareRoot() / rootCorrection2 + eps)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The moments as safetensors entries ("<name>.exp_avg", "<name>.exp_avg_sq") under `prefix`.
    public func stateEntries(prefix: String) -> [SafetensorsWriter.Entry] {
        parameters.indices.flatMap { i -> [SafetensorsWriter.Entry] in
            let p = parameters[i]
            return [(".exp_avg", first[i]), (".exp_avg_sq", second[i])].map { suffix, values in
                SafetensorsWriter.Entry(name: prefix + p.name + suffix, dtype: .f32, shape: p.tensor.shape,
                                        bytes: values.withUnsafeBufferPointer { Data(buffer: $0) })
            }
        }
    }

    /// Restores the moments written by `stateEntries` and the step count.
    public func restore(from source: CheckpointParameters, prefix: String, step: Int) throws {
        for (i, p) in parameters.enumerated() {
            first[i] = try source.values(prefix + p.name + ".exp_avg", shape: p.tensor.shape, initialization: .constant(0))
            second[i] = try source.values(prefix + p.name + ".exp_avg_sq", shape: p.tensor.shape, initialization: .constant(0))
        }
        self.step = step
    }
}
