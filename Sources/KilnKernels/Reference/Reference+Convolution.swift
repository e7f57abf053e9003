extension Reference {
    /// Conv2d / ConvTranspose2d by the defining sums of ARCHITECTURES.md §1 (no im2col), in Double.
    public static func convolution(
        _ g: ConvolutionGeometry, batchCount: Int, input: [Float], weight: [Float], bias: [Float]?
    ) -> [Float] {
        var out = [Double](repeating: 0, count: batchCount * g.outputSize)
        forEachTap(g, batchCount) { inputIndex, weightIndex, outputIndex in
            out[outputIndex] += Double(input[inputIndex]) * Double(weight[weightIndex])
        }
        if let bias {
            let spatial = g.outputHeight * g.outputWidth
            for i in out.indices { out[i] += Double(bias[(i / spatial) % g.outputChannels]) }
        }
        return out.map { Float($0) }
    }

    /// Gradients of `convolution` with respect to input, weight and bias, by scattering each tap.
    public static func convolutionBackward(
        _ g: ConvolutionGeometry, batchCount: Int, input: [Float], weight: [Float], outputGradient: [Float]
    ) -> (input: [Float], weight: [Float], bias: [Float]) {
        var dx = [Double](repeating: 0, count: batchCount * g.inputSize)
        var dw = [Double](repeating: 0, count: g.weightSize)
        var db = [Double](repeating: 0, count: g.outputChannels)
        forEachTap(g, batchCount) { inputIndex, weightIndex, outputIndex in
            dx[inputIndex] += Double(outputGradient[outputIndex]) * Double(weight[weightIndex])
            dw[weightIndex] += Double(outputGradient[outputIndex]) * Double(input[inputIndex])
        }
        let spatial = g.outputHeight * g.outputWidth
        for i in outputGradient.indices.prefix(batchCount * g.outputSize) {
            db[(i / spatial) % g.outputChannels] += Double(outputGradient[i])
        }
        return (dx.map { Float($0) }, dw.map { Float($0) }, db.map { Float($0) })
    }

    /// Calls body(input index, weight index, output index) for every multiply of the layer.
    /// Conv2d: y[n,o,Y,X] += W[o,i,ky,kx]·x[n,i,sY+ky−p,sX+kx−p].
    /// ConvTranspose2d: y[n,o,s·iy−p+ky,s·ix−p+kx] += W[i,o,ky,kx]·x[n,i,iy,ix].
    static func forEachTap(_ g: ConvolutionGeometry, _ batchCount: Int, _ body: (Int, Int, Int) -> Void) {
        let (ci, co, kh, kw) = (g.inputChannels, g.outputChannels, g.kernelHeight, g.kernelWidth)
        for n in 0..<batchCount {
            for i in 0..<ci {
                for o in 0..<co {
                    for ky in 0..<kh {
                        for kx in 0..<kw {
                            if g.isTransposed {
                                let w = ((i * co + o) * kh + ky) * kw + kx
                                for iy in 0..<g.inputHeight {
                                    let y = g.stride * iy - g.padding + ky
                                    if y < 0 || y >= g.outputHeight { continue }
                                    for ix in 0..<g.inputWidth {
                                        let x = g.stride * ix - g.padding + kx
                                        if x < 0 || x >= g.outputWidth { continue }
                                        body(((n * ci + i) * g.inputHeight + iy) * g.inputWidth + ix, w,
                                             ((n * co + o) * g.outputHeight + y) * g.outputWidth + x)
                                    }
                                }
                            } else {
                                let w = ((o * ci + i) * kh + ky) * kw + kx
                                for oy in 0..<g.outputHeight {
                                    let y = g.stride * oy + ky - g.padding
                                    if y < 0 || y >= g.inputHeight { continue }
                                    for ox in 0..<g.outputWidth {
                                        let x = g.stride * ox + kx - g.padding
                                        if x < 0 || x >= g.inputWidth { continue }
                                        body(((n * ci + i) * g.inputHeight + y) * g.inputWidth + x, w,
                                             ((n * co + o) * g.outputHeight + oy) * g.outputWidth + ox)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
