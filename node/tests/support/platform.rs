//! The whole platform as real processes: broker, payment, order, delivery
//! and kitchens, on free ports, killed on drop.
//!
//! The same shape as the `Platform` of `flow.rs` (which keeps its own copy
//! for now), shared here so that other test files need not copy it again.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::{json, Value};

use super::{free_port, wait_for, Http, Proc, World};

/// The platform under test: every process, its ports, and an HTTP client.
///
/// Fields drop in declaration order: the processes are killed before the
/// World removes their temp directory.
pub struct Platform {
    pub procs: HashMap<String, Proc>,
    pub w: World,
    pub http: Http,
    pub order_port: u16,
    pub payment_port: u16,
    pub delivery_port: u16,
}

impl Platform {
    /// The broker, payment, order and delivery; kitchens are up to the test.
    pub fn up(broker_extra: &[&str]) -> Platform {
        let mut p = Platform::new(broker_extra);
        p.payment();
        p.order();
        p.delivery();
        p
    }

    pub fn new(broker_extra: &[&str]) -> Platform {
        let w = World::new();
        let broker = w.broker(broker_extra);
        let mut procs = HashMap::new();
        procs.insert("broker".to_string(), broker);
        Platform {
            w,
            http: Http::default(),
            order_port: free_port(),
            payment_port: free_port(),
            delivery_port: free_port(),
            procs,
        }
    }

    pub fn start(&mut self, role: &str, id: &str, extra: &[&str]) {
        let p = self.w.node(role, id, extra);
        self.procs.insert(id.to_string(), p);
    }

    pub fn payment(&mut self) {
        self.payment_declining("0");
    }

    /// Payment that declines this share of payments.
    pub fn payment_declining(&mut self, rate: &str) {
        let http = format!("127.0.0.1:{}", self.payment_port);
        self.start(
            "payment",
            "payment",
            &["--http", &http, "--latency-ms", "0", "--decline-rate", rate],
        );
        self.http.wait_up(&format!("http://{http}/healthz"));
    }

    pub fn order(&mut self) {
        let http = format!("127.0.0.1:{}", self.order_port);
        let pay = format!("http://127.0.0.1:{}", self.payment_port);
        self.start(
            "order",
            "order",
            &[
                "--http",
                &http,
                "--payment-url",
                &pay,
                "--payment-timeout-ms",
                "1000",
            ],
        );
        self.http.wait_up(&format!("http://{http}/healthz"));
    }

    pub fn kitchen(&mut self, id: &str, prep_ms: &str, ovens: &str) {
        self.start("kitchen", id, &["--ovens", ovens, "--prep-ms", prep_ms]);
    }

    pub fn delivery(&mut self) {
        let http = format!("127.0.0.1:{}", self.delivery_port);
        self.start(
            "delivery",
            "delivery",
            &["--http", &http, "--drivers", "3", "--trip-ms", "0"],
        );
        self.http.wait_up(&format!("http://{http}/healthz"));
    }

    pub fn proc(&mut self, id: &str) -> &mut Proc {
        self.procs.get_mut(id).expect("started")
    }

    pub fn orders_url(&self) -> String {
        format!("http://127.0.0.1:{}/orders", self.order_port)
    }

    pub fn place(&self) -> (u16, Value) {
        let body = json!({
            "customer": {"name": "Ada", "address": "Seestrasse 1, 8002 Zürich"},
            "items": [{"pizza": "margherita", "qty": 2}]
        });
        self.http.post(&self.orders_url(), &body)
    }

    /// Places `n` orders, all of which must be accepted; returns their ids.
    pub fn place_many(&self, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                let (status, body) = self.place();
                assert_eq!(status, 201, "{body}");
                body["order_id"].as_str().expect("an order id").to_string()
            })
            .collect()
    }

    pub fn view(&self, id: &str) -> Value {
        self.http.get(&format!("{}/{id}", self.orders_url())).1
    }

    pub fn wait_state(&self, ids: &[String], state: &str, limit: Duration) {
        wait_for(limit, &format!("{} orders to be {state}", ids.len()), || {
            ids.iter().all(|id| self.view(id)["state"] == state)
        });
    }

    /// Completed cooks per order, from the kitchens' logs.
    pub fn cooks(&self, kitchens: &[&str]) -> BTreeMap<String, Vec<String>> {
        let mut by_order: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for k in kitchens {
            for line in self.w.log_events(k, "ticket cooked") {
                let order = line["order_id"].as_str().unwrap_or_default().to_string();
                by_order.entry(order).or_default().push(k.to_string());
            }
        }
        by_order
    }
}
