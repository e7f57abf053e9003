import Foundation
import KilnFormats
import KilnImageModels
import KilnTestSupport
import Testing

/// `kiln sample` and `kiln train` as a user runs them, on the shipped checkpoints.
@Suite(.serialized) struct ImageCLITests {
    static func scratch() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-images-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func ready(_ kind: ImageModelKind) -> Bool {
        let weights = Fixtures.repositoryRoot.appendingPathComponent("Checkpoints/\(kind.rawValue)/\(kind.weightsFile)").path
        for path in [CLITests.binary.path, weights] where !FileManager.default.fileExists(atPath: path) {
            if Fixtures.isCI { Issue.record("missing \(path)") }
            return false
        }
        return true
    }

    @Test(arguments: [ImageModelKind.vae, .gan])
    func sampleGridIsAValidPNGWithTheModelsPixels(kind: ImageModelKind) throws {
        guard Self.ready(kind) else { return }
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("grid.png").path
        let start = Date()
        let run = try CLITests.kiln(["sample", kind.rawValue, "--count", "10", "--seed", "7", "--grid", "5x2", "--out", out])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(Date().timeIntervalSince(start) < 5)
        let png = try Data(contentsOf: URL(fileURLWithPath: out))
        let decoded = try PNGImage.decodeGray(png)
        #expect(decoded.width == 5 * 30 + 2 && decoded.height == 2 * 30 + 2)
        // The same images computed in this process, laid out the same way, pixel for pixel.
        let sampler = try ImageSampler(kind: kind, directory: Fixtures.repositoryRoot.appendingPathComponent("Checkpoints/\(kind.rawValue)").path)
        let expected = ImageGrid.compose(ImageGrid.bytes(sampler.images(latents: sampler.latents(count: 10, seed: 7))), side: 28, columns: 5, rows: 2)
        #expect(decoded.pixels == expected.pixels)
        let text = PNGImage.textChunks(png)["parameters"] ?? ""
        #expect(text.contains("model: \(kind.rawValue)") && text.contains("checkpoint sha256: \(sampler.checkpointDigest)")
                && text.contains("seed: 7") && text.contains("count: 10"), "\(text)")
        // Samples are not blank: a trained generator draws clothes, not a flat field.
        let tile = Array(expected.pixels)
        #expect(Set(tile).count > 50)
    }

    @Test func sampleToFolderAndInterpolate() throws {
        guard Self.ready(.vae) else { return }
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let folder = dir.appendingPathComponent("each").path
        let each = try CLITests.kiln(["sample", "vae", "--count", "3", "--out-dir", folder])
        #expect(each.status == 0, "\(each.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        #expect(files == ["000000.png", "000001.png", "000002.png"])
        let single = try PNGImage.decodeGray(Data(contentsOf: URL(fileURLWithPath: folder + "/000001.png")))
        #expect(single.width == 28 && single.height == 28)
        let walk = dir.appendingPathComponent("walk.png").path
        let interpolation = try CLITests.kiln(["sample", "vae", "--interpolate", "3,9", "--steps", "6", "--out", walk])
        #expect(interpolation.status == 0, "\(interpolation.stderr)")
        let strip = try PNGImage.decodeGray(Data(contentsOf: URL(fileURLWithPath: walk)))
        #expect(strip.width == 6 * 30 + 2 && strip.height == 32)
        let walkText = PNGImage.textChunks(try Data(contentsOf: URL(fileURLWithPath: walk)))["parameters"]
        #expect(walkText?.contains("interpolate: 3,9") == true)
    }

    @Test func badSamplingRequestsFailClearlyAndWriteNothing() throws {
        guard Self.ready(.vae) else { return }
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("x.png").path
        let zero = try CLITests.kiln(["sample", "vae", "--count", "0", "--out", out])
        #expect(zero.status != 0 && zero.stderr.contains("--count must be 1…100000"))
        let huge = try CLITests.kiln(["sample", "vae", "--count", "100000000", "--out", out])
        #expect(huge.status != 0 && huge.stderr.contains("--count must be 1…100000"))
        let grid = try CLITests.kiln(["sample", "vae", "--count", "10", "--grid", "3x3", "--out", out])
        #expect(grid.status != 0 && grid.stderr.contains("do not fit a 3x3 grid"))
        let unwritable = try CLITests.kiln(["sample", "vae", "--out", "/nonexistent-folder/x.png"])
        #expect(unwritable.status != 0 && unwritable.stderr.contains("cannot write into /nonexistent-folder"))
        let wrongModel = try CLITests.kiln(["sample", "gan", "--model", "Checkpoints/vae", "--out", out])
        #expect(wrongModel.status != 0 && wrongModel.stderr.contains("no gan_G.safetensors in Checkpoints/vae"))
        // A checkpoint of the wrong model under the right file name.
        let fake = dir.appendingPathComponent("fake")
        try FileManager.default.createDirectory(at: fake, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Fixtures.repositoryRoot.appendingPathComponent("Checkpoints/vae/vae.safetensors").path,
                                         toPath: fake.appendingPathComponent("gan_G.safetensors").path)
        let mismatched = try CLITests.kiln(["sample", "gan", "--model", fake.path, "--out", out])
        #expect(mismatched.status != 0 && mismatched.stderr.contains("is a vae checkpoint, not gan"), "\(mismatched.stderr)")
        // A truncated weights file.
        let bytes = try Data(contentsOf: Fixtures.repositoryRoot.appendingPathComponent("Checkpoints/vae/vae.safetensors"))
        try bytes.prefix(bytes.count / 2).write(to: fake.appendingPathComponent("vae.safetensors"))
        let truncated = try CLITests.kiln(["sample", "vae", "--model", fake.path, "--out", out])
        #expect(truncated.status != 0 && truncated.stderr.contains("Error:"), "\(truncated.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).allSatisfy { !$0.contains("partial") })
    }

    @Test func killedTrainingResumesToTheSameWeights() throws {
        guard Self.ready(.vae), TrainingTestsData.ready else { return }
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let common = ["--epochs", "3", "--batch", "16", "--steps-per-epoch", "60", "--seed", "3", "--threads", "2", "--json"]
        let straight = try CLITests.kiln(["train", "vae", "--out", dir.appendingPathComponent("straight").path] + common)
        #expect(straight.status == 0, "\(straight.stderr)")
        let killedOut = dir.appendingPathComponent("killed").path
        let process = Process()
        process.executableURL = CLITests.binary
        process.currentDirectoryURL = Fixtures.repositoryRoot
        process.arguments = ["train", "vae", "--out", killedOut] + common
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Kill it inside epoch 2: after the first checkpoint, before the second.
        let state = killedOut + "/training.safetensors"
        while process.isRunning && !FileManager.default.fileExists(atPath: state) { usleep(2000) }
        usleep(100_000)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let resumed = try CLITests.kiln(["train", "vae", "--out", killedOut, "--resume"] + common)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        for file in ["vae.safetensors", "training.safetensors"] {
            let a = try Data(contentsOf: URL(fileURLWithPath: dir.appendingPathComponent("straight/\(file)").path))
            let b = try Data(contentsOf: URL(fileURLWithPath: killedOut + "/" + file))
            #expect(a == b, "\(file) differs after kill and resume")
        }
        // Refuses to silently overwrite, and refuses a resume with other settings.
        let again = try CLITests.kiln(["train", "vae", "--out", killedOut] + common)
        #expect(again.status != 0 && again.stderr.contains("already holds a trained vae"))
        let otherSeed = try CLITests.kiln(["train", "vae", "--out", killedOut, "--resume", "--epochs", "4", "--batch", "16", "--seed", "4"])
        #expect(otherSeed.status != 0 && otherSeed.stderr.contains("resume with the same settings"))
    }
}

enum TrainingTestsData {
    static var ready: Bool {
        let ok = FileManager.default.fileExists(atPath: FashionMNIST.defaultDirectory + "/train-images-idx3-ubyte.gz")
        if !ok && Fixtures.isCI { Issue.record("dataset-fashion-mnist is not installed") }
        return ok
    }
}
