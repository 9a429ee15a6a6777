//! The `pizza-node` command line. The control room runs the same entry point
//! by re-executing itself, so one binary carries every role.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use contracts::domain::Role;
use contracts::queue::Outcome;
use contracts::trust::role;
use contracts::Envelope;

use crate::config::CommonArgs;

/// Run one Pizza Platform node headless.
#[derive(Debug, Parser)]
#[command(
    name = "pizza-node",
    version,
    about = "Run one Pizza Platform node headless: the broker, a service, or a queue tool"
)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The MQTT broker with the durable work-queue keeper.
    Broker(BrokerArgs),
    /// The queue keeper and the event log alone, on any MQTT 3.1.1 broker.
    Keeper(crate::keeper::Args),
    /// The services of the business, one subcommand each (services/mod.rs).
    #[command(flatten)]
    Service(crate::services::Service),
    /// Put test messages on a work queue and wait for their confirms.
    Put(PutArgs),
    /// Consume a work queue, printing one JSON line per delivery.
    Consume(ConsumeArgs),
    /// Rebuild an order's state at an instant from the broker's event log.
    Replay(crate::inspect::ReplayArgs),
    /// Print an order's trace timeline: how long each stage took.
    Trace(crate::inspect::TraceArgs),
    /// Make a node's key and list it in a trust file, for nodes run by hand
    /// (the control room does this for the nodes it starts).
    Keygen(KeygenArgs),
    /// Print a bearer token (a JWT, good for 5 minutes) signed with a
    /// node's key, e.g. the control room's for `DELETE /orders/{id}`.
    Token(TokenArgs),
    /// Print a Mosquitto `acl_file` for a platform whose nodes log in as
    /// their node ids, made from the permission table.
    Acl(AclArgs),
    /// Print the OpenAPI 3.1 document of the order, payment and delivery
    /// services (YAML), as committed at contracts/openapi.yaml.
    Openapi,
    /// Print the AsyncAPI 3 document of every MQTT topic (YAML), as
    /// committed at contracts/asyncapi.yaml.
    Asyncapi,
    /// Back up a node's sled state (keeper queues, event log, outbox,
    /// inbox, order book) into one file: online and consistent from the
    /// process running there, or from the files when none runs.
    Backup(BackupArgs),
    /// Restore a backup into a node's data directory (the node stopped).
    Restore(RestoreArgs),
}

/// `pizza-node backup`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The node's data directory (the broker's holds `queues` and `events`).
    #[arg(long)]
    data_dir: PathBuf,
    /// The backup file to write (whole, or not at all).
    #[arg(long)]
    to: PathBuf,
}

/// `pizza-node restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The backup file (`pizza-node backup --to`).
    file: PathBuf,
    /// The data directory to restore into.
    #[arg(long)]
    data_dir: PathBuf,
    /// Replace the databases already there.
    #[arg(long)]
    force: bool,
}

/// `pizza-node acl`.
#[derive(Debug, clap::Args)]
pub struct AclArgs {
    /// Every node of this trust file, with its role.
    #[arg(long)]
    trust: Option<PathBuf>,
    /// A node as ID:ROLE (e.g. kitchen-1:kitchen); repeatable, beside or
    /// instead of --trust.
    #[arg(long = "node")]
    nodes: Vec<String>,
    /// Topic prefix.
    #[arg(long, default_value = "pizza")]
    prefix: String,
}

/// `pizza-node token`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// The key to sign with (`pizza-node keygen`, or the control room's
    /// `<data-dir>/keys/control-room.key`).
    #[arg(long)]
    key: PathBuf,
    /// The node id the key belongs to.
    #[arg(long, default_value = "control-room")]
    id: String,
    /// The service it is for: order, payment or delivery.
    #[arg(long, default_value = role::ORDER)]
    audience: String,
    /// What it allows: orders:cancel, payment or deliveries:recall.
    #[arg(long, default_value = contracts::token::scope::CANCEL)]
    scope: String,
}

/// `pizza-node keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// The node id the key is for.
    #[arg(long)]
    id: String,
    /// Its role: broker (also the keeper), order, payment, kitchen,
    /// delivery, control, or worker (`put`/`consume`).
    #[arg(long)]
    role: String,
    /// Where the key goes (`<dir>/<id>.key`).
    #[arg(long, default_value = "keys")]
    dir: PathBuf,
    /// The trust file to list it in (created if missing).
    #[arg(long, default_value = "keys/trust.json")]
    trust: PathBuf,
}

/// `pizza-node broker`.
#[derive(Debug, clap::Args)]
pub struct BrokerArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// MQTT 3.1.1 listener.
    #[arg(long, env = "PIZZA_LISTEN", default_value = "127.0.0.1:1883")]
    listen: SocketAddr,
    /// Also listen for MQTT 5 here.
    #[arg(long, env = "PIZZA_LISTEN_V5")]
    listen_v5: Option<SocketAddr>,
    /// Serve rumqttd's HTTP console here (off by default).
    #[arg(long, env = "PIZZA_CONSOLE")]
    console: Option<SocketAddr>,
    /// Require a login: a file of user:password lines.
    #[arg(long, env = "PIZZA_USERS")]
    users: Option<PathBuf>,
    #[command(flatten)]
    queues: QueuePolicyArgs,
}

/// How the keeper treats deliveries: `pizza-node broker` and `pizza-node
/// keeper` take the same flags.
#[derive(Debug, Clone, clap::Args)]
pub struct QueuePolicyArgs {
    /// Deliveries tried before a message goes to the DLQ.
    #[arg(long, env = "PIZZA_MAX_ATTEMPTS", default_value_t = 5)]
    max_attempts: u32,
    /// First retry backoff in ms (doubles each retry, capped at 10 s).
    #[arg(long, env = "PIZZA_RETRY_BASE_MS", default_value_t = 200)]
    retry_base_ms: u64,
    /// A delivery not acknowledged this long goes back to the queue.
    #[arg(long, env = "PIZZA_ACK_TIMEOUT_MS", default_value_t = 60_000)]
    ack_timeout_ms: u64,
    /// A consumer silent this long while holding deliveries loses them.
    #[arg(long, env = "PIZZA_LEASE_MS", default_value_t = 15_000)]
    lease_ms: u64,
}

impl QueuePolicyArgs {
    /// The retry and DLQ policy these flags say.
    pub fn policy(&self) -> broker::Policy {
        broker::Policy {
            max_attempts: self.max_attempts.max(1),
            backoff_base_ms: self.retry_base_ms,
            backoff_max_ms: 10_000,
            ack_timeout_ms: self.ack_timeout_ms,
        }
    }

    /// The consumer lease.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }

    /// What a keeper and its event log keep in `data_dir` under `prefix`,
    /// by these flags, checked and signed with `security`.
    pub fn keeping(
        &self,
        data_dir: PathBuf,
        prefix: &str,
        security: crate::runtime::security::Security,
    ) -> broker::Keeping {
        broker::Keeping {
            data_dir,
            prefix: prefix.to_string(),
            policy: self.policy(),
            lease: self.lease(),
            trust: security.trust,
            signer: security.signer,
        }
    }
}

/// `pizza-node put`.
#[derive(Debug, clap::Args)]
pub struct PutArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Queue to put on.
    #[arg(long, default_value = contracts::queue::KITCHEN)]
    queue: String,
    /// How many messages.
    #[arg(long, default_value_t = 10)]
    count: u64,
    /// Spread the messages over this many keys (order ids), round robin.
    #[arg(long, default_value_t = 10)]
    keys: u64,
    /// Messages per second (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Give up waiting for confirms after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout_s: u64,
}

/// `pizza-node consume`.
#[derive(Debug, clap::Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Queue to consume.
    #[arg(long, default_value = contracts::queue::KITCHEN)]
    queue: String,
    /// Deliveries held at once.
    #[arg(long, default_value_t = 1)]
    credit: u32,
    /// Simulated work per delivery, in ms.
    #[arg(long, default_value_t = 0)]
    work_ms: u64,
    /// How to acknowledge every delivery.
    #[arg(long, value_enum, default_value_t = AckWith::Done)]
    ack: AckWith,
}

/// The outcome `pizza-node consume` acks with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AckWith {
    /// Handled.
    Done,
    /// Try again later.
    Retry,
    /// Dead-letter it.
    Reject,
}

/// Parses the process arguments and runs; the exit code says how it went.
pub fn main() -> ExitCode {
    run(Cli::parse())
}

/// Runs a parsed command line on a fresh tokio runtime.
pub fn run(cli: Cli) -> ExitCode {
    crate::allocator::tune();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pizza-node: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            let text = error_text(&e);
            tracing::error!("{text}");
            eprintln!("pizza-node: {text}");
            ExitCode::FAILURE
        }
    }
}

/// `e` and its causes, each said once: a message that already quotes its
/// cause (`cannot read x.toml: No such file or directory`) is not followed
/// by it a second time, as `{:#}` would.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Broker(a) => broker(a).await,
        Command::Keeper(a) => role(&a.common.clone(), Role::Keeper.as_str(), crate::keeper::run(a)).await,
        Command::Service(service) => {
            let common = service.common().clone();
            role(&common, service.role(), service.run()).await
        }
        Command::Put(a) => put(a).await,
        Command::Consume(a) => consume(a).await,
        Command::Replay(a) => crate::inspect::replay(a).await,
        Command::Trace(a) => crate::inspect::trace(a).await,
        Command::Keygen(a) => keygen(a),
        Command::Token(a) => token(a),
        Command::Acl(a) => acl(a),
        Command::Backup(a) => {
            let s = broker::backup::backup(&a.data_dir, &a.to)?;
            let how = if s.online {
                "online, from the running process"
            } else {
                "from the files"
            };
            println!(
                "backed up {} ({}): {} key(s), {} byte(s) to {}",
                a.data_dir.display(),
                how,
                s.keys,
                s.bytes,
                a.to.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Restore(a) => {
            let s = broker::backup::restore(&a.file, &a.data_dir, a.force)?;
            println!(
                "restored {} into {}: {} ({} key(s))",
                a.file.display(),
                a.data_dir.display(),
                s.dbs.join(", "),
                s.keys
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Openapi => {
            let yaml = crate::services::openapi::merged_yaml().map_err(anyhow::Error::msg)?;
            print!("{yaml}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Asyncapi => {
            print!("{}", crate::asyncapi::yaml()?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn acl(a: AclArgs) -> anyhow::Result<ExitCode> {
    let mut nodes = Vec::new();
    if let Some(path) = &a.trust {
        let file = broker::trust::read_trust_file(path)?;
        nodes.extend(file.nodes.into_iter().map(|(id, t)| (id, t.role)));
    }
    nodes
        .extend(contracts::acl::parse_nodes(a.nodes.iter().map(String::as_str)).map_err(anyhow::Error::msg)?);
    anyhow::ensure!(!nodes.is_empty(), "no nodes: pass --trust FILE or --node ID:ROLE");
    print!(
        "{}",
        contracts::acl::mosquitto(&contracts::topics::Topics::new(&a.prefix), &nodes)
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs a role with its logs set up.
async fn role(
    common: &CommonArgs,
    name: &str,
    run: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<ExitCode> {
    let _logs = init_logs(common, name)?;
    run.await?;
    Ok(ExitCode::SUCCESS)
}

/// Logs, and with `--otlp-endpoint` traces, of this process running as
/// `role` (its id defaults to the role).
fn init_logs(common: &CommonArgs, role: &str) -> anyhow::Result<crate::logging::LogGuard> {
    let id = common.id_or(role);
    let traces = common
        .otlp_endpoint
        .as_deref()
        .map(|endpoint| crate::logging::Traces {
            endpoint,
            service: &id,
            role,
        });
    let guard = crate::logging::init(common.log_format, common.log_file.as_deref(), traces)
        .context("cannot set up logging (is the log file writable? is --otlp-endpoint a URL?)")?;
    if let Some(endpoint) = &common.otlp_endpoint {
        tracing::info!(%endpoint, "traces go to the OTLP collector");
    }
    Ok(guard)
}

fn keygen(a: KeygenArgs) -> anyhow::Result<ExitCode> {
    let roles = role::ALL;
    if !roles.contains(&a.role.as_str()) {
        anyhow::bail!("unknown role '{}': one of {}", a.role, roles.join(", "));
    }
    let key = broker::trust::make_key(&a.dir, &a.id, &a.role, &a.trust)?;
    print_line(&serde_json::json!({
        "id": a.id,
        "role": a.role,
        "key": key.display().to_string(),
        "trust": a.trust.display().to_string(),
    }));
    Ok(ExitCode::SUCCESS)
}

fn token(a: TokenArgs) -> anyhow::Result<ExitCode> {
    let signer = broker::trust::read_key(&a.key, &a.id)?;
    let token = signer.token(&a.audience, &a.scope, contracts::token::now_s())?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

async fn broker(a: BrokerArgs) -> anyhow::Result<ExitCode> {
    let _logs = init_logs(&a.common, role::BROKER)?;
    let logins = match &a.users {
        Some(path) => Some(std::sync::Arc::new(broker::auth::Logins::new(
            broker::auth::read_users(path)?,
        ))),
        None => {
            if !a.listen.ip().is_loopback() {
                tracing::warn!(listen = %a.listen, "no --users file: anyone who can reach this address can connect; pass --users FILE or listen on 127.0.0.1");
            }
            None
        }
    };
    let id = a.common.id_or(role::BROKER);
    let security = a.common.security(&id, role::BROKER)?;
    let stop = crate::runtime::stop::terminated();
    if let Some(url) = crate::runtime::start::telemetry(&a.common, &id, role::BROKER, stop).await? {
        tracing::info!(%url, "metrics");
    }
    let opts = broker::BrokerOptions {
        server: broker::ServerOptions {
            listen: a.listen,
            listen_v5: a.listen_v5,
            console: a.console,
            logins,
        },
        keeping: a
            .queues
            .keeping(a.common.data_dir_for(&id), &a.common.prefix, security),
    };
    tokio::select! {
        r = broker::serve(opts) => r?,
        _ = crate::runtime::stop::terminated() => tracing::info!("broker stopping"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints one JSON line to stdout and flushes it, so a reader (a test, a
/// pipe) sees it at once.
fn print_line(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// Wall-clock nanoseconds, to order lines printed by different processes.
fn wall_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

async fn put(a: PutArgs) -> anyhow::Result<ExitCode> {
    let _logs = init_logs(&a.common, "producer")?;
    let node = crate::runtime::start::start_node(&a.common, role::PRODUCER).await?;
    let producer = node.producer();
    let pace = (a.rate > 0).then(|| Duration::from_secs_f64(1.0 / a.rate as f64));
    let mut ids = Vec::with_capacity(a.count as usize);
    let run = contracts::envelope::new_trace_id();
    // Unpaced, puts go in groups with one outbox flush each.
    let group = if pace.is_some() { 1 } else { 500 };
    let mut pending = Vec::with_capacity(group);
    for i in 0..a.count {
        let key = format!("{}-k{}", &run[..8], i % a.keys.max(1));
        let seq = i / a.keys.max(1) + 1;
        let env = Envelope::new(
            "test.message",
            key.clone(),
            seq,
            run.clone(),
            node.id(),
            serde_json::json!({ "n": i }),
        );
        pending.push((env, key, seq));
        if pending.len() < group && i + 1 < a.count {
            continue;
        }
        let envelopes: Vec<Envelope> = pending.iter().map(|(e, _, _)| e.clone()).collect();
        producer.put_many(&a.queue, &envelopes).await?;
        for (env, key, seq) in pending.drain(..) {
            print_line(&serde_json::json!({ "put": env.event_id, "key": key, "seq": seq }));
            ids.push(env.event_id);
        }
        if let Some(p) = pace {
            tokio::time::sleep(p).await;
        }
    }
    let waited = tokio::time::timeout(Duration::from_secs(a.timeout_s), node.link().outbox().drained()).await;
    let confirmed = ids.iter().filter(|id| producer.confirmed(id)).count();
    print_line(&serde_json::json!({ "confirmed": confirmed, "of": ids.len() }));
    node.shutdown().await;
    Ok(if waited.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn consume(a: ConsumeArgs) -> anyhow::Result<ExitCode> {
    let _logs = init_logs(&a.common, "consumer")?;
    let node = crate::runtime::start::start_node(&a.common, role::CONSUMER).await?;
    let mut consumer = node.consumer(&a.queue, a.credit).await?;
    let outcome = match a.ack {
        AckWith::Done => Outcome::Done,
        AckWith::Retry => Outcome::Retry,
        AckWith::Reject => Outcome::Reject,
    };
    let acker = consumer.acker();
    let id = node.id().to_string();
    let mut work = tokio::task::JoinSet::new();
    loop {
        let delivery = tokio::select! {
            d = consumer.next() => d,
            _ = crate::runtime::stop::terminated() => None,
            _ = node.stop_requested() => None,
        };
        let Some(d) = delivery else { break };
        // Credit bounds how many of these run at once: the keeper sends no
        // more than that.
        let (acker, id, work_ms, ack) = (acker.clone(), id.clone(), a.work_ms, a.ack);
        work.spawn(async move {
            print_line(&serde_json::json!({
                "consumer": id,
                "delivery_id": d.delivery_id,
                "event_id": d.envelope.event_id,
                "key": d.envelope.order_id,
                "seq": d.envelope.seq,
                "attempt": d.attempt,
                "redelivery": d.redelivery,
                "at_ns": wall_ns(),
            }));
            if work_ms > 0 {
                tokio::time::sleep(Duration::from_millis(work_ms)).await;
            }
            let reason = (outcome != Outcome::Done).then(|| format!("consume --ack {ack:?}").to_lowercase());
            if acker.ack(&d.delivery_id, outcome, reason).await.is_ok() {
                print_line(&serde_json::json!({ "acked": d.delivery_id, "at_ns": wall_ns() }));
            }
        });
        while work.try_join_next().is_some() {}
    }
    node.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::error_text;

    #[test]
    fn a_cause_the_message_already_quotes_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let quoted = anyhow::Error::from(io).context("cannot read x.toml: No such file or directory");
        assert_eq!(
            error_text(&quoted),
            "cannot read x.toml: No such file or directory"
        );
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let plain = anyhow::Error::from(io).context("cannot read x.toml");
        assert_eq!(
            error_text(&plain),
            "cannot read x.toml: No such file or directory"
        );
    }
}
