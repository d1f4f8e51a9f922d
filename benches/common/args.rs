//! The command line of the benchmark programs that also serve (`--name value` pairs).

/// The value after `--name` on the command line, if any.
pub fn value(name: &str) -> Option<String> {
    let mut args = std::env::args().skip_while(|arg| arg != name);
    args.next()?;
    args.next()
}

/// Whether `--name` (a flag, without value) is on the command line.
#[allow(dead_code)] // each benchmark program includes this file and uses what it needs
pub fn flag(name: &str) -> bool {
    std::env::args().any(|arg| arg == name)
}
