//! Printing an error with its causes.

/// An error and its causes on one line, `error: cause: cause`, as `anyhow` prints `{:#}`:
/// typed-ws errors keep the error they wrap (I/O, TLS, tungstenite) as their source.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}
