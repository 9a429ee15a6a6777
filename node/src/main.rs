//! `pizza-node`: run one Pizza Platform node headless.

fn main() -> std::process::ExitCode {
    node::cli::main()
}
