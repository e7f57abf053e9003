import Foundation
import KilnAutograd
import KilnFormats
import KilnImageModels
import KilnLayers
import KilnTestSupport
import Testing

@Suite struct AdamTests {
    @Test func firstStepMovesByTheLearningRate() {
        // After one step m̂ = g and v̂ = g², so p moves by lr·g/(|g| + ε).
        let p = Tensor(shape: [2], data: [1, -1], requiresGradient: true)
        let adam = Adam([("p", p)], learningRate: 1e-3)
        p.gradient = [0.5, -2]
        adam.update()
        #expect(abs(p.data[0] - (1 - 1e-3 * 0.5 / (0.5 + 1e-8))) < 1e-7)
        #expect(abs(p.data[1] - (-1 + 1e-3 * 2 / (2 + 1e-8))) < 1e-7)
    }

    @Test func secondStepMatchesHandComputation() {
        let p = Tensor(shape: [1], data: [0], requiresGradient: true)
        let adam = Adam([("p", p)], learningRate: 0.1, beta1: 0.5, beta2: 0.9)
        p.gradient = [1]
        adam.update()
        p.gradient = [3]
        adam.update()
        // m = 0.5·0.5 + 0.5·3 = 1.75, v = 0.9·0.1 + 0.1·9 = 0.99; m̂ = 1.75/0.75, v̂ = 0.99/0.19.
        let first = -0.1 * 1.0 / (1.0 + 1e-8)
        let second = -0.1 * (1.75 / 0.75) / ((0.99 / 0.19).squareRoot() + 1e-8)
        #expect(abs(Double(p.data[0]) - (first + second)) < 1e-6)
    }
}

@Suite struct ModelTests {
    @Test func parameterCountsMatchTheReference() throws {
        let vae = try VAE(source: RandomInitialization(seed: 1))
        #expect(vae.parameters.reduce(0) { $0 + $1.tensor.count } == 225_586)
        let g = try Generator(source: RandomInitialization(seed: 1)), d = try Discriminator(source: RandomInitialization(seed: 1))
        #expect(g.parameters.reduce(0) { $0 + $1.tensor.count } == 539_090)
        #expect(d.parameters.reduce(0) { $0 + $1.tensor.count } == 138_689)
        #expect(g.parameters.map(\.name).contains("attn.gamma") && vae.parameters.map(\.name).contains("decoder.attn.q.weight"))
    }

    @Test func checkpointLoadingIsStrict() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let vae = try VAE(source: RandomInitialization(seed: 2))
        let good = folder.appendingPathComponent("vae.safetensors").path
        try SafetensorsWriter.write(vae.safetensorsEntries(), metadata: ["model": "vae"], to: good)
        let loaded = try CheckpointParameters(paths: [good])
        let copy = try VAE(source: loaded)
        try loaded.finish()
        #expect(zip(copy.parameters, vae.parameters).allSatisfy { $0.tensor.data == $1.tensor.data })

        // A missing tensor, a mis-shaped tensor, and an extra tensor are each refused by name.
        var entries = vae.safetensorsEntries()
        let missing = folder.appendingPathComponent("missing.safetensors").path
        try SafetensorsWriter.write(entries.filter { $0.name != "decoder.attn.gamma" }, to: missing)
        #expect(throws: ParameterError("\(missing) has no tensor decoder.attn.gamma: not a checkpoint of this model")) {
            try VAE(source: CheckpointParameters(paths: [missing]))
        }
        let index = entries.firstIndex { $0.name == "encoder.fc_mu.bias" }!
        entries[index] = SafetensorsWriter.Entry(name: "encoder.fc_mu.bias", dtype: .f32, shape: [8], bytes: Data(count: 32))
        let misshaped = folder.appendingPathComponent("misshaped.safetensors").path
        try SafetensorsWriter.write(entries, to: misshaped)
        #expect(throws: ParameterError("\(misshaped): encoder.fc_mu.bias has shape [8], this model needs [16]")) {
            try VAE(source: CheckpointParameters(paths: [misshaped]))
        }
        let extra = folder.appendingPathComponent("extra.safetensors").path
        try SafetensorsWriter.write(vae.safetensorsEntries() + [.init(name: "fc.weight", dtype: .f32, shape: [1], bytes: Data(count: 4))], to: extra)
        let source = try CheckpointParameters(paths: [extra])
        _ = try VAE(source: source)
        #expect(throws: ParameterError("\(extra) holds tensors this model does not have: fc.weight")) { try source.finish() }
        // The GAN generator cannot load VAE weights.
        #expect(throws: ParameterError.self) { try ImageSampler(kind: .gan, directory: folder.path) }
    }

    @Test func gridLayoutMatchesTheJudge() {
        // Two 2×2 tiles in a 2×1 grid with padding 1: width 2·3+1, height 1·3+1.
        let grid = ImageGrid.compose([1, 2, 3, 4, 5, 6, 7, 8], side: 2, columns: 2, rows: 1, padding: 1)
        #expect(grid.width == 7 && grid.height == 4)
        #expect(grid.pixels == [0, 0, 0, 0, 0, 0, 0,
                                0, 1, 2, 0, 5, 6, 0,
                                0, 3, 4, 0, 7, 8, 0,
                                0, 0, 0, 0, 0, 0, 0])
        #expect(ImageGrid.bytes([-1, 0, 0.5, 1, 2, .nan]) == [0, 0, 128, 255, 255, 0])
    }

    @Test func sphericalPathEndsAtBothPoints() {
        let a: [Float] = [1, 0, 0], b: [Float] = [0, 2, 0]
        let path = LatentPath.spherical(from: a, to: b, steps: 3)
        #expect(maxError(Array(path[0..<3]), a, floor: 1) < 1e-6 && maxError(Array(path[6..<9]), b, floor: 1) < 1e-6)
        // Halfway: 45° between them, length 1.5.
        #expect(maxError(Array(path[3..<6]), [1.5 * 0.70710678, 1.5 * 0.70710678, 0], floor: 1) < 1e-6)
    }
}

/// Training on the real dataset (installed by the setup script): a short run resumed from its
/// checkpoint ends bit-identical to an uninterrupted run.
@Suite(.serialized) struct TrainingTests {
    static var dataReady: Bool {
        let ok = FileManager.default.fileExists(atPath: FashionMNIST.defaultDirectory + "/train-images-idx3-ubyte.gz")
        if !ok && Fixtures.isCI { Issue.record("dataset-fashion-mnist is not installed") }
        return ok
    }

    @Test func datasetHeadersAndBatches() throws {
        guard Self.dataReady else { return }
        let train = try FashionMNIST(split: .train)
        #expect(train.count == 60_000 && train.images.count == 60_000 * 784)
        let batches = train.epochBatches(batchSize: 128, seed: 0, epoch: 1)
        #expect(batches.count == 468 && batches.allSatisfy { $0.count == 128 })
        #expect(Set(batches.joined()).count == 468 * 128)
        #expect(batches != train.epochBatches(batchSize: 128, seed: 0, epoch: 2))
    }

    @Test(arguments: [ImageModelKind.vae, .gan])
    func resumedRunMatchesUninterruptedRun(kind: ImageModelKind) throws {
        guard Self.dataReady else { return }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-train-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        func options(_ name: String, epochs: Int) -> TrainingOptions {
            TrainingOptions(kind: kind, epochs: epochs, batchSize: 16, seed: 5, outputDirectory: root.appendingPathComponent(name).path, stepsPerEpoch: 3)
        }
        for name in ["straight", "resumed"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(name), withIntermediateDirectories: true)
        }
        try ImageTrainer(options: options("straight", epochs: 2), resume: false).run(step: { _ in }, epochDone: { _ in })
        try ImageTrainer(options: options("resumed", epochs: 1), resume: false).run(step: { _ in }, epochDone: { _ in })
        let resumed = try ImageTrainer(options: options("resumed", epochs: 2), resume: true)
        #expect(resumed.completedEpochs == 1)
        try resumed.run(step: { _ in }, epochDone: { _ in })
        for file in ["training.safetensors", kind.weightsFile] {
            let a = try Data(contentsOf: root.appendingPathComponent("straight/\(file)"))
            let b = try Data(contentsOf: root.appendingPathComponent("resumed/\(file)"))
            #expect(a == b, "\(file) differs after resuming")
        }
        let log = try String(contentsOf: root.appendingPathComponent("resumed/train_log.jsonl"), encoding: .utf8)
        #expect(log.split(separator: "\n").count == 6)
    }
}
