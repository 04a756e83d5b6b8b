import Logging

/// The pipeline's logger: reconnections, chaos and rescues at debug and info level. Its records go wherever the
/// program bootstrapped swift-log to (the command line sends them to stderr, one line each).
let log = Logger(label: "expiry-bench")
