import Foundation
import KilnAutograd
import KilnKernels
import KilnTestSupport
import Testing

@Suite struct ClosedFormGradientTests {
    @Test func squareSumGradientIsTwiceTheInput() {
        let x = Tensor(shape: [3], data: [1, -2, 0.5], requiresGradient: true)
        (x * x).sum().backward()
        #expect(x.gradient == [2, -4, 1])
    }

    @Test func logisticLossAtZeroLogitIsHalfMinusTarget() {
        // d/dℓ BCE(ℓ, t) = σ(ℓ) − t; at ℓ = 0, σ = ½; mean over 2 elements halves it.
        let logits = Tensor(shape: [2], data: [0, 0], requiresGradient: true)
        let loss = logits.binaryCrossEntropy(logitsAgainst: [1, 0.25], dividedBy: 2)
        #expect(abs(loss.data[0] - Float(log(2.0))) < 1e-6)
        loss.backward()
        #expect(logits.gradient == [-0.25, 0.125])
    }

    @Test func standardNormalHasNoKL() {
        let mu = Tensor(zeros: [2, 3], requiresGradient: true), logvar = Tensor(zeros: [2, 3], requiresGradient: true)
        let kl = gaussianKLDivergence(mean: mu, logVariance: logvar, dividedBy: 2)
        #expect(kl.data == [0])
        kl.backward()
        #expect(mu.gradient.allSatisfy { $0 == 0 } && logvar.gradient.allSatisfy { $0 == 0 })
    }

    @Test func sharedInputCollectsBothPaths() {
        // y = x·x + x → dy/dx = 2x + 1, the input reached along two paths.
        let x = Tensor(shape: [2], data: [3, -1], requiresGradient: true)
        (x * x + x).sum().backward()
        #expect(x.gradient == [7, -1])
    }

    @Test func inferenceRecordsNothing() {
        let w = Tensor(shape: [2], data: [1, 2], requiresGradient: true)
        let y = GradientRecording.withoutRecording { (w * w).relu() }
        #expect(!y.requiresGradient)
        let plain = Tensor(shape: [2], data: [1, 2]) * Tensor(shape: [2], data: [3, 4])
        #expect(!plain.requiresGradient)
    }
}

@Suite struct FiniteDifferenceTests {
    @Test func elementwise() {
        var rng = SeededGenerator(seed: 1)
        // Inputs kept away from ReLU's kink so the differences see one side only.
        let x = Tensor(shape: [4, 5], data: rng.floats(20).map { $0 < 0 ? $0 - 0.1 : $0 + 0.1 }, requiresGradient: true)
        let z = parameter([4, 5], &rng)
        #expect(gradientError([x]) { $0[0].relu() } < 1e-3)
        #expect(gradientError([x]) { $0[0].leakyRelu(0.2) } < 1e-3)
        #expect(gradientError([x]) { $0[0].sigmoid() } < 1e-3)
        #expect(gradientError([x]) { $0[0].tanh() } < 1e-3)
        #expect(gradientError([x]) { $0[0].exp() } < 1e-3)
        #expect(gradientError([x, z]) { $0[0] * $0[1] + $0[1] } < 1e-3)
        #expect(gradientError([x]) { $0[0].reshaped([20]).scaled(by: 3).mean() } < 1e-3)
    }

    @Test func linear() {
        var rng = SeededGenerator(seed: 2)
        let x = parameter([6, 5], &rng), w = parameter([3, 5], &rng), b = parameter([3], &rng)
        #expect(gradientError([x, w, b]) { $0[0].linear(weight: $0[1], bias: $0[2]) } < 1e-3)
    }

    @Test(arguments: [false, true])
    func convolution(transposed: Bool) {
        var rng = SeededGenerator(seed: 3)
        let g = transposed
            ? ConvolutionGeometry.transposed(inputChannels: 3, outputChannels: 2, inputHeight: 4, inputWidth: 4, kernelHeight: 4, kernelWidth: 4, stride: 2, padding: 1)
            : ConvolutionGeometry.convolution(inputChannels: 3, outputChannels: 2, inputHeight: 6, inputWidth: 6, kernelHeight: 4, kernelWidth: 4, stride: 2, padding: 1)
        let x = parameter([2, 3, g.inputHeight, g.inputWidth], &rng), w = parameter([g.weightSize], &rng, scale: 0.3), b = parameter([2], &rng)
        #expect(gradientError([x, w, b]) { $0[0].convolution(g, weight: $0[1], bias: $0[2]) } < 1e-3)
    }

    @Test(arguments: [true, false])
    func batchNorm(training: Bool) {
        var rng = SeededGenerator(seed: 4)
        let x = parameter([3, 2, 2, 3], &rng), gamma = parameter([2], &rng), beta = parameter([2], &rng)
        let running = RunningStatistics(channels: 2)
        running.mean = [0.1, -0.2]
        running.variance = [0.5, 2]
        let error = gradientError([x, gamma, beta]) {
            let stats = RunningStatistics(channels: 2)
            (stats.mean, stats.variance) = (running.mean, running.variance)
            return $0[0].batchNorm(weight: $0[1], bias: $0[2], running: stats, training: training)
        }
        #expect(error < 2e-3)
    }

    @Test func batchNormTrainingStatistics() {
        // Channel values 1, 2, 3, 4: mean 2.5, biased variance 1.25, unbiased 5/3.
        let x = Tensor(shape: [2, 1, 1, 2], data: [1, 2, 3, 4])
        let stats = RunningStatistics(channels: 1)
        let y = x.batchNorm(weight: Tensor(shape: [1], data: [1]), bias: Tensor(shape: [1], data: [0]), running: stats, training: true)
        let s = Float((1.25 + 1e-5).squareRoot())
        #expect(maxError(y.data, [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s], floor: 1) < 1e-6)
        #expect(abs(stats.mean[0] - 0.25) < 1e-7 && abs(stats.variance[0] - (0.9 + 0.1 * 5 / 3)) < 1e-6)
    }

    @Test func losses() {
        var rng = SeededGenerator(seed: 5)
        let logits = parameter([2, 8], &rng, scale: 3)
        let targets = rng.floats(16, in: 0...1)
        #expect(gradientError([logits]) { $0[0].binaryCrossEntropy(logitsAgainst: targets, dividedBy: 2) } < 1e-3)
        #expect(gradientError([logits]) { $0[0].binaryCrossEntropy(logitsAgainst: 1) } < 1e-3)
        let mu = parameter([2, 4], &rng), logvar = parameter([2, 4], &rng)
        let noise = rng.normals(8)
        #expect(gradientError([mu, logvar]) { gaussianKLDivergence(mean: $0[0], logVariance: $0[1], dividedBy: 2) } < 1e-3)
        #expect(gradientError([mu, logvar]) { reparameterize(mean: $0[0], logVariance: $0[1], noise: noise) } < 1e-3)
    }
}
