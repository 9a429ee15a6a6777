# Pizza Platform recipes. `just` lists them.

# Open the control room (embedded broker + default nodes).
run:
    cargo run --release

# The whole test suite (what CI runs, after fmt and clippy).
test:
    cargo test --workspace

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Everything CI runs.
ci:
    bash .ci/run

# Broker and queue throughput/latency.
bench:
    cargo run --release -p node --bin queue-bench
    cargo run --release -p node --bin overhead-bench
    cargo run --release -p tui --bin render-bench
    cargo run --release -p tui --bin proxy-bench
    cargo run --release -p node --bin replay-bench

# Play a scenario in the control room, e.g. `just demo buffering` (`just demo` lists them).
demo name="":
    @if [ -z "{{name}}" ]; then ls assets/scenarios | sed 's/.toml$//'; else cargo run --release -- --scenario assets/scenarios/{{name}}.toml; fi

# Every scenario headless: each prints its verdict; fails on the first that does not pass.
demos:
    for f in assets/scenarios/*.toml; do cargo run --release -- --headless --scenario "$f" || exit 1; done

# The platform without a terminal: events and alerts on stdout.
headless:
    cargo run --release -- --headless

# Run the broker by hand on 127.0.0.1:1883.
broker:
    cargo run --release -p node --bin pizza-node -- broker --listen 127.0.0.1:1883 --data-dir data/broker
