import Foundation
import KilnKernels

/// Lane-wise operations and their derivatives. Each forward is one pass over the data; each rule
/// one pass over the gradient (they are memory-bound, so no kernel-layer call is needed).
extension Tensor {
    /// A result with the same shape whose gradient is `out.gradient[i] · f.slope(x[i], y[i])`.
    /// Generic over the function (not a closure) so both loops compile to straight-line code.
    @inline(__always)
    private func pointwise<F: PointwiseFunction>(_ f: F) -> Tensor {
        var y = Tensor.uninitialized(count)
        data.withUnsafeBufferPointer { x in
            y.withUnsafeMutableBufferPointer { out in
                let xp = x.baseAddress!, op = out.baseAddress!
                ThreadPool.shared.parallelFor(x.count, grain: elementwiseGrain) { range in
                    for i in range { op[i] = f.value(xp[i]) }
                }
            }
        }
        return Tensor(shape: shape, data: y, inputs: [self]) { out in
            var g = out.takeGradient()
            self.data.withUnsafeBufferPointer { x in
                y.withUnsafeBufferPointer { yb in
                    g.withUnsafeMutableBufferPointer { gb in
                        let xp = x.baseAddress!, yp = yb.baseAddress!, gp = gb.baseAddress!
                        ThreadPool.shared.parallelFor(gb.count, grain: elementwiseGrain) { range in
                            for i in range { gp[i] *= f.slope(xp[i], yp[i]) }
                        }
                    }
                }
            }
            self.accumulateGradient(g)
        }
    }

    public func relu() -> Tensor { pointwise(LeakyReLU(negativeSlope: 0)) }
    public func leakyRelu(_ slope: Float) -> Tensor { pointwise(LeakyReLU(negativeSlope: slope)) }
    public func sigmoid() -> Tensor { pointwise(Sigmoid()) }
    public func tanh() -> Tensor { pointwise(Tanh()) }
    public func exp() -> Tensor { pointwise(Exponential()) }

    /// self · factor (a constant).
    public func scaled(by factor: Float) -> Tensor { pointwise(Scale(factor: factor)) }

    /// Elementwise sum of two tensors of one shape.
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        precondition(a.shape == b.shape, "cannot add \(a.shape) and \(b.shape)")
        var y = a.data
        b.data.withUnsafeBufferPointer { bv in for i in 0..<y.count { y[i] += bv[i] } }
        return Tensor(shape: a.shape, data: y, inputs: [a, b]) { out in
            if a.requiresGradient { a.accumulateGradient(out.gradient) }
            if b.requiresGradient { b.accumulateGradient(out.gradient) }
        }
    }

    /// Elementwise product of two tensors of one shape.
    public static func * (a: Tensor, b: Tensor) -> Tensor {
        precondition(a.shape == b.shape, "cannot multiply \(a.shape) and \(b.shape)")
        var y = a.data
        b.data.withUnsafeBufferPointer { bv in for i in 0..<y.count { y[i] *= bv[i] } }
        return Tensor(shape: a.shape, data: y, inputs: [a, b]) { out in
            if a.requiresGradient {
                var g = out.gradient
                for i in 0..<g.count { g[i] *= b.data[i] }
                a.accumulateGradient(g)
            }
            if b.requiresGradient {
                var g = out.gradient
                for i in 0..<g.count { g[i] *= a.data[i] }
                b.accumulateGradient(g)
            }
        }
    }

    /// Σ of every element, as a scalar.
    public func sum() -> Tensor {
        let total = data.reduce(Float(0), +)
        return Tensor(shape: [1], data: [total], inputs: [self]) { out in
            self.accumulateGradient([Float](repeating: out.gradient[0], count: self.count))
        }
    }

    /// Mean of every element, as a scalar.
    public func mean() -> Tensor { sum().scaled(by: 1 / Float(count)) }
}

@inline(__always)
func sigmoidScalar(_ x: Float) -> Float {
    x >= 0 ? 1 / (1 + Foundation.exp(-x)) : Foundation.exp(x) / (1 + Foundation.exp(x))
}

/// log(1 + e^(−|x|)), the stable tail of the logistic losses.
@inline(__always)
func softplusOfNegativeMagnitude(_ x: Float) -> Float { log1p(Foundation.exp(-abs(x))) }

/// y = f(x) with dy/dx from x and y, for `Tensor.pointwise`.
protocol PointwiseFunction {
    func value(_ x: Float) -> Float
    func slope(_ x: Float, _ y: Float) -> Float
}

struct LeakyReLU: PointwiseFunction {
    let negativeSlope: Float
    @inline(__always) func value(_ x: Float) -> Float { x > 0 ? x : negativeSlope * x }
    @inline(__always) func slope(_ x: Float, _ y: Float) -> Float { x > 0 ? 1 : negativeSlope }
}

struct Sigmoid: PointwiseFunction {
    @inline(__always) func value(_ x: Float) -> Float { sigmoidScalar(x) }
    @inline(__always) func slope(_ x: Float, _ y: Float) -> Float { y * (1 - y) }
}

struct Tanh: PointwiseFunction {
    @inline(__always) func value(_ x: Float) -> Float { Foundation.tanh(x) }
    @inline(__always) func slope(_ x: Float, _ y: Float) -> Float { 1 - y * y }
}

struct Exponential: PointwiseFunction {
    @inline(__always) func value(_ x: Float) -> Float { Foundation.exp(x) }
    @inline(__always) func slope(_ x: Float, _ y: Float) -> Float { y }
}

struct Scale: PointwiseFunction {
    let factor: Float
    @inline(__always) func value(_ x: Float) -> Float { x * factor }
    @inline(__always) func slope(_ x: Float, _ y: Float) -> Float { factor }
}
