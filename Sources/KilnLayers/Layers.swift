import KilnAutograd
import KilnKernels

/// How a layer's fresh weights are drawn: the VAE's U(±1/√fan_in) for weights and biases, or
/// DCGAN's N(0, 0.02) weights with zero biases.
public enum WeightInitialization: Sendable {
    case uniformFanIn
    case dcgan

    func weight(fanIn: Int) -> Initialization {
        switch self {
        case .uniformFanIn: return .uniform(bound: 1 / Float(fanIn).squareRoot())
        case .dcgan: return .normal(mean: 0, standardDeviation: 0.02)
        }
    }

    func bias(fanIn: Int) -> Initialization {
        switch self {
        case .uniformFanIn: return .uniform(bound: 1 / Float(fanIn).squareRoot())
        case .dcgan: return .constant(0)
        }
    }
}

private func parameter(_ source: ParameterSource, _ name: String, _ shape: [Int], _ initialization: Initialization) throws -> Tensor {
    Tensor(shape: shape, data: try source.values(name, shape: shape, initialization: initialization), requiresGradient: true)
}

/// y = W·x + b, weight [out, in].
public struct Linear: Module {
    public let weight: Tensor
    public let bias: Tensor?

    public init(_ inputs: Int, _ outputs: Int, bias hasBias: Bool = true, name: String, source: ParameterSource,
                initialization: WeightInitialization) throws {
        weight = try parameter(source, name + ".weight", [outputs, inputs], initialization.weight(fanIn: inputs))
        bias = hasBias ? try parameter(source, name + ".bias", [outputs], initialization.bias(fanIn: inputs)) : nil
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.linear(weight: weight, bias: bias) }

    public var parameters: [(name: String, tensor: Tensor)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }
}

/// Conv2d or ConvTranspose2d with square kernels on a fixed input size.
public struct Convolution2D: Module {
    public let geometry: ConvolutionGeometry
    public let weight: Tensor
    public let bias: Tensor?

    /// `transposed` selects ConvTranspose2d (weight [in, out, k, k]); fan-in is in·k·k for both.
    public init(_ inputs: Int, _ outputs: Int, kernel: Int, stride: Int, padding: Int, inputSize: Int, transposed: Bool = false,
                bias hasBias: Bool = true, name: String, source: ParameterSource, initialization: WeightInitialization) throws {
        geometry = transposed
            ? .transposed(inputChannels: inputs, outputChannels: outputs, inputHeight: inputSize, inputWidth: inputSize,
                          kernelHeight: kernel, kernelWidth: kernel, stride: stride, padding: padding)
            : .convolution(inputChannels: inputs, outputChannels: outputs, inputHeight: inputSize, inputWidth: inputSize,
                           kernelHeight: kernel, kernelWidth: kernel, stride: stride, padding: padding)
        let fanIn = inputs * kernel * kernel
        let shape = transposed ? [inputs, outputs, kernel, kernel] : [outputs, inputs, kernel, kernel]
        weight = try parameter(source, name + ".weight", shape, initialization.weight(fanIn: fanIn))
        bias = hasBias ? try parameter(source, name + ".bias", [outputs], initialization.bias(fanIn: fanIn)) : nil
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.convolution(geometry, weight: weight, bias: bias) }

    public var parameters: [(name: String, tensor: Tensor)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }
}

/// BatchNorm2d with running statistics (PyTorch's eps 1e-5, momentum 0.1).
public struct BatchNorm2D: Module {
    public let weight: Tensor
    public let bias: Tensor
    public let running: RunningStatistics

    /// `initialization` fills γ (DCGAN: N(1, 0.02)); β starts at 0.
    public init(_ channels: Int, name: String, source: ParameterSource, initialization: Initialization = .constant(1)) throws {
        weight = try parameter(source, name + ".weight", [channels], initialization)
        bias = try parameter(source, name + ".bias", [channels], .constant(0))
        running = RunningStatistics(channels: channels)
        running.mean = try source.values(name + ".running_mean", shape: [channels], initialization: .constant(0))
        running.variance = try source.values(name + ".running_var", shape: [channels], initialization: .constant(1))
        running.batchesTracked = source.counter(name + ".num_batches_tracked")
    }

    public func callAsFunction(_ x: Tensor, training: Bool) -> Tensor {
        x.batchNorm(weight: weight, bias: bias, running: running, training: training)
    }

    public var parameters: [(name: String, tensor: Tensor)] { [("weight", weight), ("bias", bias)] }
    public var buffers: [(name: String, values: [Float])] { [("running_mean", running.mean), ("running_var", running.variance)] }
    public var counters: [(name: String, value: Int)] { [("num_batches_tracked", running.batchesTracked)] }
}

/// The SAGAN self-attention block (1×1 convolutions q, k: C → C/8, v: C → C, gate γ from 0).
public struct SelfAttention2D: Module {
    public let block: SelfAttentionParameters

    public init(channels: Int, name: String, source: ParameterSource, initialization: WeightInitialization) throws {
        let d = channels / 8
        func conv(_ part: String, _ outputs: Int) throws -> (Tensor, Tensor) {
            (try parameter(source, "\(name).\(part).weight", [outputs, channels, 1, 1], initialization.weight(fanIn: channels)),
             try parameter(source, "\(name).\(part).bias", [outputs], initialization.bias(fanIn: channels)))
        }
        let (qw, qb) = try conv("q", d), (kw, kb) = try conv("k", d), (vw, vb) = try conv("v", channels)
        let gamma = try parameter(source, name + ".gamma", [1], .constant(0))
        block = SelfAttentionParameters(queryWeight: qw, queryBias: qb, keyWeight: kw, keyBias: kb, valueWeight: vw, valueBias: vb, gamma: gamma)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.selfAttention(block) }

    public var parameters: [(name: String, tensor: Tensor)] {
        [("q.weight", block.queryWeight), ("q.bias", block.queryBias), ("k.weight", block.keyWeight), ("k.bias", block.keyBias),
         ("v.weight", block.valueWeight), ("v.bias", block.valueBias), ("gamma", block.gamma)]
    }
}
