import KilnAutograd
import KilnLayers

/// The convolutional VAE (latent 16) with a self-attention block at 7×7 in the decoder, layer for
/// layer as Kiln's reference architecture: conv 1→32→64 (4×4, stride 2), μ and log σ² heads,
/// fc 16→64·7·7, attention, transposed convs 64→32→1, Bernoulli likelihood on gray values.
public struct VAE: CompositeModule {
    public static let latentSize = 16
    public static let modelName = "vae"
    public let conv1, conv2: Convolution2D
    public let fcMean, fcLogVariance, decoderFC: Linear
    public let attention: SelfAttention2D
    public let deconv1, deconv2: Convolution2D

    /// The VAE with parameters from `source` (fresh: U(±1/√fan_in) weights and biases, γ 0).
    public init(source: ParameterSource) throws {
        let i = WeightInitialization.uniformFanIn
        conv1 = try Convolution2D(1, 32, kernel: 4, stride: 2, padding: 1, inputSize: 28, name: "encoder.conv1", source: source, initialization: i)
        conv2 = try Convolution2D(32, 64, kernel: 4, stride: 2, padding: 1, inputSize: 14, name: "encoder.conv2", source: source, initialization: i)
        fcMean = try Linear(3136, Self.latentSize, name: "encoder.fc_mu", source: source, initialization: i)
        fcLogVariance = try Linear(3136, Self.latentSize, name: "encoder.fc_logvar", source: source, initialization: i)
        decoderFC = try Linear(Self.latentSize, 3136, name: "decoder.fc", source: source, initialization: i)
        attention = try SelfAttention2D(channels: 64, name: "decoder.attn", source: source, initialization: i)
        deconv1 = try Convolution2D(64, 32, kernel: 4, stride: 2, padding: 1, inputSize: 7, transposed: true, name: "decoder.deconv1", source: source, initialization: i)
        deconv2 = try Convolution2D(32, 1, kernel: 4, stride: 2, padding: 1, inputSize: 14, transposed: true, name: "decoder.deconv2", source: source, initialization: i)
    }

    /// μ and log σ² of q(z | x) for images in [0, 1], [N, 1, 28, 28].
    public func encode(_ x: Tensor) -> (mean: Tensor, logVariance: Tensor) {
        let h = conv2(conv1(x).relu()).relu().reshaped([x.batchCount, 3136])
        return (fcMean(h), fcLogVariance(h))
    }

    /// Pixel logits [N, 1, 28, 28] of p(x | z).
    public func decode(_ z: Tensor) -> Tensor {
        let h = decoderFC(z).relu().reshaped([z.batchCount, 64, 7, 7])
        return deconv2(deconv1(attention(h)).relu())
    }

    /// The negative ELBO per image (BCE summed over pixels + KL, averaged over the batch) with
    /// its two parts, for one draw of ε.
    public func loss(_ x: Tensor, noise: [Float]) -> (total: Tensor, reconstruction: Float, kl: Float) {
        let (mu, logvar) = encode(x)
        let logits = decode(reparameterize(mean: mu, logVariance: logvar, noise: noise))
        let n = Float(x.batchCount)
        let reconstruction = logits.binaryCrossEntropy(logitsAgainst: x.data, dividedBy: n)
        let kl = gaussianKLDivergence(mean: mu, logVariance: logvar, dividedBy: n)
        return (reconstruction + kl, reconstruction.data[0], kl.data[0])
    }

    /// Images (Bernoulli means in [0, 1]) for latent vectors [N, 16].
    public func sample(_ z: Tensor) -> [Float] {
        GradientRecording.withoutRecording { decode(z).sigmoid().data }
    }

    public var parts: [(name: String, module: any Module)] {
        [("encoder.conv1", conv1), ("encoder.conv2", conv2), ("encoder.fc_mu", fcMean), ("encoder.fc_logvar", fcLogVariance),
         ("decoder.fc", decoderFC), ("decoder.attn", attention), ("decoder.deconv1", deconv1), ("decoder.deconv2", deconv2)]
    }
}
