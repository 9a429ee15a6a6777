//! `pizza-node`: run one Pizza Platform node headless.

// Why this allocator: node/src/allocator.rs.
#[global_allocator]
static ALLOCATOR: node::allocator::Allocator = node::allocator::ALLOCATOR;

fn main() -> std::process::ExitCode {
    node::cli::main()
}
