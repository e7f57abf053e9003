import Foundation

extension Reference {
    /// Materialized attention in Double: for each (batch, head) the full queries×keys score
    /// matrix, masked, softmaxed row by row, then multiplied by V. Returns the output in the
    /// shape's output layout (other elements zero) and the per-row log-sum-exp.
    public static func attention(
        shape: AttentionShape, scale: Float, masking: AttentionMasking, keyMask: [UInt8]?,
        query: [Float], key: [Float], value: [Float]
    ) -> (output: [Float], logSumExp: [Float]) {
        var output = [Float](repeating: 0, count: shape.outputExtent)
        var lse = [Float](repeating: -.infinity, count: shape.rowCount)
        let probabilities = attentionProbabilities(shape: shape, scale: scale, masking: masking, keyMask: keyMask,
                                                   query: query, key: key)
        for b in 0..<shape.batchCount {
            for h in 0..<shape.headCount {
                let kvh = h / shape.groupSize
                for i in 0..<shape.queryCount {
                    let row = (b * shape.headCount + h) * shape.queryCount + i
                    guard let (p, logSum) = probabilities[row] else { continue }
                    lse[row] = Float(logSum)
                    for d in 0..<shape.valueDimension {
                        var sum = 0.0
                        for j in 0..<shape.keyCount where p[j] != 0 {
                            sum += p[j] * Double(value[b * shape.valueBatchStride + j * shape.valuePositionStride + kvh * shape.valueDimension + d])
                        }
                        output[b * shape.outputBatchStride + i * shape.outputPositionStride + h * shape.valueDimension + d] = Float(sum)
                    }
                }
            }
        }
        return (output, lse)
    }

    /// Gradients of `attention` (dQ, dK, dV) from the materialized probabilities, in Double.
    public static func attentionBackward(
        shape: AttentionShape, scale: Float, masking: AttentionMasking, keyMask: [UInt8]?,
        query: [Float], key: [Float], value: [Float], outputGradient: [Float]
    ) -> (query: [Float], key: [Float], value: [Float]) {
        var dQ = [Double](repeating: 0, count: shape.queryExtent)
        var dK = [Double](repeating: 0, count: shape.keyExtent)
        var dV = [Double](repeating: 0, count: shape.valueExtent)
        let probabilities = attentionProbabilities(shape: shape, scale: scale, masking: masking, keyMask: keyMask,
                                                   query: query, key: key)
        let hd = shape.headDimension, vd = shape.valueDimension
        for b in 0..<shape.batchCount {
            for h in 0..<shape.headCount {
                let kvh = h / shape.groupSize
                for i in 0..<shape.queryCount {
                    let row = (b * shape.headCount + h) * shape.queryCount + i
                    guard let (p, _) = probabilities[row] else { continue }
                    let q0 = b * shape.queryBatchStride + i * shape.queryPositionStride + h * hd
                    let o0 = b * shape.outputBatchStride + i * shape.outputPositionStride + h * vd
                    // dP[j] = dO·V[j]; dS = P ⊙ (dP − Σ P·dP)
                    var dP = [Double](repeating: 0, count: shape.keyCount)
                    for j in 0..<shape.keyCount {
                        let v0 = b * shape.valueBatchStride + j * shape.valuePositionStride + kvh * vd
                        for d in 0..<vd { dP[j] += Double(outputGradient[o0 + d]) * Double(value[v0 + d]) }
                    }
                    let weighted = zip(p, dP).reduce(0.0) { $0 + $1.0 * $1.1 }
                    for j in 0..<shape.keyCount where p[j] != 0 {
                        let k0 = b * shape.keyBatchStride + j * shape.keyPositionStride + kvh * hd
                        let v0 = b * shape.valueBatchStride + j * shape.valuePositionStride + kvh * vd
                        let ds = p[j] * (dP[j] - weighted) * Double(scale)
                        for d in 0..<vd { dV[v0 + d] += p[j] * Double(outputGradient[o0 + d]) }
                        for d in 0..<hd {
                            dQ[q0 + d] += ds * Double(key[k0 + d])
                            dK[k0 + d] += ds * Double(query[q0 + d])
                        }
                    }
                }
            }
        }
        return (dQ.map { Float($0) }, dK.map { Float($0) }, dV.map { Float($0) })
    }

    /// Per row: softmax probabilities over all keys and their log-sum-exp, nil if no key is visible.
    static func attentionProbabilities(
        shape: AttentionShape, scale: Float, masking: AttentionMasking, keyMask: [UInt8]?,
        query: [Float], key: [Float]
    ) -> [([Double], Double)?] {
        var rows = [([Double], Double)?](repeating: nil, count: shape.rowCount)
        let hd = shape.headDimension
        for b in 0..<shape.batchCount {
            for h in 0..<shape.headCount {
                let kvh = h / shape.groupSize
                for i in 0..<shape.queryCount {
                    var scores = [Double](repeating: -.infinity, count: shape.keyCount)
                    for j in 0..<shape.keyCount {
                        if !masking.keyRange(query: i, keyCount: shape.keyCount).contains(j) { continue }
                        if let keyMask, keyMask[b * shape.keyCount + j] == 0 { continue }
                        var s = 0.0
                        for d in 0..<hd {
                            s += Double(query[b * shape.queryBatchStride + i * shape.queryPositionStride + h * hd + d])
                                * Double(key[b * shape.keyBatchStride + j * shape.keyPositionStride + kvh * hd + d])
                        }
                        scores[j] = s * Double(scale)
                    }
                    let m = scores.max() ?? -.infinity
                    guard m > -.infinity else { continue }
                    let e = scores.map { Foundation.exp($0 - m) }
                    let sum = e.reduce(0, +)
                    rows[(b * shape.headCount + h) * shape.queryCount + i] = (e.map { $0 / sum }, m + Foundation.log(sum))
                }
            }
        }
        return rows
    }
}
