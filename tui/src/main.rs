//! `control-room`: the Pizza Platform control room.
//!
//! Until the control-room issue lands, this prints its version and how to run
//! the nodes headless.

fn main() {
    println!("control-room {}", env!("CARGO_PKG_VERSION"));
    println!("The interactive control room is not built yet. Run the nodes headless:");
    println!("  cargo run -p node --bin pizza-node -- broker --listen 127.0.0.1:1883 --data-dir data/broker");
    println!("  cargo run -p node --bin pizza-node -- --help");
}
