import ArgumentParser
import Foundation
import KilnServices
import KilnFormats
import KilnImageModels

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Sample images from a trained vae or gan to PNG.",
        discussion: """
        Writes one grid PNG (--out, default <model>-samples.png) or one PNG per image (--out-dir). Every PNG \
        carries a tEXt "parameters" chunk: model, checkpoint sha256, seed and count. \
        --interpolate A,B walks the VAE's latent space from seed A's point to seed B's in --steps images.
        """
    )

    @Argument(help: ArgumentHelp("vae or gan.", valueName: "vae|gan")) var model: ImageModelKind
    @Option(name: .customLong("model"), help: "Checkpoint folder (default: Checkpoints/<model>).") var directory: String?
    @Option(help: "Images to sample (1…100000; default: the grid's size, or 64).") var count: Int?
    @Option(help: "Seed of the latent vectors.") var seed: UInt64 = 0
    @Option(help: "Grid layout COLSxROWS (default: square enough for --count).") var grid: String?
    @Option(help: "Write one grid PNG here.") var out: String?
    @Option(help: "Write one PNG per image into this folder (000000.png, …).") var outDir: String?
    @Option(help: "VAE only: two seeds A,B whose latent points to walk between.") var interpolate: String?
    @Option(help: "Images along --interpolate (2…1000).") var steps = 10
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Flag(help: "Print what was written as JSON.") var json = false

    static let maximumCount = 100_000

    func validate() throws {
        if out != nil && outDir != nil { throw ValidationError("give --out or --out-dir, not both") }
        if let count, !(1...Self.maximumCount).contains(count) { throw ValidationError("--count must be 1…\(Self.maximumCount), got \(count)") }
        if interpolate != nil {
            guard model == .vae else { throw ValidationError("--interpolate walks the VAE's latent space; use it with vae") }
            guard (2...1000).contains(steps) else { throw ValidationError("--steps must be 2…1000, got \(steps)") }
            guard count == nil else { throw ValidationError("--interpolate makes --steps images; drop --count") }
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        _ = try layout()
    }

    /// (columns, rows, count) from --grid, --count and --interpolate.
    func layout() throws -> (Int, Int, Int) {
        if let interpolate {
            let seeds = interpolate.split(separator: ",")
            guard seeds.count == 2, seeds.allSatisfy({ UInt64($0) != nil }) else {
                throw ValidationError("--interpolate takes two seeds A,B (e.g. 3,7), got \(interpolate)")
            }
        }
        if let grid {
            let parts = grid.lowercased().split(separator: "x")
            guard parts.count == 2, let c = Int(parts[0]), let r = Int(parts[1]), c >= 1, r >= 1, c * r <= Self.maximumCount, c <= 2000, r <= 2000 else {
                throw ValidationError("--grid must be COLSxROWS with positive sizes (at most 2000 each, \(Self.maximumCount) images), got \(grid)")
            }
            let n = interpolate != nil ? steps : (count ?? c * r)
            guard n <= c * r else { throw ValidationError("\(n) images do not fit a \(c)x\(r) grid") }
            return (c, r, n)
        }
        let n = interpolate != nil ? steps : (count ?? 64)
        if interpolate != nil { return (n, 1, n) }
        let columns = Int(Double(n).squareRoot().rounded(.up))
        return (columns, (n + columns - 1) / columns, n)
    }

    func run() throws {
        if let threads { setenv("KILN_THREADS", String(threads), 1) }
        let (columns, rows, n) = try layout()
        let folder = try directory ?? modelPath("Checkpoints/\(model.rawValue)")
        // Refuse an unwritable destination before any work.
        let target = outDir ?? out ?? "\(model.rawValue)-samples.png"
        let parent = outDir ?? ((target as NSString).deletingLastPathComponent.isEmpty ? "." : (target as NSString).deletingLastPathComponent)
        if let outDir {
            do { try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true) } catch {
                throw CLIError("cannot create \(outDir): \(error.localizedDescription)")
            }
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory), isDirectory.boolValue,
              FileManager.default.isWritableFile(atPath: parent) else {
            throw CLIError("cannot write into \(parent): no such folder or not writable")
        }
        let studio = try ImageStudio(kind: model, directory: folder)
        let sampler = studio.sampler
        var latents: [Float]
        var description = studio.parameters(seed: seed, count: n)
        if let interpolate {
            let seeds = interpolate.split(separator: ",").map { UInt64($0)! }
            let a = sampler.latents(count: 1, seed: seeds[0]), b = sampler.latents(count: 1, seed: seeds[1])
            latents = LatentPath.spherical(from: a, to: b, steps: n)
            description = "model: \(model.rawValue), checkpoint sha256: \(sampler.checkpointDigest), interpolate: \(seeds[0]),\(seeds[1]), steps: \(n), count: \(n)"
        } else {
            latents = sampler.latents(count: n, seed: seed)
        }
        let start = Date()
        let pixels = ImageGrid.bytes(sampler.images(latents: latents))
        let seconds = Date().timeIntervalSince(start)
        var written: [String] = []
        do {
            if let outDir {
                for (i, png) in try ImageStudio.separatePNGs(pixels, parameters: description).enumerated() {
                    let file = (outDir as NSString).appendingPathComponent(String(format: "%06d.png", i))
                    try DurableFile.write(png, to: file)
                    written.append(file)
                }
        } else {
                let image = ImageGrid.compose(pixels, side: 28, columns: columns, rows: rows)
                let png = try PNGImage.encodeGray(width: image.width, height: image.height, pixels: image.pixels,
                                                  text: [("parameters", description + ", grid: \(columns)x\(rows)")])
                try DurableFile.write(png, to: target)
                written.append(target)
            }
        } catch {
            throw CLIError("cannot write PNG: \(error)")
        }
        if json {
            let object: [String: Any] = ["model": model.rawValue, "checkpoint_sha256": sampler.checkpointDigest, "seed": seed,
                                         "count": n, "files": written, "seconds": seconds]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print("wrote \(n) \(model.rawValue) sample\(n == 1 ? "" : "s") to \(outDir ?? target)" + (outDir == nil ? " (\(columns)x\(rows) grid)" : ""))
        }
    }
}
