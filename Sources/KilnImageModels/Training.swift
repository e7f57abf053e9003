import Foundation
import KilnAutograd
import KilnFormats
import KilnKernels
import KilnLayers

/// What `kiln train` was asked to do.
public struct TrainingOptions: Sendable {
    public var kind: ImageModelKind
    public var epochs: Int
    public var batchSize: Int
    public var seed: UInt64
    public var outputDirectory: String
    public var dataDirectory: String
    /// Stop each epoch after this many steps (short runs for tests and smoke checks).
    public var stepsPerEpoch: Int?

    public init(kind: ImageModelKind, epochs: Int, batchSize: Int, seed: UInt64, outputDirectory: String,
                dataDirectory: String = FashionMNIST.defaultDirectory, stepsPerEpoch: Int? = nil) {
        (self.kind, self.epochs, self.batchSize, self.seed) = (kind, epochs, batchSize, seed)
        (self.outputDirectory, self.dataDirectory, self.stepsPerEpoch) = (outputDirectory, dataDirectory, stepsPerEpoch)
    }
}

/// One optimisation step's numbers, for the progress bar and the loss log.
public struct TrainingStep: Sendable {
    public let epoch, step, stepsInEpoch: Int
    /// "loss" for the VAE (with "reconstruction", "kl"); "loss_d", "loss_g", "d_real", "d_fake" for the GAN.
    public let values: [(String, Float)]
}

/// An epoch's end: where its checkpoint and sample grid went, and its evaluation if any.
public struct EpochSummary: Sendable {
    public let epoch: Int
    public let imagesPerSecond: Double
    public let checkpoint: String
    public let sampleGrid: String
    /// VAE: the test set's negative ELBO per image (nats).
    public let testNegativeELBO: Double?
}

public struct TrainingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Trains a VAE or GAN on Fashion-MNIST, checkpointing after every epoch.
///
/// The output folder holds the sampling weights (`vae.safetensors` or `gan_G.safetensors`, plus
/// `gan_D.safetensors`), `config.json`, `training.safetensors` (every parameter, batch-norm state and
/// Adam moment, written first, atomically: it alone decides where `--resume` continues),
/// `train_log.jsonl` (one line per step) and `samples/epoch-NNN.png`. Every random draw comes from
/// (seed, epoch, step), so a resumed run continues exactly as an uninterrupted one would.
public final class ImageTrainer {
    public let options: TrainingOptions
    public private(set) var completedEpochs = 0
    private let train: FashionMNIST
    private let test: FashionMNIST?
    private var vae: VAE?
    private var vaeOptimizer: Adam?
    private var gan: GANTrainer?
    private var path: (String) -> String

    public init(options: TrainingOptions, resume: Bool) throws {
        guard options.epochs > 0, options.epochs <= 10_000 else { throw TrainingError("--epochs must be 1…10000, got \(options.epochs)") }
        guard options.batchSize >= 2, options.batchSize <= 60_000 else {
            throw TrainingError("--batch must be 2…60000, got \(options.batchSize)")
        }
        self.options = options
        let directory = options.outputDirectory
        path = { (directory as NSString).appendingPathComponent($0) }
        train = try FashionMNIST(directory: options.dataDirectory, split: .train)
        test = options.kind == .vae ? try FashionMNIST(directory: options.dataDirectory, split: .test) : nil
        guard train.count >= options.batchSize else { throw TrainingError("batch \(options.batchSize) exceeds the \(train.count) training images") }
        let statePath = path("training.safetensors")
        if resume {
            guard FileManager.default.fileExists(atPath: statePath) else {
                throw TrainingError("--resume: no \(statePath) to resume from")
            }
            let state = try CheckpointParameters(paths: [statePath])
            guard state.metadata["model"] == options.kind.rawValue else {
                throw TrainingError("\(statePath) is a \(state.metadata["model"] ?? "unknown") training state, not \(options.kind.rawValue)")
            }
            guard let epoch = state.metadata["epoch"].flatMap(Int.init), let batch = state.metadata["batch"].flatMap(Int.init),
                  let seed = state.metadata["seed"].flatMap(UInt64.init) else {
                throw TrainingError("\(statePath) lacks its epoch, batch and seed")
            }
            guard batch == options.batchSize, seed == options.seed else {
                throw TrainingError("\(statePath) was trained with batch \(batch) and seed \(seed); resume with the same settings")
            }
            completedEpochs = epoch
            try build(state: state)
            try state.finish()
        } else {
            try build(state: nil)
        }
    }

    private func build(state: CheckpointParameters?) throws {
        let fresh = RandomInitialization(seed: options.seed)
        switch options.kind {
        case .vae:
            let model = try VAE(source: state.map { scopedSource($0, "model.") } ?? fresh)
            let optimizer = Adam(model.parameters, learningRate: 1e-3)
            if let state { try optimizer.restore(from: state, prefix: "adam.", step: Int(state.metadata["adam_step"] ?? "") ?? 0) }
            (vae, vaeOptimizer) = (model, optimizer)
        case .gan:
            let g = try Generator(source: state.map { scopedSource($0, "G.") } ?? fresh)
            let d = try Discriminator(source: state.map { scopedSource($0, "D.") } ?? fresh)
            let trainer = GANTrainer(generator: g, discriminator: d)
            if let state {
                try trainer.generatorOptimizer.restore(from: state, prefix: "adam_G.", step: Int(state.metadata["adam_step"] ?? "") ?? 0)
                try trainer.discriminatorOptimizer.restore(from: state, prefix: "adam_D.", step: Int(state.metadata["adam_step"] ?? "") ?? 0)
            }
            gan = trainer
        }
    }

    /// Runs the remaining epochs. `step` sees every step; `epochDone` every finished epoch.
    public func run(step: (TrainingStep) -> Void, epochDone: (EpochSummary) throws -> Void) throws {
        try FileManager.default.createDirectory(atPath: path("samples"), withIntermediateDirectories: true)
        var log = try TrainingLog(path: path("train_log.jsonl"), keepingEpochsThrough: completedEpochs)
        while completedEpochs < options.epochs {
            let epoch = completedEpochs + 1
            var batches = train.epochBatches(batchSize: options.batchSize, seed: options.seed, epoch: epoch)
            if let limit = options.stepsPerEpoch { batches = Array(batches.prefix(limit)) }
            let start = monotonicNanoseconds()
            for (index, batch) in batches.enumerated() {
                let values = self.step(batch, epoch: epoch, index: index)
                guard values.allSatisfy({ $0.1.isFinite }) else {
                    throw TrainingError("training diverged at epoch \(epoch) step \(index + 1): \(values.map { "\($0.0) \($0.1)" }.joined(separator: ", "))")
                }
                let record = TrainingStep(epoch: epoch, step: index + 1, stepsInEpoch: batches.count, values: values)
                try log.append(record)
                step(record)
            }
            let seconds = Double(monotonicNanoseconds() - start) * 1e-9
            let evaluation = try vae.map { model in try testNegativeELBO(model) }
            completedEpochs = epoch
            try saveCheckpoint(testNegativeELBO: evaluation)
            let grid = path(String(format: "samples/epoch-%03d.png", epoch))
            try writeSampleGrid(to: grid)
            try epochDone(EpochSummary(epoch: epoch, imagesPerSecond: Double(batches.count * options.batchSize) / max(seconds, 1e-9),
                                       checkpoint: options.outputDirectory, sampleGrid: grid, testNegativeELBO: evaluation))
        }
    }

    /// One optimisation step on the training images at `batch` (indices); its noise comes from
    /// (seed, epoch, index). Returns the step's losses by name.
    public func step(_ batch: [Int], epoch: Int, index: Int) -> [(String, Float)] {
        var random = RandomSource(seed: options.seed, stream: 2, UInt64(epoch), UInt64(index))
        if let vae, let optimizer = vaeOptimizer {
            let x = train.batch(batch)
            optimizer.zeroGradients()
            let (loss, reconstruction, kl) = vae.loss(x, noise: random.normal(batch.count * VAE.latentSize))
            loss.backward()
            optimizer.update()
            return [("loss", loss.data[0]), ("reconstruction", reconstruction), ("kl", kl)]
        }
        let r = gan!.step(real: train.batch(batch, scale: 1 / 127.5, shift: -1), noise: random.normal(batch.count * Generator.latentSize))
        return [("loss_d", r.discriminatorLoss), ("loss_g", r.generatorLoss), ("d_real", r.realScore), ("d_fake", r.fakeScore)]
    }

    /// Images in [0, 1] from the model being trained (decoder or generator in eval mode).
    public func sample(latents: Tensor) -> [Float] { vae?.sample(latents) ?? gan!.generator.sample(latents) }

    /// The batches of an epoch, as `run` takes them.
    public func batches(epoch: Int) -> [[Int]] { train.epochBatches(batchSize: options.batchSize, seed: options.seed, epoch: epoch) }

    /// The VAE's negative ELBO per image on the 10,000 test images, one ε draw each (seed 1234).
    public func testNegativeELBO(_ model: VAE) throws -> Double {
        guard let test else { return .nan }
        var total: Double = 0
        var random = RandomSource(seed: 1234)
        for start in stride(from: 0, to: test.count, by: 500) {
            let indices = Array(start..<min(test.count, start + 500))
            let x = test.batch(indices)
            let loss = GradientRecording.withoutRecording { model.loss(x, noise: random.normal(indices.count * VAE.latentSize)) }
            total += Double(loss.total.data[0]) * Double(indices.count)
        }
        return total / Double(test.count)
    }

    private func saveCheckpoint(testNegativeELBO: Double?) throws {
        let metadata = ["model": options.kind.rawValue, "epoch": String(completedEpochs), "batch": String(options.batchSize),
                        "seed": String(options.seed), "format": "kiln-image-checkpoint-1"]
        var state: [SafetensorsWriter.Entry] = []
        var stateMetadata = metadata
        if let vae, let optimizer = vaeOptimizer {
            state = vae.safetensorsEntries(prefix: "model.") + optimizer.stateEntries(prefix: "adam.")
            stateMetadata["adam_step"] = String(optimizer.step)
        } else if let gan {
            state = gan.generator.safetensorsEntries(prefix: "G.") + gan.discriminator.safetensorsEntries(prefix: "D.")
                + gan.generatorOptimizer.stateEntries(prefix: "adam_G.") + gan.discriminatorOptimizer.stateEntries(prefix: "adam_D.")
            stateMetadata["adam_step"] = String(gan.generatorOptimizer.step)
        }
        // The training state first: once it is renamed into place, resume starts from this epoch.
        try SafetensorsWriter.write(state, metadata: stateMetadata, to: path("training.safetensors"))
        if let vae {
            try SafetensorsWriter.write(vae.safetensorsEntries(), metadata: metadata, to: path("vae.safetensors"))
        } else if let gan {
            try SafetensorsWriter.write(gan.generator.safetensorsEntries(), metadata: metadata, to: path("gan_G.safetensors"))
            try SafetensorsWriter.write(gan.discriminator.safetensorsEntries(), metadata: metadata, to: path("gan_D.safetensors"))
        }
        var config: [String: Any] = [
            "model": options.kind.rawValue, "epochs": completedEpochs, "batch_size": options.batchSize, "seed": options.seed,
            "latent_size": options.kind.latentSize, "image_size": [1, 28, 28], "learning_rate": options.kind.learningRate,
            "weights": options.kind.weightsFile, "architecture": "Kiln reference architectures (VAE with attention at 7x7; DCGAN with attention at 14x14)",
        ]
        if let testNegativeELBO { config["test_negative_elbo"] = testNegativeELBO }
        try DurableFile.write(try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]), to: path("config.json"))
    }

    private func writeSampleGrid(to file: String) throws {
        // The same 64 latent vectors every epoch, so the grids show the model changing.
        var random = RandomSource(seed: options.seed, stream: 3)
        let z = Tensor(shape: [64, options.kind.latentSize], data: random.normal(64 * options.kind.latentSize))
        let images = vae?.sample(z) ?? gan!.generator.sample(z)
        let grid = ImageGrid.compose(ImageGrid.bytes(images), side: 28, columns: 8, rows: 8)
        let png = try PNGImage.encodeGray(width: grid.width, height: grid.height, pixels: grid.pixels,
                                          text: [("parameters", "model: \(options.kind.rawValue), epoch: \(completedEpochs), seed: \(options.seed), count: 64")])
        try DurableFile.write(png, to: file)
    }
}

/// A CheckpointParameters view under a prefix (training state files hold several modules).
private func scopedSource(_ source: CheckpointParameters, _ prefix: String) -> ParameterSource {
    PrefixedSource(base: source, prefix: prefix)
}

private final class PrefixedSource: ParameterSource {
    let base: CheckpointParameters, prefix: String
    init(base: CheckpointParameters, prefix: String) { (self.base, self.prefix) = (base, prefix) }
    func values(_ name: String, shape: [Int], initialization: Initialization) throws -> [Float] {
        try base.values(prefix + name, shape: shape, initialization: initialization)
    }
    func counter(_ name: String) -> Int { base.counter(prefix + name) }
}

/// The per-step loss log (JSON lines). Reopening for a resumed run drops the lines of epochs the
/// checkpoint does not contain, so the log always matches the weights.
struct TrainingLog {
    let path: String
    private let handle: FileHandle

    init(path: String, keepingEpochsThrough epoch: Int) throws {
        self.path = path
        var kept = ""
        if let existing = try? String(contentsOfFile: path, encoding: .utf8) {
            for line in existing.split(separator: "\n") {
                guard let data = line.data(using: .utf8),
                      let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                      let e = object["epoch"] as? Int, e <= epoch else { continue }
                kept += line + "\n"
            }
        }
        try DurableFile.write(Data(kept.utf8), to: path)
        guard let handle = FileHandle(forWritingAtPath: path) else { throw TrainingError("cannot append to \(path)") }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    mutating func append(_ step: TrainingStep) throws {
        var line = "{\"epoch\":\(step.epoch),\"step\":\(step.step)"
        for (name, value) in step.values { line += ",\"\(name)\":\(value)" }
        line += "}\n"
        try handle.write(contentsOf: Data(line.utf8))
    }
}

