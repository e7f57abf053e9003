/// A failure while running a command (bad input file, unknown id, …): printed as
/// "Error: <message>" with a non-zero exit, without the usage text that option mistakes get.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
