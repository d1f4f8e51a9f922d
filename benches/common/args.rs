//! The command line of the benchmark programs that also serve (`--name value` pairs).

/// The value after `--name` on the command line, if any.
pub fn value(name: &str) -> Option<String> {
    let mut args = std::env::args().skip_while(|arg| arg != name);
    args.next()?;
    args.next()
}
