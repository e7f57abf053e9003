import Foundation
import KilnAutograd
import KilnFormats
import KilnLayers

/// The two image generators Kiln trains.
public enum ImageModelKind: String, CaseIterable, Sendable {
    case vae, gan

    public var latentSize: Int { self == .vae ? VAE.latentSize : Generator.latentSize }
    /// The safetensors file that `kiln sample` reads (PyTorch's key names and layouts).
    public var weightsFile: String { self == .vae ? "vae.safetensors" : "gan_G.safetensors" }
    public var defaultBatchSize: Int { self == .vae ? 128 : 64 }
    public var learningRate: Float { self == .vae ? 1e-3 : 2e-4 }
}

/// A trained generator loaded for sampling: the VAE's decoder or the GAN's generator.
public struct ImageSampler {
    public let kind: ImageModelKind
    /// sha256 of the weights file, recorded in every PNG written from it.
    public let checkpointDigest: String
    private let vae: VAE?
    private let generator: Generator?

    public init(kind: ImageModelKind, directory: String) throws {
        let path = (directory as NSString).appendingPathComponent(kind.weightsFile)
        guard FileManager.default.fileExists(atPath: path) else {
            throw ParameterError("no \(kind.weightsFile) in \(directory): not a \(kind.rawValue) checkpoint (train one with `kiln train \(kind.rawValue)`)")
        }
        let source = try CheckpointParameters(paths: [path])
        if let declared = source.metadata["model"], declared != kind.rawValue {
            throw ParameterError("\(path) is a \(declared) checkpoint, not \(kind.rawValue)")
        }
        switch kind {
        case .vae: (vae, generator) = (try VAE(source: source), nil)
        case .gan: (vae, generator) = (nil, try Generator(source: source))
        }
        try source.finish()
        self.kind = kind
        checkpointDigest = try SHA256Digest.hex(ofFile: path)
    }

    /// Latent vectors for `count` images from `seed` (standard normal).
    public func latents(count: Int, seed: UInt64) -> [Float] {
        var random = RandomSource(seed: seed)
        return random.normal(count * kind.latentSize)
    }

    /// Images in [0, 1] (count × 784) for the given latent vectors, in chunks of 256.
    public func images(latents z: [Float]) -> [Float] {
        let n = z.count / kind.latentSize
        var out: [Float] = []
        out.reserveCapacity(n * 784)
        for start in stride(from: 0, to: n, by: 256) {
            let rows = min(256, n - start)
            let chunk = Tensor(shape: [rows, kind.latentSize], data: Array(z[(start * kind.latentSize)..<((start + rows) * kind.latentSize)]))
            out += vae?.sample(chunk) ?? generator!.sample(chunk)
        }
        return out
    }
}
