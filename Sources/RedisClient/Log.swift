import Logging

/// The client layer's logger: reconnections and topology changes at debug level. Its records go wherever the
/// program bootstrapped swift-log to (the command line sends them to stderr, one line each).
let log = Logger(label: "expiry-bench.redis")
