/// Running mean and variance of a batch-norm layer (PyTorch semantics: momentum 0.1, unbiased
/// variance in the running estimate, starting at mean 0 and variance 1).
public final class RunningStatistics {
    public var mean: [Float]
    public var variance: [Float]
    /// Batches that have updated the statistics (PyTorch's num_batches_tracked).
    public var batchesTracked: Int = 0
    public let momentum: Float

    public init(channels: Int, momentum: Float = 0.1) {
        mean = [Float](repeating: 0, count: channels)
        variance = [Float](repeating: 1, count: channels)
        self.momentum = momentum
    }
}

extension Tensor {
    /// BatchNorm2d over an NCHW batch: in training, normalise with the batch's per-channel
    /// statistics over (N, H, W) (biased variance) and update `running`; otherwise use `running`.
    /// Then y = γ·x̂ + β.
    public func batchNorm(weight: Tensor, bias: Tensor, running: RunningStatistics, training: Bool, epsilon: Float = 1e-5) -> Tensor {
        precondition(shape.count >= 2, "batch norm needs [N, C, …], got \(shape)")
        let n = shape[0], c = shape[1], spatial = count / max(n * c, 1)
        precondition(weight.count == c && bias.count == c && running.mean.count == c, "batch norm over \(c) channels has mismatched parameters")
        let m = n * spatial
        var mean = [Float](repeating: 0, count: c), inverseStd = [Float](repeating: 0, count: c)
        if training {
            precondition(m > 1, "batch norm in training needs more than one value per channel, got \(shape)")
            for ch in 0..<c {
                var sum: Double = 0, squares: Double = 0
                for b in 0..<n {
                    let base = (b * c + ch) * spatial
                    for i in 0..<spatial {
                        let v = Double(data[base + i])
                        sum += v
                        squares += v * v
                    }
                }
                let mu = sum / Double(m)
                let variance = max(squares / Double(m) - mu * mu, 0)
                mean[ch] = Float(mu)
                inverseStd[ch] = Float(1 / (variance + Double(epsilon)).squareRoot())
                let k = running.momentum
                running.mean[ch] = (1 - k) * running.mean[ch] + k * Float(mu)
                running.variance[ch] = (1 - k) * running.variance[ch] + k * Float(variance * Double(m) / Double(m - 1))
            }
            running.batchesTracked += 1
        } else {
            for ch in 0..<c {
                mean[ch] = running.mean[ch]
                inverseStd[ch] = 1 / (running.variance[ch] + epsilon).squareRoot()
            }
        }
        var normalized = data, y = data
        for b in 0..<n {
            for ch in 0..<c {
                let base = (b * c + ch) * spatial
                let mu = mean[ch], s = inverseStd[ch], gamma = weight.data[ch], beta = bias.data[ch]
                for i in base..<(base + spatial) {
                    let xhat = (data[i] - mu) * s
                    normalized[i] = xhat
                    y[i] = gamma * xhat + beta
                }
            }
        }
        return Tensor(shape: shape, data: y, inputs: [self, weight, bias]) { out in
            let dy = out.gradient
            var dGamma = [Float](repeating: 0, count: c), dBeta = [Float](repeating: 0, count: c)
            for b in 0..<n {
                for ch in 0..<c {
                    let base = (b * c + ch) * spatial
                    var sg: Float = 0, sb: Float = 0
                    for i in base..<(base + spatial) {
                        sg += dy[i] * normalized[i]
                        sb += dy[i]
                    }
                    dGamma[ch] += sg
                    dBeta[ch] += sb
                }
            }
            if weight.requiresGradient { weight.accumulateGradient(dGamma) }
            if bias.requiresGradient { bias.accumulateGradient(dBeta) }
            guard self.requiresGradient else { return }
            var dx = dy
            for b in 0..<n {
                for ch in 0..<c {
                    let base = (b * c + ch) * spatial
                    let scale = weight.data[ch] * inverseStd[ch]
                    if training {
                        // dx = γ/σ · (dy − mean(dy) − x̂·mean(dy·x̂)): the batch statistics depend on x.
                        let meanDy = dBeta[ch] / Float(m), meanDyX = dGamma[ch] / Float(m)
                        for i in base..<(base + spatial) { dx[i] = scale * (dy[i] - meanDy - normalized[i] * meanDyX) }
                    } else {
                        for i in base..<(base + spatial) { dx[i] = scale * dy[i] }
                    }
                }
            }
            self.accumulateGradient(dx)
        }
    }
}
