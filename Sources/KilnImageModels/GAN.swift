import Foundation
import KilnAutograd
import KilnLayers

/// The DCGAN-style generator with a self-attention block at 14×14: z(64) → fc 128·7·7 + BN + ReLU
/// → transposed conv 64 + BN + ReLU → attention → transposed conv 1 → tanh.
public struct Generator: CompositeModule {
    public static let latentSize = 64
    public let fc: Linear
    public let bn0: BatchNorm2D
    public let deconv1: Convolution2D
    public let bn1: BatchNorm2D
    public let attention: SelfAttention2D
    public let deconv2: Convolution2D

    public init(source: ParameterSource) throws {
        let i = WeightInitialization.dcgan, gamma = Initialization.normal(mean: 1, standardDeviation: 0.02)
        fc = try Linear(Self.latentSize, 6272, bias: false, name: "fc", source: source, initialization: i)
        bn0 = try BatchNorm2D(128, name: "bn0", source: source, initialization: gamma)
        deconv1 = try Convolution2D(128, 64, kernel: 4, stride: 2, padding: 1, inputSize: 7, transposed: true, bias: false, name: "deconv1", source: source, initialization: i)
        bn1 = try BatchNorm2D(64, name: "bn1", source: source, initialization: gamma)
        attention = try SelfAttention2D(channels: 64, name: "attn", source: source, initialization: i)
        deconv2 = try Convolution2D(64, 1, kernel: 4, stride: 2, padding: 1, inputSize: 14, transposed: true, name: "deconv2", source: source, initialization: i)
    }

    /// Images in [−1, 1], [N, 1, 28, 28].
    public func callAsFunction(_ z: Tensor, training: Bool) -> Tensor {
        let h0 = bn0(fc(z).reshaped([z.batchCount, 128, 7, 7]), training: training).relu()
        let h1 = bn1(deconv1(h0), training: training).relu()
        return deconv2(attention(h1)).tanh()
    }

    /// Images in [0, 1] from latent vectors [N, 64], batch norm on its running statistics.
    public func sample(_ z: Tensor) -> [Float] {
        GradientRecording.withoutRecording { self(z, training: false).data.map { ($0 + 1) / 2 } }
    }

    public var parts: [(name: String, module: any Module)] {
        [("fc", fc), ("bn0", bn0), ("deconv1", deconv1), ("bn1", bn1), ("attn", attention), ("deconv2", deconv2)]
    }
}

/// The discriminator: conv 64 (LeakyReLU 0.2) → conv 128 + BN + LeakyReLU → fc 1 (a logit).
public struct Discriminator: CompositeModule {
    public let conv1, conv2: Convolution2D
    public let bn2: BatchNorm2D
    public let fc: Linear

    public init(source: ParameterSource) throws {
        let i = WeightInitialization.dcgan
        conv1 = try Convolution2D(1, 64, kernel: 4, stride: 2, padding: 1, inputSize: 28, name: "conv1", source: source, initialization: i)
        conv2 = try Convolution2D(64, 128, kernel: 4, stride: 2, padding: 1, inputSize: 14, bias: false, name: "conv2", source: source, initialization: i)
        bn2 = try BatchNorm2D(128, name: "bn2", source: source, initialization: .normal(mean: 1, standardDeviation: 0.02))
        fc = try Linear(6272, 1, name: "fc", source: source, initialization: i)
    }

    /// Logits [N, 1] for images in [−1, 1]; batch norm always on the batch's statistics (training).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let h = bn2(conv2(conv1(x).leakyRelu(0.2)), training: true).leakyRelu(0.2)
        return fc(h.reshaped([x.batchCount, 6272]))
    }

    public var parts: [(name: String, module: any Module)] { [("conv1", conv1), ("conv2", conv2), ("bn2", bn2), ("fc", fc)] }
}

/// One GAN training step's losses and discriminator outputs.
public struct GANStepResult: Sendable {
    public let discriminatorLoss, generatorLoss, realScore, fakeScore: Float
}

/// The GAN's training step: D on real and (detached) fake batches in two passes, then the
/// non-saturating G loss through a third D pass; each network has its own Adam.
public struct GANTrainer {
    public let generator: Generator
    public let discriminator: Discriminator
    public let generatorOptimizer: Adam
    public let discriminatorOptimizer: Adam

    public init(generator: Generator, discriminator: Discriminator) {
        self.generator = generator
        self.discriminator = discriminator
        generatorOptimizer = Adam(generator.parameters, learningRate: 2e-4, beta1: 0.5, beta2: 0.999)
        discriminatorOptimizer = Adam(discriminator.parameters, learningRate: 2e-4, beta1: 0.5, beta2: 0.999)
    }

    /// `real`: images in [−1, 1]; `noise`: N·64 standard normal values.
    public func step(real: Tensor, noise: [Float]) -> GANStepResult {
        let n = real.batchCount
        let fake = generator(Tensor(shape: [n, Generator.latentSize], data: noise), training: true)
        discriminatorOptimizer.zeroGradients()
        let realLogits = discriminator(real), fakeLogits = discriminator(fake.detached())
        let lossD = realLogits.binaryCrossEntropy(logitsAgainst: 1) + fakeLogits.binaryCrossEntropy(logitsAgainst: 0)
        lossD.backward()
        discriminatorOptimizer.update()
        generatorOptimizer.zeroGradients()
        // The G step needs gradients through D but not for D's weights (they would be discarded
        // before D's next update): D's parameters are frozen while it runs.
        for p in discriminator.parameters { p.tensor.requiresGradient = false }
        let lossG = discriminator(fake).binaryCrossEntropy(logitsAgainst: 1)
        lossG.backward()
        for p in discriminator.parameters { p.tensor.requiresGradient = true }
        generatorOptimizer.update()
        func meanSigmoid(_ t: Tensor) -> Float { t.data.reduce(0) { $0 + 1 / (1 + Foundation.exp(-$1)) } / Float(t.count) }
        return GANStepResult(discriminatorLoss: lossD.data[0], generatorLoss: lossG.data[0],
                             realScore: meanSigmoid(realLogits), fakeScore: meanSigmoid(fakeLogits))
    }
}
