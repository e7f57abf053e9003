import Foundation
import KilnAutograd
import KilnFormats

/// Fashion-MNIST (28×28 grayscale, 10 classes) from the four IDX files of Debian's
/// `dataset-fashion-mnist` package, plain or gzipped.
public struct FashionMNIST: Sendable {
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"
    public static let side = 28
    public static let pixelsPerImage = 784

    public let images: [UInt8]  // count × 784
    public let labels: [UInt8]
    public var count: Int { labels.count }

    public enum Split: String, Sendable { case train, test }

    public init(directory: String = defaultDirectory, split: Split) throws {
        let stem = split == .train ? "train" : "t10k"
        func find(_ name: String) throws -> String {
            for candidate in [name, name + ".gz"] {
                let path = (directory as NSString).appendingPathComponent(candidate)
                if FileManager.default.fileExists(atPath: path) { return path }
            }
            throw IDXArray.Failure(description: "\(name)[.gz] not found in \(directory) (install Debian's dataset-fashion-mnist, or pass --data)")
        }
        let imageFile = try IDXArray(path: try find("\(stem)-images-idx3-ubyte"))
        let labelFile = try IDXArray(path: try find("\(stem)-labels-idx1-ubyte"))
        guard imageFile.dimensions.count == 3, imageFile.dimensions[1] == 28, imageFile.dimensions[2] == 28 else {
            throw IDXArray.Failure(description: "\(stem) images must be N×28×28, got \(imageFile.dimensions)")
        }
        guard labelFile.dimensions == [imageFile.dimensions[0]] else {
            throw IDXArray.Failure(description: "\(stem): \(imageFile.dimensions[0]) images but labels of shape \(labelFile.dimensions)")
        }
        if let bad = labelFile.values.first(where: { $0 > 9 }) {
            throw IDXArray.Failure(description: "\(stem) labels must be 0…9, found \(bad)")
        }
        images = imageFile.values
        labels = labelFile.values
    }

    /// The batches of one epoch: a seeded permutation, cut into full batches (the last partial
    /// batch is dropped).
    public func epochBatches(batchSize: Int, seed: UInt64, epoch: Int) -> [[Int]] {
        var order = Array(0..<count)
        var random = RandomSource(seed: seed, stream: 1, UInt64(epoch))
        order.shuffle(using: &random)
        return stride(from: 0, to: count - batchSize + 1, by: batchSize).map { Array(order[$0..<($0 + batchSize)]) }
    }

    /// The images at `indices` as a [N, 1, 28, 28] tensor of pixel/255 · scale + shift.
    public func batch(_ indices: [Int], scale: Float = 1 / 255, shift: Float = 0) -> Tensor {
        var data = [Float](repeating: 0, count: indices.count * Self.pixelsPerImage)
        for (row, index) in indices.enumerated() {
            let base = index * Self.pixelsPerImage
            for p in 0..<Self.pixelsPerImage { data[row * Self.pixelsPerImage + p] = Float(images[base + p]) * scale + shift }
        }
        return Tensor(shape: [indices.count, 1, 28, 28], data: data)
    }
}
