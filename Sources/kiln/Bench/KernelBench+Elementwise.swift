import Foundation
import KilnKernels

extension KernelBench {
    /// Per-token elementwise kernels at SmolLM2/MiniLM sizes (bytes read + written per second).
    mutating func elementwise() {
        var rng = SystemRandomNumberGenerator()
        let xs = AlignedBuffer<Float>(count: 49152) { _ in Float.random(in: -3...3, using: &rng) }
        let ws = AlignedBuffer<Float>(count: 49152) { _ in Float.random(in: 0.5...1.5, using: &rng) }
        let os = AlignedBuffer<Float>(count: 49152) { _ in 0 }
        let cs = AlignedBuffer<Float>(count: 32) { _ in 0 }, ss = AlignedBuffer<Float>(count: 32) { _ in 0 }
        let x = xs.buffer, w = ws.buffer, o = os.mutableBuffer
        VectorOps.ropeAngles(position: 100, rotaryDimension: 64, base: 100_000, cos: cs.mutableBuffer, sin: ss.mutableBuffer)
        let cases: [(String, String, Int, () -> Void)] = [
            ("rmsNorm", "576", 3 * 576, { VectorOps.rmsNorm(x, weight: w, epsilon: 1e-5, into: o, count: 576) }),
            ("layerNorm", "384", 4 * 384, { VectorOps.layerNorm(x, weight: w, bias: w, epsilon: 1e-12, into: o, count: 384) }),
            ("softmax (vocabulary)", "49152", 2 * 49152, { VectorOps.softmax(x, into: o, count: 49152) }),
            ("swiglu", "1536", 3 * 1536, { VectorOps.swiglu(gate: x, up: w, into: o, count: 1536) }),
            ("gelu erf", "1536", 2 * 1536, { VectorOps.gelu(x, approximation: .erf, into: o, count: 1536) }),
            ("rope adjacent", "9 heads × 64", 2 * 576, {
                VectorOps.applyRoPE(o, headCount: 9, headDimension: 64, rotaryDimension: 64,
                                    cos: cs.buffer, sin: ss.buffer, pairing: .adjacent)
            }),
            ("argmax (vocabulary)", "49152", 49152, { consume(VectorOps.argmax(x, count: 49152)) }),
        ]
        for (name, shape, floats, body) in cases {
            let t = time(body)
            add(BenchRow(group: "vector", kernel: name, shape: shape, threads: 1, microseconds: t.median * 1e6,
                         throughput: Double(floats * 4) / t.median / 1e9, unit: "GB/s"))
        }
    }

    /// The image models' convolutions (batch 64), forward and backward, with the GFLOP/s of one
    /// direct sgemm at the batch GEMM shape for comparison (the rest is im2col/col2im traffic).
    mutating func convolution() {
        let layers: [(String, ConvolutionGeometry)] = [
            ("D conv1 1→64", .convolution(inputChannels: 1, outputChannels: 64, inputHeight: 28, inputWidth: 28, kernelHeight: 4, kernelWidth: 4, stride: 2, padding: 1)),
            ("D conv2 64→128", .convolution(inputChannels: 64, outputChannels: 128, inputHeight: 14, inputWidth: 14, kernelHeight: 4, kernelWidth: 4, stride: 2, padding: 1)),
            ("G deconv1 128→64", .transposed(inputChannels: 128, outputChannels: 64, inputHeight: 7, inputWidth: 7, kernelHeight: 4, kernelWidth: 4, stride: 2, padding: 1)),
            ("G deconv2 64→1", .transposed(inputChannels: 64, outputChannels: 1, inputHeight: 14, inputWidth: 14, kernelHeight: 4, kernelWidth: 4, stride: 2, padding: 1)),
        ]
        let batch = 64
        for (name, g) in layers {
            var rng = SystemRandomNumberGenerator()
            let x = (0..<(batch * g.inputSize)).map { _ in Float.random(in: -1...1, using: &rng) }
            let w = (0..<g.weightSize).map { _ in Float.random(in: -0.1...0.1, using: &rng) }
            let b = [Float](repeating: 0.1, count: g.outputChannels)
            var y = [Float](repeating: 0, count: batch * g.outputSize)
            var dx = x, dw = w, db = b
            let flops = 2.0 * Double(batch * g.weightSize) * Double(g.isTransposed ? g.inputHeight * g.inputWidth : g.outputHeight * g.outputWidth)
            let forward = x.withUnsafeBufferPointer { xb in w.withUnsafeBufferPointer { wb in b.withUnsafeBufferPointer { bb in
                y.withUnsafeMutableBufferPointer { yb in
                    time { Convolution.forward(g, batchCount: batch, input: xb, weight: wb, bias: bb, output: yb) }
                }
            } } }
            let backward = x.withUnsafeBufferPointer { xb in w.withUnsafeBufferPointer { wb in y.withUnsafeBufferPointer { yb in
                dx.withUnsafeMutableBufferPointer { dxb in dw.withUnsafeMutableBufferPointer { dwb in db.withUnsafeMutableBufferPointer { dbb in
                    time { Convolution.backward(g, batchCount: batch, input: xb, weight: wb, outputGradient: yb,
                                                inputGradient: dxb, weightGradient: dwb, biasGradient: dbb) }
                } } }
            } } }
            let spatial = g.isTransposed ? g.inputHeight * g.inputWidth : g.outputHeight * g.outputWidth
            let columns = g.weightSize / (g.isTransposed ? g.inputChannels : g.outputChannels)
            let reference = directSgemm(m: g.isTransposed ? columns : g.outputChannels, n: batch * spatial,
                                        k: g.isTransposed ? g.inputChannels : columns)
            let shape = "64×\(g.inputChannels)×\(g.inputHeight)×\(g.inputWidth) k\(g.kernelHeight)s\(g.stride)"
            add(BenchRow(group: "conv", kernel: "\(name) forward", shape: shape, threads: threads, microseconds: forward.median * 1e6,
                         throughput: flops / forward.median / 1e9, unit: "GFLOP/s", baseline: "sgemm at the batch GEMM shape",
                         baselineThroughput: reference, ratio: flops / forward.median / 1e9 / reference))
            add(BenchRow(group: "conv", kernel: "\(name) backward", shape: shape, threads: threads, microseconds: backward.median * 1e6,
                         throughput: 2 * flops / backward.median / 1e9, unit: "GFLOP/s"))
        }
    }
}
