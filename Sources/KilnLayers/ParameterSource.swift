import Foundation
import KilnAutograd
import KilnFormats

/// How a fresh parameter is filled when training starts.
public enum Initialization: Sendable {
    case uniform(bound: Float)
    case normal(mean: Float, standardDeviation: Float)
    case constant(Float)
}

public struct ParameterError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Where layers get their parameters: one code path builds a model for training (random
/// initialization) or from a checkpoint (names and shapes checked strictly, nothing left over).
public protocol ParameterSource: AnyObject {
    func values(_ name: String, shape: [Int], initialization: Initialization) throws -> [Float]
    /// An integer counter kept beside the parameters (batch norm's num_batches_tracked).
    func counter(_ name: String) -> Int
}

extension ParameterSource {
    public func counter(_ name: String) -> Int { 0 }
}

/// Fresh parameters drawn from a seeded generator, in the order the layers ask for them.
public final class RandomInitialization: ParameterSource {
    private var random: RandomSource
    public init(seed: UInt64) { random = RandomSource(seed: seed) }

    public func values(_ name: String, shape: [Int], initialization: Initialization) throws -> [Float] {
        let count = shape.reduce(1, *)
        switch initialization {
        case .uniform(let bound): return random.uniform(count, in: -bound...bound)
        case .normal(let mean, let sd): return random.normal(count, mean: mean, standardDeviation: sd)
        case .constant(let value): return [Float](repeating: value, count: count)
        }
    }
}

/// Parameters read from safetensors files: every name a layer asks for must exist with exactly
/// the expected shape, and `finish()` refuses tensors no layer asked for (a checkpoint of another
/// model). Names may carry a prefix inside the file (`prefix` + name).
public final class CheckpointParameters: ParameterSource {
    private let files: [SafetensorsFile]
    private let path: String
    private let prefix: String
    private var used = Set<String>()

    public init(paths: [String], prefix: String = "") throws {
        files = try paths.map { path in
            do { return try SafetensorsFile(path: path) } catch { throw ParameterError("\(path): \(error)") }
        }
        self.path = paths.joined(separator: ", ")
        self.prefix = prefix
    }

    public func values(_ name: String, shape: [Int], initialization: Initialization) throws -> [Float] {
        let key = prefix + name
        guard let (file, tensor) = files.lazy.compactMap({ f in f.tensor(named: key).map { (f, $0) } }).first else {
            throw ParameterError("\(path) has no tensor \(key): not a checkpoint of this model")
        }
        guard tensor.shape == shape else {
            throw ParameterError("\(path): \(key) has shape \(tensor.shape), this model needs \(shape)")
        }
        used.insert(key)
        return try floats(file, tensor)
    }

    /// An integer counter stored beside the parameters (e.g. num_batches_tracked); 0 if absent.
    public func counter(_ name: String) -> Int {
        let key = prefix + name
        guard let (file, tensor) = files.lazy.compactMap({ f in f.tensor(named: key).map { (f, $0) } }).first,
              tensor.dtype == .i64, tensor.elementCount == 1 else { return 0 }
        used.insert(key)
        return Int(file.data(of: tensor).loadUnaligned(as: Int64.self))
    }

    /// Throws if the files hold tensors (under the prefix) that no layer asked for.
    public func finish() throws {
        let extra = files.flatMap { $0.tensors.map(\.name) }.filter { $0.hasPrefix(prefix) && !used.contains($0) }
        guard extra.isEmpty else {
            throw ParameterError("\(path) holds tensors this model does not have: \(extra.sorted().prefix(5).joined(separator: ", "))")
        }
    }

    public var metadata: [String: String] { files.reduce(into: [:]) { $0.merge($1.metadata) { a, _ in a } } }

    private func floats(_ file: SafetensorsFile, _ tensor: SafetensorsFile.Tensor) throws -> [Float] {
        let raw = file.data(of: tensor)
        switch tensor.dtype {
        case .f32:
            let values = (0..<tensor.elementCount).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
            guard values.allSatisfy(\.isFinite) else { throw ParameterError("\(path): \(tensor.name) holds non-finite values") }
            return values
        default:
            throw ParameterError("\(path): \(tensor.name) is \(tensor.dtype.rawValue), Kiln's image models store F32")
        }
    }
}

/// Something with named trainable parameters and named state (batch-norm statistics).
public protocol Module {
    var parameters: [(name: String, tensor: Tensor)] { get }
    var buffers: [(name: String, values: [Float])] { get }
    var counters: [(name: String, value: Int)] { get }
}

extension Module {
    public var buffers: [(name: String, values: [Float])] { [] }
    public var counters: [(name: String, value: Int)] { [] }

    /// The module's tensors as safetensors entries (F32, and I64 counters), PyTorch's layouts.
    public func safetensorsEntries(prefix: String = "") -> [SafetensorsWriter.Entry] {
        var entries = parameters.map { entry($0.name, $0.tensor.shape, $0.tensor.data, prefix) }
        entries += buffers.map { entry($0.name, [$0.values.count], $0.values, prefix) }
        entries += counters.map { c in
            SafetensorsWriter.Entry(name: prefix + c.name, dtype: .i64, shape: [], bytes: withUnsafeBytes(of: Int64(c.value).littleEndian) { Data($0) })
        }
        return entries
    }

    private func entry(_ name: String, _ shape: [Int], _ values: [Float], _ prefix: String) -> SafetensorsWriter.Entry {
        SafetensorsWriter.Entry(name: prefix + name, dtype: .f32, shape: shape, bytes: values.withUnsafeBufferPointer { Data(buffer: $0) })
    }
}

/// A module made of named parts: its names are "part.name" for every part's parameters, buffers
/// and counters, in the order of `parts`.
public protocol CompositeModule: Module {
    var parts: [(name: String, module: any Module)] { get }
}

extension CompositeModule {
    public var parameters: [(name: String, tensor: Tensor)] {
        parts.flatMap { part in part.module.parameters.map { (part.name + "." + $0.name, $0.tensor) } }
    }
    public var buffers: [(name: String, values: [Float])] {
        parts.flatMap { part in part.module.buffers.map { (part.name + "." + $0.name, $0.values) } }
    }
    public var counters: [(name: String, value: Int)] {
        parts.flatMap { part in part.module.counters.map { (part.name + "." + $0.name, $0.value) } }
    }
}
