import KilnKernels

extension Tensor {
    /// Conv2d or ConvTranspose2d (by `geometry`) of an NCHW batch through the kernel layer's
    /// im2col/col2im + GEMM; weight [out, in, kh, kw] (transposed: [in, out, kh, kw]), bias [out].
    public func convolution(_ geometry: ConvolutionGeometry, weight: Tensor, bias: Tensor?, pool: ThreadPool = .shared) -> Tensor {
        let g = geometry
        let batch = count / g.inputSize
        precondition(batch * g.inputSize == count && count > 0, "convolution over \(g.inputChannels)×\(g.inputHeight)×\(g.inputWidth) cannot take \(shape)")
        precondition(weight.count == g.weightSize, "convolution weight must hold \(g.weightSize) values, got \(weight.shape)")
        if let bias { precondition(bias.count == g.outputChannels, "convolution bias must be [\(g.outputChannels)], got \(bias.shape)") }
        var y = Tensor.uninitialized(batch * g.outputSize)
        data.withUnsafeBufferPointer { x in
            weight.data.withUnsafeBufferPointer { w in
                y.withUnsafeMutableBufferPointer { yb in
                    if let bias {
                        bias.data.withUnsafeBufferPointer { b in
                            Convolution.forward(g, batchCount: batch, input: x, weight: w, bias: b, output: yb, pool: pool)
                        }
                    } else {
                        Convolution.forward(g, batchCount: batch, input: x, weight: w, bias: nil, output: yb, pool: pool)
                    }
                }
            }
        }
        let outShape = [batch, g.outputChannels, g.outputHeight, g.outputWidth]
        return Tensor(shape: outShape, data: y, inputs: [self, weight] + (bias.map { [$0] } ?? [])) { out in
            // The kernel overwrites its gradients; they are added into ours afterwards.
            var dx = self.requiresGradient ? Tensor.uninitialized(self.count) : []
            var dw = weight.requiresGradient ? Tensor.uninitialized(weight.count) : []
            let wantsBias = bias?.requiresGradient ?? false
            var db = wantsBias ? [Float](repeating: 0, count: g.outputChannels) : []
            self.data.withUnsafeBufferPointer { x in
                weight.data.withUnsafeBufferPointer { w in
                    out.gradient.withUnsafeBufferPointer { dy in
                        dx.withUnsafeMutableBufferPointer { dxb in
                            dw.withUnsafeMutableBufferPointer { dwb in
                                db.withUnsafeMutableBufferPointer { dbb in
                                    Convolution.backward(
                                        g, batchCount: batch, input: x, weight: w, outputGradient: dy,
                                        inputGradient: self.requiresGradient ? dxb : nil,
                                        weightGradient: weight.requiresGradient ? dwb : nil,
                                        biasGradient: wantsBias ? dbb : nil, pool: pool)
                                }
                            }
                        }
                    }
                }
            }
            if self.requiresGradient { self.accumulateGradient(dx) }
            if weight.requiresGradient { weight.accumulateGradient(dw) }
            if wantsBias, let bias { bias.accumulateGradient(db) }
        }
    }
}
