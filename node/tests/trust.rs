//! A signed platform (every node with `--key` and `--trust`, as the control
//! room runs it) against an attacker on the broker: each forgery of issue
//! "Trust between nodes" is sent over raw MQTT, by a client with no key and
//! by one holding the kitchen's key, and changes nothing. The real orders
//! flow meanwhile, signed end to end.

mod support;

use std::time::Duration;

use contracts::events::kind;
use contracts::status::{NodeState, NodeStatus};
use contracts::Envelope;
use serde_json::{json, Value};
use support::platform::{history_kinds, Platform};
use support::wait_for;

const LONG: Duration = Duration::from_secs(60);

/// An envelope as a node would send it, for a forger to publish.
fn forged(kind: &str, order_id: &str, seq: u64, source: &str, payload: Value) -> Envelope {
    Envelope::new(
        kind,
        order_id,
        seq,
        "0af7651916cd43dd8448eb211c80319c",
        source,
        payload,
    )
}

fn kinds_in_the_log(p: &Platform, order_id: &str) -> Vec<String> {
    let (status, view) = p.http.get(&format!("{}/{order_id}/history", p.orders_url()));
    assert_eq!(status, 200, "{view}");
    view["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["kind"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn forged_events_puts_and_credits_change_nothing_and_real_orders_flow_signed() {
    let mut p = Platform::signed(&[]);
    p.payment();
    p.order();
    // No kitchen yet: the real order waits in `queued`, a fixed target.
    let (status, placed) = p.place();
    assert_eq!(status, 201, "{placed}");
    let id = placed["order_id"].as_str().expect("an order id").to_string();
    p.wait_state(std::slice::from_ref(&id), "queued", LONG);

    let attacker = p.mqtt("attacker");
    let watcher = p.mqtt("watcher");
    watcher.subscribe("pizza/events/security.refused");
    // 1. An anonymous order.delivered "from delivery".
    let delivered = forged(
        kind::ORDER_DELIVERED,
        &id,
        4,
        "delivery",
        json!({"driver": "Mallory"}),
    );
    attacker.publish("pizza/log/put", serde_json::to_vec(&delivered).expect("json"));
    // 2. The same, signed with the kitchen's real key (wrong role), and one
    //    claiming to be delivery but signed by the kitchen (wrong key).
    let kitchen_key =
        broker::trust::read_key(&p.w.make_key("kitchen-1", "kitchen"), "kitchen-1").expect("a key");
    let as_kitchen = forged(
        kind::ORDER_DELIVERED,
        &id,
        4,
        "kitchen-1",
        json!({"driver": "Mallory"}),
    );
    attacker.publish(
        "pizza/log/put",
        serde_json::to_vec(&kitchen_key.sign(&as_kitchen)).expect("json"),
    );
    attacker.publish(
        "pizza/log/put",
        serde_json::to_vec(&kitchen_key.sign(&delivered)).expect("json"),
    );
    // 3. A forged order.placed, and a ticket for that unpaid order.
    let fake = "ord_forged0000000000000000000000";
    let fake_placed = forged(
        kind::ORDER_PLACED,
        fake,
        1,
        "order",
        json!({"customer": {"name": "M", "address": "X"}, "items": [{"pizza": "margherita", "qty": 1}], "amount_cents": 0}),
    );
    attacker.publish("pizza/log/put", serde_json::to_vec(&fake_placed).expect("json"));
    let ticket = forged(
        kind::KITCHEN_TICKET,
        fake,
        3,
        "order",
        json!({"customer": {"name": "M", "address": "X"}, "items": [{"pizza": "margherita", "qty": 1}]}),
    );
    attacker.publish("pizza/q/kitchen/put", serde_json::to_vec(&ticket).expect("json"));
    attacker.publish(
        "pizza/q/kitchen/put",
        serde_json::to_vec(&kitchen_key.sign(&ticket)).expect("json"),
    );
    // 4. A thief's credit on the kitchen queue.
    let thief = p.mqtt("thief");
    thief.subscribe("pizza/q/kitchen/deliver/thief");
    thief.publish(
        "pizza/q/kitchen/credit/thief",
        json!({"credit": 10, "incarnation": "thief-1", "batch": true}).to_string(),
    );

    // The broker refused and counted each: 4 events, 2 puts, 1 credit.
    wait_for(LONG, "the broker to refuse the forgeries", || {
        let log = std::fs::read_to_string(p.w.path("broker.log")).unwrap_or_default();
        log.matches("security: an event was refused").count() >= 4
            && log.matches("security: a put was refused").count() >= 2
            && log.contains("security: a credit was refused")
    });
    // ... and told of them: security.refused alerts in the event log, one
    // per kind of refusal, naming the claimed sender.
    let alert = watcher.expect("pizza/events/security.refused", LONG, |e| {
        e["payload"]["what"] == "credit" && e["payload"]["sender"] == "thief"
    });
    assert_eq!(alert["source"], "broker", "{alert}");
    assert!(alert["sig"].is_string(), "the alert is signed: {alert}");
    let view = p.view(&id);
    assert_eq!(view["state"], "queued", "{view}");
    assert_eq!(view["driver"], Value::Null, "{view}");
    assert!(!kinds_in_the_log(&p, &id).contains(&kind::ORDER_DELIVERED.to_string()));
    assert_eq!(p.http.get(&format!("{}/{fake}", p.orders_url())).0, 404);

    // Now the kitchen and delivery: the real order is cooked and delivered,
    // by the real nodes, signed all the way; the forged ticket never is and
    // the thief gets nothing.
    p.kitchen_stocked("kitchen-1", "0", "2");
    p.delivery();
    let (status, second) = p.place();
    assert_eq!(status, 201, "{second}");
    let ids = vec![
        id.clone(),
        second["order_id"].as_str().expect("an id").to_string(),
    ];
    p.wait_state(&ids, "delivered", LONG);
    let view = p.view(&id);
    assert_ne!(view["driver"], "Mallory", "{view}");
    assert_eq!(
        history_kinds(&view)
            .iter()
            .filter(|k| *k == kind::ORDER_DELIVERED)
            .count(),
        1,
        "{view}"
    );
    let cooks = p.cooks(&["kitchen-1"]);
    let broker_log = std::fs::read_to_string(p.w.path("broker.log")).unwrap_or_default();
    // Exactly the 7 forgeries: no real node's message was refused.
    assert_eq!(broker_log.matches("security: ").count(), 7, "{broker_log}");
    assert!(
        !cooks.contains_key(fake),
        "the forged ticket was cooked: {cooks:?}"
    );
    assert_eq!(cooks.len(), 2, "{cooks:?}");
    assert!(thief.take_all().is_empty(), "the thief was given work");
}

#[test]
fn a_node_whose_key_is_not_in_the_trust_file_refuses_to_start() {
    let w = support::World::signed();
    let _broker = w.broker(&[]);
    // A key made elsewhere, for the same id: not the one the file lists.
    let other = w.path("elsewhere");
    let key = node::runtime::security::make_key(&other, "kitchen-9", "kitchen", &other.join("trust.json"))
        .expect("a key");
    w.make_key("kitchen-9", "kitchen");
    let args: Vec<String> = [
        "kitchen",
        "--id",
        "kitchen-9",
        "--broker",
        &w.broker_url(),
        "--data-dir",
        &w.path("kitchen-9").display().to_string(),
        "--key",
        &key.display().to_string(),
        "--trust",
        &w.trust_file().display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // It checks its keys before it connects, so it ends at once.
    let out = std::process::Command::new(support::pizza_node())
        .args(&args)
        .output()
        .expect("pizza-node runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("lists another key for node 'kitchen-9'"),
        "{stderr}"
    );
}

/// The delivery ids in a keeper delivery message (one, or a batch).
fn delivery_ids(message: &Value) -> Vec<String> {
    let one = message["delivery_id"].as_str().map(str::to_string);
    let batch = message["deliveries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["delivery_id"].as_str().map(str::to_string));
    one.into_iter().chain(batch).collect()
}

#[test]
fn forged_acks_control_commands_heartbeats_and_stream_acks_change_nothing() {
    let mut p = Platform::signed(&[]);
    p.payment();
    p.order();
    p.delivery();
    // A slow kitchen: its tickets are in the oven while the attacker acts.
    p.kitchen_stocked("kitchen-1", "2000", "2");
    let attacker = p.mqtt("attacker");
    let deliveries = "pizza/q/kitchen/deliver/kitchen-1";
    attacker.subscribe(deliveries);
    let ids = p.place_many(2);
    // Anyone may read a consumer's deliveries; acking them as that consumer
    // must not finish them, unsealed or sealed by another real node.
    let mut seen = Vec::new();
    wait_for(LONG, "the attacker to see both deliveries", || {
        seen.extend(
            attacker
                .take_all()
                .iter()
                .filter(|(t, _)| t == deliveries)
                .flat_map(|(_, m)| delivery_ids(m)),
        );
        seen.len() >= 2
    });
    let other = broker::trust::read_key(&p.w.make_key("kitchen-2", "kitchen"), "kitchen-2").expect("a key");
    for id in &seen {
        let ack = json!({"delivery_id": id, "outcome": "done"}).to_string();
        attacker.publish("pizza/q/kitchen/ack/kitchen-1", ack.clone());
        attacker.publish(
            "pizza/q/kitchen/ack/kitchen-1",
            contracts::seal::seal(&other, ack.as_bytes()),
        );
    }
    // A stop for delivery, unsealed and sealed by a kitchen.
    let stop = json!({"command": "stop"}).to_string();
    attacker.publish("pizza/control/delivery", stop.clone());
    attacker.publish(
        "pizza/control/delivery",
        contracts::seal::seal(&other, stop.as_bytes()),
    );
    // Delivery's heartbeat, pointing the order node's recalls elsewhere.
    let status = "pizza/nodes/delivery/status";
    attacker.subscribe(status);
    let mut beat = attacker.expect(status, LONG, |s| s["state"] == "up");
    beat["figures"]["http"] = json!("http://127.0.0.1:9");
    let fields = beat.as_object_mut().expect("a heartbeat is an object");
    fields.remove("signer");
    fields.remove("sig");
    attacker.publish(status, beat.to_string());
    // A delivery to the kitchen and a stream delivery to the order node's
    // book that skips far ahead, not sealed by the broker.
    attacker.publish(
        deliveries,
        json!({"delivery_id": "d-forged", "attempt": 1, "incarnation": "x", "envelope": forged(kind::KITCHEN_TICKET, &ids[0], 3, "order", json!({}))}).to_string(),
    );
    attacker.publish(
        "pizza/log/deliver/order",
        json!({"name": "book", "session": "s", "after": 0, "cursor": 0, "through": 1_000_000, "events": []})
            .to_string(),
    );
    // A confirm that would make the order node forget events unsent.
    attacker.publish(
        "pizza/log/confirm/order",
        json!({"event_ids": ["0190c9a2-0000-7000-8000-000000000000"]}).to_string(),
    );
    // A stream ack moving the order node's book past what it read.
    attacker.publish(
        "pizza/log/ack/order",
        json!({"name": "book", "position": 1_000_000}).to_string(),
    );

    wait_for(LONG, "the refusals", || {
        let broker = std::fs::read_to_string(p.w.path("broker.log")).unwrap_or_default();
        let delivery = std::fs::read_to_string(p.w.path("delivery.log")).unwrap_or_default();
        let order = std::fs::read_to_string(p.w.path("order.log")).unwrap_or_default();
        broker.matches("security: an ack was refused").count() >= 2 * seen.len()
            && broker.contains("security: a stream ack was refused")
            && delivery
                .matches("security: a control command was refused")
                .count()
                >= 2
            && order.contains("security: a heartbeat was refused")
            && order.contains("security: a stream delivery was refused")
            && order.contains("security: a confirm was refused")
            && std::fs::read_to_string(p.w.path("kitchen-1.log"))
                .unwrap_or_default()
                .contains("security: a delivery was refused")
            && broker.contains("security: a heartbeat was refused")
    });
    // The orders are cooked by the real kitchen, once each, and delivered
    // by a delivery node that is still running.
    p.wait_state(&ids, "delivered", LONG);
    let cooks = p.cooks(&["kitchen-1"]);
    for id in &ids {
        assert_eq!(cooks.get(id).map(Vec::len), Some(1), "{cooks:?}");
    }
    assert!(p.proc("delivery").running(), "the forged stop stopped delivery");
    let (status, third) = p.place();
    assert_eq!(status, 201, "{third}");
    let third = vec![third["order_id"].as_str().expect("an id").to_string()];
    p.wait_state(&third, "delivered", LONG);
}

/// (status, `error.code`) of a POST with an optional bearer token.
fn call(p: &Platform, url: &str, token: Option<&str>) -> (u16, String) {
    let mut request = p.http.client().post(url).json(&json!({}));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    match request.send() {
        Ok(r) => {
            let status = r.status().as_u16();
            let body: Value = r.json().unwrap_or(Value::Null);
            (
                status,
                body["error"]["code"].as_str().unwrap_or_default().to_string(),
            )
        }
        Err(e) => (0, e.to_string()),
    }
}

#[test]
fn the_synchronous_path_takes_only_bearer_tokens_of_the_right_node_audience_and_scope() {
    use contracts::token::scope;
    let mut p = Platform::signed(&[]);
    p.payment();
    p.order();
    p.delivery();
    // The order node's own token passes payment: the order is paid.
    let (status, placed) = p.place();
    assert_eq!(status, 201, "{placed}");
    let id = placed["order_id"].as_str().expect("an order id").to_string();

    let pay = format!("http://127.0.0.1:{}/pay", p.payment_port);
    let order_key = broker::trust::read_key(&p.w.make_key("order", "order"), "order").expect("a key");
    let now = contracts::token::now_s();
    let expired = order_key
        .token("payment", scope::PAYMENT, now - contracts::token::LIFETIME_S - 60)
        .expect("a token");
    let for_delivery = order_key.token("delivery", scope::PAYMENT, now).expect("a token");
    let not_listed = contracts::trust::Signer::from_seed("order", [7; 32])
        .token("payment", scope::PAYMENT, now)
        .expect("a token");
    let kitchen = p.w.token("kitchen-1", "kitchen", "payment", scope::PAYMENT);
    let unauthorized = (401, "unauthorized".to_string());
    assert_eq!(call(&p, &pay, None), unauthorized, "no token");
    assert_eq!(call(&p, &pay, Some("not-a-jwt")), unauthorized, "garbage");
    assert_eq!(call(&p, &pay, Some(&expired)), unauthorized, "expired");
    assert_eq!(
        call(&p, &pay, Some(&for_delivery)),
        unauthorized,
        "wrong audience"
    );
    assert_eq!(
        call(&p, &pay, Some(&not_listed)),
        unauthorized,
        "a key the trust file does not list"
    );
    assert_eq!(
        call(&p, &pay, Some(&kitchen)),
        (403, "forbidden".to_string()),
        "a kitchen's own token"
    );
    // With the right token the body is what is checked next: 400, not 401.
    let good = order_key.token("payment", scope::PAYMENT, now).expect("a token");
    assert_eq!(call(&p, &pay, Some(&good)).0, 400);

    // Recalling a driver takes the order node's recall token.
    let recall = format!("http://127.0.0.1:{}/recall/{id}", p.delivery_port);
    assert_eq!(call(&p, &recall, None), unauthorized);
    let wrong_scope = order_key.token("delivery", scope::PAYMENT, now).expect("a token");
    assert_eq!(call(&p, &recall, Some(&wrong_scope)).0, 403);

    // Reading an order stays open; cancelling takes the operator's token.
    assert_eq!(p.http.get(&format!("{}/{id}", p.orders_url())).0, 200);
    let (status, body) = p.http.delete(&format!("{}/{id}", p.orders_url()));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    let as_order = order_key.token("order", scope::CANCEL, now).expect("a token");
    let answer = p
        .http
        .client()
        .delete(format!("{}/{id}", p.orders_url()))
        .bearer_auth(as_order)
        .send()
        .expect("an answer");
    assert_eq!(
        answer.status().as_u16(),
        403,
        "the order node may not cancel for the operator"
    );
    let view = p.view(&id);
    assert_ne!(view["state"], "cancelling", "{view}");
    assert_ne!(view["state"], "cancelled", "{view}");
    let (status, body) = p.cancel(&id);
    assert_eq!(status, 202, "{body}");
}

#[test]
fn a_forged_heartbeat_holds_no_id_and_the_real_node_starts_past_it() {
    let mut p = Platform::signed(&[]);
    // A retained heartbeat "from kitchen-1", unsealed, naming a live local
    // process (this test): on an unsigned platform that holds the id, and
    // the real kitchen-1 would refuse to start.
    let mut forged = NodeStatus::offline("kitchen-1", "kitchen");
    forged.state = NodeState::Up;
    forged.host = node::runtime::claim::host_name();
    forged.pid = std::process::id();
    let status = "pizza/nodes/kitchen-1/status";
    let attacker = p.mqtt("attacker");
    attacker.publish_retained(status, serde_json::to_vec(&forged).expect("json"));
    attacker.close();
    let watcher = p.mqtt("watcher");
    watcher.subscribe(status);
    watcher.expect(status, LONG, |s| s["pid"] == std::process::id());

    p.kitchen("kitchen-1", "10", "1");
    let pid = p.procs["kitchen-1"].pid();
    // It started and beats, sealed, under its own pid.
    watcher.expect(status, LONG, |s| {
        s["pid"] == pid && s["state"] == "up" && s["signer"] == "kitchen-1"
    });
    wait_for(LONG, "kitchen-1 to say it refused the forged heartbeat", || {
        !p.w.log_events("kitchen-1", "security: a heartbeat was refused; it holds no id")
            .is_empty()
    });
    assert!(p.procs.get_mut("kitchen-1").expect("kitchen-1").running());
}
