import KilnKernels

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
            var sums = [Double](repeating: 0, count: c), squares = sums
            data.withUnsafeBufferPointer { x in
                sums.withUnsafeMutableBufferPointer { s in
                    squares.withUnsafeMutableBufferPointer { q in
                        VectorOps.channelSums(x, batch: n, channels: c, spatial: spatial, sums: s, squares: q, pool: .shared)
                    }
                }
            }
            for ch in 0..<c {
                let mu = sums[ch] / Double(m)
                let variance = max(squares[ch] / Double(m) - mu * mu, 0)
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
        // x̂ = x·(1/σ) − μ/σ, y = γ·x̂ + β, each one pass.
        let shift = (0..<c).map { -mean[$0] * inverseStd[$0] }
        var normalized = Tensor.uninitialized(count), y = Tensor.uninitialized(count)
        data.withUnsafeBufferPointer { x in
            normalized.withUnsafeMutableBufferPointer { xhat in
                inverseStd.withUnsafeBufferPointer { scale in
                    shift.withUnsafeBufferPointer { k in
                        VectorOps.channelAffine(x, scale: scale, shift: k, batch: n, channels: c, spatial: spatial, into: xhat, pool: .shared)
                    }
                }
                y.withUnsafeMutableBufferPointer { yb in
                    weight.data.withUnsafeBufferPointer { g in
                        bias.data.withUnsafeBufferPointer { b in
                            VectorOps.channelAffine(UnsafeBufferPointer(xhat), scale: g, shift: b, batch: n, channels: c, spatial: spatial, into: yb, pool: .shared)
                        }
                    }
                }
            }
        }
        return Tensor(shape: shape, data: y, inputs: [self, weight, bias]) { out in
            var sumDy = [Double](repeating: 0, count: c), sumDyX = sumDy
            out.gradient.withUnsafeBufferPointer { dy in
                sumDy.withUnsafeMutableBufferPointer { s in VectorOps.channelSums(dy, batch: n, channels: c, spatial: spatial, sums: s, pool: .shared) }
                normalized.withUnsafeBufferPointer { xhat in
                    sumDyX.withUnsafeMutableBufferPointer { d in VectorOps.channelDots(dy, xhat, batch: n, channels: c, spatial: spatial, dots: d, pool: .shared) }
                }
            }
            if weight.requiresGradient { weight.accumulateGradient(sumDyX.map { Float($0) }) }
            if bias.requiresGradient { bias.accumulateGradient(sumDy.map { Float($0) }) }
            guard self.requiresGradient else { return }
            // Training: dx = γ/σ · (dy − mean(dy) − x̂·mean(dy·x̂)), since the batch statistics
            // depend on x. Evaluation: dx = γ/σ · dy.
            let scale = (0..<c).map { weight.data[$0] * inverseStd[$0] }
            let xhatScale = (0..<c).map { training ? -scale[$0] * Float(sumDyX[$0] / Double(m)) : 0 }
            let constant = (0..<c).map { training ? -scale[$0] * Float(sumDy[$0] / Double(m)) : 0 }
            var dx = Tensor.uninitialized(self.count)
            out.gradient.withUnsafeBufferPointer { dy in
                normalized.withUnsafeBufferPointer { xhat in
                    dx.withUnsafeMutableBufferPointer { d in
                        scale.withUnsafeBufferPointer { ka in
                            xhatScale.withUnsafeBufferPointer { kb in
                                constant.withUnsafeBufferPointer { k in
                                    VectorOps.channelAffine(dy, scale: ka, plus: xhat, scale: kb, shift: k, batch: n, channels: c,
                                                            spatial: spatial, into: d, pool: .shared)
                                }
                            }
                        }
                    }
                }
            }
            self.accumulateGradient(dx)
        }
    }
}
