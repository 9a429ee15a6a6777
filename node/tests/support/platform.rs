//! The whole platform as real processes (broker, payment, order, kitchens,
//! delivery) on free ports, for the flow and ordering tests.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::{json, Value};

use super::{free_port, wait_for, Http, Mqtt, Proc, World};

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

    /// [`Platform::up`] with one kitchen, `id`, cooking in `prep_ms` on
    /// `ovens` ovens.
    pub fn with_kitchen(id: &str, prep_ms: &str, ovens: &str) -> Platform {
        let mut p = Platform::up(&[]);
        p.kitchen(id, prep_ms, ovens);
        p
    }

    pub fn new(broker_extra: &[&str]) -> Platform {
        Platform::in_world(World::new(), broker_extra)
    }

    /// The broker in a signed world: every node started signs and checks.
    pub fn signed(broker_extra: &[&str]) -> Platform {
        Platform::in_world(World::signed(), broker_extra)
    }

    fn in_world(w: World, broker_extra: &[&str]) -> Platform {
        let broker = w.broker(broker_extra);
        Platform::around(w, [("broker", broker)])
    }

    /// Mosquitto as the broker and `pizza-node keeper` beside it (procs
    /// `mosquitto` and `keeper`): no embedded broker at all.
    pub fn on_mosquitto() -> Platform {
        Platform::on_mosquitto_in(World::new())
    }

    /// [`on_mosquitto`](Self::on_mosquitto) with a login per node and the
    /// ACL of the permission table: `nodes` (`(id, role)`) are the nodes the
    /// test will start, the keeper (role broker) and `test` (role control)
    /// are added.
    pub fn on_mosquitto_with_logins(nodes: &[(&str, &str)]) -> Platform {
        let mut w = World::new();
        w.logins = true;
        let lines: String = nodes
            .iter()
            .chain(&[("keeper", "broker")])
            .map(|(id, role)| format!("{id}:{role}\n"))
            .collect();
        std::fs::write(w.path("nodes.txt"), lines).expect("nodes.txt");
        Platform::on_mosquitto_in(w)
    }

    fn on_mosquitto_in(w: World) -> Platform {
        let mosquitto = w.mosquitto();
        let keeper = w.keeper("keeper", "keeper", true);
        Platform::around(w, [("mosquitto", mosquitto), ("keeper", keeper)])
    }

    /// A platform in `w` whose broker side is `procs` (already up).
    fn around<const N: usize>(w: World, procs: [(&str, Proc); N]) -> Platform {
        Platform {
            w,
            http: Http::default(),
            order_port: free_port(),
            payment_port: free_port(),
            delivery_port: free_port(),
            procs: procs.into_iter().map(|(id, p)| (id.to_string(), p)).collect(),
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
        self.order_with(&[]);
    }

    /// The order node with extra flags (e.g. the breaker's).
    pub fn order_with(&mut self, extra: &[&str]) {
        let http = format!("127.0.0.1:{}", self.order_port);
        let pay = format!("http://127.0.0.1:{}", self.payment_port);
        let mut args = vec![
            "--http",
            &http,
            "--payment-url",
            &pay,
            "--payment-timeout-ms",
            "1000",
        ];
        args.extend_from_slice(extra);
        self.start("order", "order", &args);
        self.http.wait_up(&format!("http://{http}/healthz"));
    }

    pub fn kitchen(&mut self, id: &str, prep_ms: &str, ovens: &str) {
        self.start("kitchen", id, &["--ovens", ovens, "--prep-ms", prep_ms]);
    }

    /// A kitchen that never runs out: for tests of the flow under load or
    /// faults, not of the saga (the default stock cancels orders after a few
    /// hundred).
    pub fn kitchen_stocked(&mut self, id: &str, prep_ms: &str, ovens: &str) {
        let stock = self.w.path("stock.toml");
        if !stock.exists() {
            std::fs::write(
                &stock,
                "[stock]\ndough = 1000000\ntomato = 1000000\nmozzarella = 1000000\nbasil = 1000000\n",
            )
            .expect("a stock file");
        }
        let stock = stock.display().to_string();
        self.start(
            "kitchen",
            id,
            &["--ovens", ovens, "--prep-ms", prep_ms, "--stock", &stock],
        );
    }

    /// `DELETE /orders/{id}`.
    pub fn cancel(&self, id: &str) -> (u16, Value) {
        let url = format!("{}/{id}", self.orders_url());
        if !self.w.signed {
            return self.http.delete(&url);
        }
        // On a signed platform cancelling takes the operator's token.
        let token = self.w.token("control-room", "control", "order", "orders:cancel");
        match self.http.client().delete(url).bearer_auth(token).send() {
            Ok(r) => (r.status().as_u16(), r.json().unwrap_or(Value::Null)),
            Err(_) => (0, Value::Null),
        }
    }

    /// Delivery whose trips take `trip_ms`.
    pub fn delivery_taking(&mut self, trip_ms: &str) {
        let http = format!("127.0.0.1:{}", self.delivery_port);
        self.start(
            "delivery",
            "delivery",
            &["--http", &http, "--drivers", "3", "--trip-ms", trip_ms],
        );
        self.http.wait_up(&format!("http://{http}/healthz"));
    }

    /// Delivery with instant trips.
    pub fn delivery(&mut self) {
        self.delivery_taking("0");
    }

    /// A raw MQTT client, like the control room's, connected as `id`.
    pub fn mqtt(&self, id: &str) -> Mqtt {
        self.w.test_client(id)
    }

    /// Sends `faults` to `node` the way the control room does, and waits
    /// until its heartbeat shows `shown` (a field of `faults`) in effect.
    /// A command reaches a node only once it listens, hence the first wait
    /// for a heartbeat.
    pub fn set_faults(&self, mqtt: &Mqtt, node: &str, faults: &Value, shown: &str) {
        let status = format!("pizza/nodes/{node}/status");
        mqtt.subscribe(&status);
        mqtt.expect(&status, Duration::from_secs(60), |s| s["state"] == "up");
        let command = json!({"command": "set_faults", "faults": faults});
        mqtt.publish(&format!("pizza/control/{node}"), command.to_string());
        mqtt.expect(&status, Duration::from_secs(60), |s| {
            s["faults"][shown] == faults[shown]
        });
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

pub fn history_kinds(view: &Value) -> Vec<String> {
    view["history"]
        .as_array()
        .map(|h| {
            h.iter()
                .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// What the event log, the delivery node and the kitchens say about a set
/// of accepted orders (Jepsen's total-queue check, after the fact).
#[derive(Debug, Default)]
pub struct Tally {
    /// Orders without `order.ready` or `order.delivered` in the event log.
    pub missing: Vec<String>,
    /// Orders with either of them more than once in the event log.
    pub twice_in_log: Vec<String>,
    /// Orders the delivery node logged as delivered more than once.
    pub delivered_twice: Vec<String>,
    /// Orders whose ticket was cooked more than once (by any kitchens).
    pub cooked_twice: Vec<String>,
}

impl Tally {
    /// Fails unless every order is in the log once and was delivered once.
    pub fn assert_each_once_in_the_log_and_delivered_once(&self) {
        assert!(
            self.missing.is_empty(),
            "not in the event log: {:?}",
            self.missing
        );
        assert!(
            self.twice_in_log.is_empty(),
            "cooked or delivered twice in the log: {:?}",
            self.twice_in_log
        );
        assert!(
            self.delivered_twice.is_empty(),
            "delivered twice: {:?}",
            self.delivered_twice
        );
    }
}

impl Platform {
    /// Counts, for each of `ids`, its `order.ready` and `order.delivered`
    /// in the event log, its deliveries in the delivery node's log and its
    /// cooks in the kitchens' logs.
    pub fn tally(&self, ids: &[String], kitchens: &[&str]) -> Tally {
        let mqtt = self.mqtt("test-tally");
        mqtt.subscribe("pizza/log/reply/test-tally");
        let mut tally = Tally::default();
        for (n, id) in ids.iter().enumerate() {
            let request = format!("q-{n}");
            mqtt.publish(
                "pizza/log/query/test-tally",
                json!({"request_id": request, "order_id": id}).to_string(),
            );
            let reply = mqtt.expect("pizza/log/reply/test-tally", Duration::from_secs(30), |r| {
                r["request_id"] == request
            });
            let count = |kind: &str| {
                reply["events"]
                    .as_array()
                    .map_or(0, |e| e.iter().filter(|e| e["kind"] == kind).count())
            };
            match (count("order.ready"), count("order.delivered")) {
                (1, 1) => {}
                (0, _) | (_, 0) => tally.missing.push(id.clone()),
                _ => tally.twice_in_log.push(id.clone()),
            }
        }
        let mut delivered: BTreeMap<String, usize> = BTreeMap::new();
        for line in self.w.log_events("delivery", "delivered") {
            *delivered
                .entry(line["order_id"].as_str().unwrap_or_default().to_string())
                .or_default() += 1;
        }
        tally.delivered_twice = delivered
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(o, _)| o)
            .collect();
        tally.cooked_twice = self
            .cooks(kitchens)
            .into_iter()
            .filter(|(_, k)| k.len() > 1)
            .map(|(o, _)| o)
            .collect();
        tally
    }
}
