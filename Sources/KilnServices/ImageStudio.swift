import Foundation
import KilnFormats
import KilnImageModels

/// Sampled images as PNG files, each carrying a tEXt "parameters" chunk (model, checkpoint
/// sha256, seed, count, index) so a picture says where it came from. `kiln sample` and the
/// server's `/v1/images/generations` both draw through it.
public struct ImageStudio {
    public static let side = 28
    public let sampler: ImageSampler
    public var kind: ImageModelKind { sampler.kind }

    public init(kind: ImageModelKind, directory: String) throws {
        sampler = try ImageSampler(kind: kind, directory: directory)
    }

    /// The `parameters` text of a batch of `count` images from `seed`.
    public func parameters(seed: UInt64, count: Int) -> String {
        "model: \(kind.rawValue), checkpoint sha256: \(sampler.checkpointDigest), seed: \(seed), count: \(count)"
    }

    /// Gray pixels of `count` images from `seed`, image after image (side × side each).
    public func pixels(count: Int, seed: UInt64) -> [UInt8] {
        ImageGrid.bytes(sampler.images(latents: sampler.latents(count: count, seed: seed)))
    }

    /// One PNG per image of `pixels`, the `index` of each appended to `parameters`.
    public static func separatePNGs(_ pixels: [UInt8], parameters: String) throws -> [Data] {
        let size = side * side
        return try stride(from: 0, to: pixels.count, by: size).map { start in
            try PNGImage.encodeGray(width: side, height: side, pixels: Array(pixels[start..<(start + size)]),
                                    text: [("parameters", parameters + ", index: \(start / size)")])
        }
    }

    /// `count` PNGs sampled from `seed`.
    public func pngs(count: Int, seed: UInt64) throws -> [Data] {
        try Self.separatePNGs(pixels(count: count, seed: seed), parameters: parameters(seed: seed, count: count))
    }
}
