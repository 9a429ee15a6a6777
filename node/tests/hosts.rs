//! Separate hosts: every node in a network namespace of its own, with its
//! own address, all joined by a bridge (support::net). Nothing may assume
//! 127.0.0.1: the order node reaches payment by its URL, delivery's
//! `/recall` through the address delivery advertises, and the test reaches
//! the order node across the bridge. Needs root; without network
//! namespaces the test fails with the reason, it does not skip.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::net::Net;
use support::{free_port, wait_for, Http, Proc, World};

const LONG: Duration = Duration::from_secs(90);

struct Hosts {
    // Drop order: processes first, then the namespaces, then the temp dir.
    procs: Vec<Proc>,
    /// Kept for its drop: it deletes the namespaces.
    _net: Net,
    w: World,
    http: Http,
    order_url: String,
}

impl Hosts {
    fn orders(&self) -> String {
        format!("{}/orders", self.order_url)
    }

    fn place(&self) -> String {
        let body = json!({
            "customer": {"name": "Ada", "address": "Seestrasse 1"},
            "items": [{"pizza": "margherita", "qty": 1}]
        });
        let (status, body) = self.http.post(&self.orders(), &body);
        assert_eq!(status, 201, "{body}");
        body["order_id"].as_str().expect("an order id").to_string()
    }

    fn view(&self, id: &str) -> Value {
        self.http.get(&format!("{}/{id}", self.orders())).1
    }

    fn wait_state(&self, ids: &[String], state: &str) {
        wait_for(LONG, &format!("{} orders to be {state}", ids.len()), || {
            ids.iter().all(|id| self.view(id)["state"] == state)
        });
    }

    fn cooks(&self, order: &str) -> usize {
        ["kitchen-1", "kitchen-2"]
            .iter()
            .flat_map(|k| self.w.log_events(k, "ticket cooked"))
            .filter(|l| l["order_id"] == order)
            .count()
    }
}

/// Broker, payment, order, two kitchens and delivery, each on a host of its
/// own. Delivery listens on every address and advertises its own.
fn hosts() -> Hosts {
    let mut net = match Net::new() {
        Ok(n) => n,
        Err(why) => panic!("separate hosts need network namespaces: {why}"),
    };
    let w = World::new();
    let names = ["broker", "payment", "order", "kitchen-1", "kitchen-2", "delivery"];
    let mut ns = Vec::new();
    for (i, name) in names.iter().enumerate() {
        ns.push(
            net.host(name, 10 + i as u8)
                .unwrap_or_else(|e| panic!("host {name}: {e}")),
        );
    }
    let addr = |i: usize| net.addr(10 + i as u8);
    let (mqtt, pay, order, deliver) = (free_port(), free_port(), free_port(), free_port());
    let broker = format!("mqtt://{}:{mqtt}", addr(0));
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut procs = vec![w.node_in(
        &ns[0],
        "broker",
        "broker",
        &s(&["--listen", &format!("{}:{mqtt}", addr(0))]),
    )];
    let http = Http::default();
    let with_broker = |extra: &[&str]| {
        let mut v = s(&["--broker", &broker]);
        v.extend(s(extra));
        v
    };
    procs.push(w.node_in(
        &ns[1],
        "payment",
        "payment",
        &with_broker(&[
            "--http",
            &format!("{}:{pay}", addr(1)),
            "--latency-ms",
            "0",
            "--decline-rate",
            "0",
        ]),
    ));
    procs.push(w.node_in(
        &ns[2],
        "order",
        "order",
        &with_broker(&[
            "--http",
            &format!("{}:{order}", addr(2)),
            "--payment-url",
            &format!("http://{}:{pay}", addr(1)),
            "--payment-timeout-ms",
            "2000",
        ]),
    ));
    for k in [3, 4] {
        procs.push(w.node_in(
            &ns[k],
            "kitchen",
            names[k],
            &with_broker(&["--ovens", "2", "--prep-ms", "50..150"]),
        ));
    }
    procs.push(w.node_in(
        &ns[5],
        "delivery",
        "delivery",
        &with_broker(&[
            "--http",
            &format!("0.0.0.0:{deliver}"),
            "--advertise",
            &addr(5),
            "--drivers",
            "3",
            "--trip-ms",
            "3000..4000",
        ]),
    ));
    let order_url = format!("http://{}:{order}", addr(2));
    http.wait_up(&format!("{order_url}/healthz"));
    Hosts {
        procs,
        _net: net,
        w,
        http,
        order_url,
    }
}

#[test]
fn on_separate_hosts_orders_flow_a_cancellation_recalls_across_hosts_and_a_kitchen_kill_loses_nothing() {
    let mut h = hosts();
    // Delivery is found at the address it advertises, not at 0.0.0.0.
    let mut ids: Vec<String> = (0..6).map(|_| h.place()).collect();
    wait_for(LONG, "a kitchen to cook", || ids.iter().any(|id| h.cooks(id) > 0));
    // kill -9 of kitchen-1 (its namespace's process) mid-stream.
    let k1 = h
        .procs
        .iter_mut()
        .find(|p| p.name == "kitchen-1")
        .expect("kitchen-1");
    k1.kill9();
    ids.extend((0..4).map(|_| h.place()));
    h.wait_state(&ids, "delivered");
    // The kill can land after kitchen-1 finished a ticket (its result and
    // inbox record durable) but before its ack left: the keeper then hands
    // that ticket to kitchen-2, which cooks it again (at least once, as
    // promised; the result is absorbed by event id). Only the tickets of
    // kitchen-1's last cooks (one per oven, 2) may be cooked twice.
    let last_of_kitchen_1: Vec<serde_json::Value> =
        h.w.log_events("kitchen-1", "ticket cooked")
            .into_iter()
            .rev()
            .take(2)
            .map(|l| l["order_id"].clone())
            .collect();
    for id in &ids {
        let cooked = h.cooks(id);
        let at_the_kill = last_of_kitchen_1.iter().any(|o| o == id.as_str());
        assert!(
            cooked == 1 || (cooked == 2 && at_the_kill),
            "order {id} cooked {cooked} times (kitchen-1's last cooks: {last_of_kitchen_1:?})"
        );
    }

    // A cancellation on the road: the order node calls delivery's /recall
    // on the delivery host.
    let on_road = h.place();
    h.wait_state(std::slice::from_ref(&on_road), "out_for_delivery");
    let (status, body) = h.http.delete(&format!("{}/{on_road}", h.orders()));
    assert_eq!(status, 202, "{body}");
    h.wait_state(std::slice::from_ref(&on_road), "cancelled");
    let view = h.view(&on_road);
    let recalled = view["history"].as_array().is_some_and(|events| {
        events.iter().any(|e| {
            e["kind"] == "saga.step"
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("recall_driver") && d.contains("called back"))
        })
    });
    assert!(recalled, "the driver was not called back across hosts: {view}");
}
