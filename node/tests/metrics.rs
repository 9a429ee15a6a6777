//! Prometheus `/metrics` on every node, read as Prometheus reads it: each
//! node's output passes `promtool check metrics`, and a real Prometheus
//! scraping the broker sees the queue depth the keeper itself reports.
//!
//! Needs Debian's `prometheus` package (`promtool`, `prometheus`); `.ci/run`
//! installs it.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::platform::Platform;
use support::{free_port, wait_for, Proc};

/// A queue nobody consumes: its depth stays put while Prometheus scrapes.
const QUEUE: &str = "metrics-probe";
const PUTS: u64 = 7;

fn tool(name: &str) -> String {
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
        let path = format!("{dir}/{name}");
        if std::path::Path::new(&path).exists() {
            return path;
        }
    }
    panic!("`{name}` is not installed: apt-get install prometheus (.ci/run does)");
}

/// `promtool check metrics` on `text`: its complaints, if any.
fn promtool_check(text: &str) -> Result<(), String> {
    let mut child = Command::new(tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("promtool reads");
    let out = child.wait_with_output().expect("promtool ends");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn scrape(p: &Platform, url: &str) -> String {
    let r = p.http.client().get(url).send().expect("GET /metrics answers");
    assert_eq!(r.status().as_u16(), 200, "{url}");
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{url}: {ct}");
    r.text().expect("a text body")
}

/// The value of the first sample of `series` whose labels include `label`.
fn sample(text: &str, series: &str, label: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(&format!("{series}{{")) && l.contains(label))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Every `pizza_...` series name in `text`.
fn series_named(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("pizza_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

#[test]
fn the_shipped_prometheus_config_and_alert_rules_pass_promtool() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/prometheus");
    for (what, file) in [("rules", "rules.yml"), ("config", "prometheus.yml")] {
        let out = Command::new(tool("promtool"))
            .args(["check", what])
            .arg(dir.join(file))
            .output()
            .expect("promtool runs");
        let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "promtool check {what} {file}: {said}");
    }
    let rules = std::fs::read_to_string(dir.join("rules.yml")).expect("rules.yml reads");
    for alert in [
        "PizzaQueueBacklogGrowing",
        "PizzaDeadLetters",
        "PizzaBreakerOpen",
        "PizzaNodeDown",
    ] {
        assert!(rules.contains(&format!("alert: {alert}")), "{alert} is missing");
    }
}

#[test]
fn every_node_serves_metrics_promtool_accepts_and_prometheus_scrapes_the_keepers_queue_depth() {
    let broker_metrics = free_port();
    let kitchen_metrics = free_port();
    let mut p = Platform::up(&["--metrics", &format!("127.0.0.1:{broker_metrics}")]);
    let kitchen_addr = format!("127.0.0.1:{kitchen_metrics}");
    p.start(
        "kitchen",
        "kitchen-1",
        &["--ovens", "3", "--prep-ms", "0", "--metrics", &kitchen_addr],
    );
    p.w.wait_consumers("kitchen", &["kitchen-1"]);

    // Work for every node: one order through the whole flow, and puts on a
    // queue that nobody consumes.
    let ids = p.place_many(1);
    p.wait_state(&ids, "delivered", Duration::from_secs(60));
    let mut producer = p.w.producer(
        "probe",
        &[
            "--queue",
            QUEUE,
            "--count",
            &PUTS.to_string(),
            "--keys",
            &PUTS.to_string(),
        ],
    );
    assert_eq!(
        producer.wait_exit(Duration::from_secs(60)),
        Some(0),
        "the puts were confirmed"
    );

    let urls = [
        ("broker", format!("http://127.0.0.1:{broker_metrics}/metrics")),
        ("kitchen-1", format!("http://127.0.0.1:{kitchen_metrics}/metrics")),
        ("order", format!("http://127.0.0.1:{}/metrics", p.order_port)),
        ("payment", format!("http://127.0.0.1:{}/metrics", p.payment_port)),
        (
            "delivery",
            format!("http://127.0.0.1:{}/metrics", p.delivery_port),
        ),
    ];
    // The heartbeat records once a second and the keeper every 500 ms:
    // wait until each node's own figures are in.
    let expect = [
        (
            "broker",
            "pizza_queue_messages_ready",
            format!("queue=\"{QUEUE}\""),
        ),
        ("kitchen-1", "pizza_kitchen_ovens", String::new()),
        ("order", "pizza_orders", "state=\"delivered\"".to_string()),
        (
            "payment",
            "pizza_http_requests_total",
            "route=\"/pay\"".to_string(),
        ),
        ("delivery", "pizza_delivery_delivered_total", String::new()),
    ];
    let mut exported = std::collections::BTreeSet::new();
    for ((id, url), (_, series, label)) in urls.iter().zip(&expect) {
        let mut text = String::new();
        wait_for(Duration::from_secs(20), &format!("{id}'s {series}"), || {
            text = scrape(&p, url);
            sample(&text, series, label).is_some_and(|v| v > 0.0)
        });
        assert!(
            text.contains(&format!("node=\"{id}\"")),
            "{id}: every series names its node\n{text}"
        );
        if let Err(why) = promtool_check(&text) {
            panic!("promtool refuses {id}'s metrics: {why}\n{text}");
        }
        exported.extend(
            text.lines()
                .filter_map(|l| l.strip_prefix("# TYPE "))
                .filter_map(|l| l.split(' ').next())
                .map(str::to_string),
        );
    }
    // The shipped alert rules and dashboard ask only for series that exist.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for asset in [
        "assets/prometheus/rules.yml",
        "assets/grafana/pizza-platform.json",
    ] {
        let text = std::fs::read_to_string(root.join(asset)).expect("the asset reads");
        for name in series_named(&text) {
            let base = name.trim_end_matches("_bucket");
            assert!(
                exported.contains(base),
                "{asset} asks for {name}, which no node exports: {exported:?}"
            );
        }
    }
    let broker = scrape(&p, &urls[0].1);
    let ready = sample(
        &broker,
        "pizza_queue_messages_ready",
        &format!("queue=\"{QUEUE}\""),
    );
    assert_eq!(ready, Some(PUTS as f64), "{broker}");
    let order = scrape(&p, &urls[2].1);
    assert_eq!(
        sample(&order, "pizza_orders", "state=\"delivered\""),
        Some(1.0),
        "{order}"
    );
    assert_eq!(
        sample(&order, "pizza_breaker_state", "state=\"closed\""),
        Some(1.0),
        "{order}"
    );
    assert!(
        sample(&order, "pizza_http_requests_total", "route=\"/orders\"").is_some_and(|v| v >= 1.0),
        "{order}"
    );

    // The keeper's own figures, from its retained stats.
    let mqtt = p.w.watch("metrics-test", &["pizza/q/stats"]);
    let stats = mqtt.expect("pizza/q/stats", Duration::from_secs(10), |v| {
        v["queues"]
            .as_array()
            .is_some_and(|qs| qs.iter().any(|q| q["name"] == QUEUE))
    });
    let keeper_ready = stats["queues"]
        .as_array()
        .and_then(|qs| qs.iter().find(|q| q["name"] == QUEUE))
        .and_then(|q| q["ready"].as_u64());
    assert_eq!(keeper_ready, Some(PUTS), "{stats}");

    // A real Prometheus scraping the broker every second.
    let web = free_port();
    let config = p.w.path("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: pizza\n    static_configs:\n      - targets: ['127.0.0.1:{broker_metrics}']\n"
        ),
    )
    .expect("the config is written");
    let _prometheus = Proc::program(
        "prometheus",
        &tool("prometheus"),
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", p.w.path("tsdb").display()),
            format!("--web.listen-address=127.0.0.1:{web}"),
            "--log.level=warn".to_string(),
        ],
    );
    let query =
        format!("http://127.0.0.1:{web}/api/v1/query?query=pizza_queue_messages_ready{{queue=\"{QUEUE}\"}}");
    let mut scraped = None;
    wait_for(
        Duration::from_secs(60),
        "Prometheus to scrape the queue depth",
        || {
            let (status, body) = p.http.get(&query);
            scraped = body["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|v| v.parse::<u64>().ok());
            status == 200 && scraped.is_some()
        },
    );
    assert_eq!(scraped, keeper_ready, "Prometheus saw what the keeper reports");
}
