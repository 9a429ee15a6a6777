//! A burst right after start: 5,000 orders from 32 keep-alive connections.
//! Every one is accepted (payment is up) and every one is delivered; the
//! order node's link must not wedge under it.

mod support;

use std::time::Duration;

use serde_json::json;
use support::platform::Platform;
use support::{wait_for, Http};

const ORDERS: usize = 5_000;
const CONNECTIONS: usize = 32;

#[test]
fn five_thousand_orders_from_32_connections_are_all_accepted_and_delivered() {
    let mut p = Platform::new(&[]);
    p.payment();
    p.order();
    p.start(
        "delivery",
        "delivery",
        &[
            "--http",
            &format!("127.0.0.1:{}", p.delivery_port),
            "--drivers",
            "8",
            "--trip-ms",
            "0",
        ],
    );
    for k in ["kitchen-1", "kitchen-2"] {
        p.kitchen_stocked(k, "0", "8");
    }
    let url = p.orders_url();
    let body = json!({
        "customer": {"name": "Ada", "address": "Seestrasse 1, 8002 Zürich"},
        "items": [{"pizza": "margherita", "qty": 1}]
    });
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|w| {
            let (url, body) = (url.clone(), body.clone());
            std::thread::spawn(move || {
                let http = Http::default();
                let mut ids = Vec::new();
                let mut refused = Vec::new();
                for _ in (w..ORDERS).step_by(CONNECTIONS) {
                    match http.post(&url, &body) {
                        (201, v) => ids.push(v["order_id"].as_str().unwrap_or_default().to_string()),
                        (status, v) => refused.push((status, v)),
                    }
                }
                (ids, refused)
            })
        })
        .collect();
    let mut ids = Vec::new();
    let mut refused = Vec::new();
    for w in workers {
        let (i, r) = w.join().expect("a client thread");
        ids.extend(i);
        refused.extend(r);
    }
    eprintln!("accepted {} of {ORDERS}, refused {}", ids.len(), refused.len());
    assert!(
        refused.is_empty(),
        "refused: {:?}",
        &refused[..refused.len().min(5)]
    );
    assert_eq!(ids.len(), ORDERS);

    let mut open = ids.clone();
    wait_for(Duration::from_secs(240), "every order delivered", || {
        open.retain(|id| p.view(id)["state"] != "delivered");
        open.is_empty()
    });
}
