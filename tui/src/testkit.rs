//! A deterministic model of a busy platform: the snapshot tests draw it, the
//! render bench fills it with 100,000 orders. Built only through `update`,
//! the way the running control room builds its model.

use contracts::api::{Customer, DriverView, Item};
use contracts::events::{self, Event};
use contracts::queue::{ConsumerFigures, QueueFigures, QueueStats};
use contracts::status::{BreakerState, Faults, NodeState, NodeStatus};
use contracts::Envelope;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::model::{Model, RunInfo};
use crate::msg::ChildEvent;
use crate::msg::Msg;
use crate::topology::Role;
use crate::update::update;

/// 2026-11-21 12:00:00 UTC.
pub fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_795_262_400).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// The sample's fixed facts.
pub fn info() -> RunInfo {
    RunInfo {
        broker: "mqtt://127.0.0.1:41883".into(),
        data_dir: "/tmp/pizza-platform/run-20261121-120000-4242".into(),
        log_dir: "/tmp/pizza-platform/run-20261121-120000-4242/logs".into(),
        ingredients: vec!["dough".into(), "tomato".into(), "mozzarella".into()],
        network_faults: false,
    }
}

/// A heartbeat of node `id` at `at`.
pub fn status(id: &str, role: &str, pid: u32, handled: u64, at: OffsetDateTime) -> NodeStatus {
    NodeStatus {
        id: id.into(),
        role: role.into(),
        pid,
        host: String::new(),
        state: NodeState::Up,
        started_at: rfc3339(t0()),
        at: rfc3339(at),
        handled,
        failed: 0,
        in_flight: 0,
        outbox: 0,
        faults: Faults::default(),
        figures: Default::default(),
    }
}

/// One event of order `n`, `ms` after t0.
pub fn event<E: Event>(body: &E, n: u64, seq: u64, ms: i64, source: &str) -> Envelope {
    let id = order_id(n);
    let mut env = events::envelope(body, id, seq, format!("{n:032x}"), source)
        .unwrap_or_else(|_| Envelope::new(E::KIND, order_id(n), seq, "", source, serde_json::Value::Null));
    env.event_id = Uuid::from_u128(((n as u128) << 8) | seq as u128);
    env.occurred_at = t0() + Duration::milliseconds(ms);
    env
}

/// Order `n`'s id, shaped like the order node's (`ord_` + 32 hex).
pub fn order_id(n: u64) -> String {
    format!("ord_0193{:028x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15) as u128)
}

/// The events of order `n`, started `start_ms` after t0, up to `steps` of
/// the happy path (1..=8).
pub fn order_events(n: u64, start_ms: i64, steps: u64, kitchen: &str, driver: &str) -> Vec<Envelope> {
    let customer = Customer {
        name: "Grace".into(),
        address: "12 Queue Ave".into(),
    };
    let at = |offset: i64| start_ms + offset;
    let mut all = vec![
        event(
            &events::OrderPlaced {
                customer: customer.clone(),
                items: vec![Item {
                    pizza: "margherita".into(),
                    qty: 1,
                }],
                amount_cents: 1250,
            },
            n,
            1,
            at(0),
            "order",
        ),
        event(
            &events::OrderPaid {
                payment_id: format!("pay_{n}"),
                amount_cents: 1250,
            },
            n,
            2,
            at(85),
            "order",
        ),
        event(
            &events::OrderQueued {
                queue: "kitchen".into(),
            },
            n,
            3,
            at(90),
            "order",
        ),
        event(
            &events::OrderCooking {
                kitchen: kitchen.into(),
            },
            n,
            4,
            at(1_500),
            kitchen,
        ),
        event(
            &events::OrderReady {
                kitchen: kitchen.into(),
            },
            n,
            5,
            at(8_500),
            kitchen,
        ),
        event(
            &events::DriverAssigned {
                driver: driver.into(),
                kitchen: Some(kitchen.into()),
            },
            n,
            6,
            at(9_200),
            "delivery",
        ),
        event(
            &events::CustomerNotified {
                message: "Your pizza is on its way!".into(),
            },
            n,
            7,
            at(9_201),
            "delivery",
        ),
        event(
            &events::OrderDelivered {
                driver: driver.into(),
            },
            n,
            8,
            at(15_000),
            "delivery",
        ),
    ];
    all.truncate(steps as usize);
    all
}

/// A busy platform at t0 + 60 s: six nodes (one crashed), two queues with
/// consumers, a dozen orders in every state, drivers on the road.
pub fn model() -> Model {
    let mut m = Model::new(info(), t0());
    let send = |m: &mut Model, msg: Msg| {
        update(m, msg);
    };
    let nodes = [
        ("broker", Role::Broker, 4243, 41243),
        ("payment", Role::Payment, 4244, 41878),
        ("order", Role::Order, 4245, 41880),
        ("kitchen-1", Role::Kitchen, 4246, 41246),
        ("kitchen-2", Role::Kitchen, 4247, 41247),
        ("delivery", Role::Delivery, 4248, 41882),
    ];
    // Nodes with an API serve /metrics on its port, the others on their own.
    for (id, role, pid, metrics_port) in nodes {
        send(
            &mut m,
            Msg::Child(ChildEvent::Spawned {
                id: id.into(),
                role,
                pid,
                metrics: Some(format!("http://127.0.0.1:{metrics_port}/metrics")),
                // As the supervisor routes them through the fault proxy.
                links: match role {
                    Role::Broker => vec![],
                    Role::Order => vec!["broker".into(), "payment".into()],
                    _ => vec!["broker".into()],
                },
            }),
        );
    }
    send(
        &mut m,
        Msg::Feed {
            connected: true,
            detail: String::new(),
        },
    );
    let now = t0() + Duration::seconds(60);
    for (i, (id, role, pid, _)) in nodes.iter().enumerate().skip(1) {
        let mut first = status(id, role.as_str(), *pid, 100, now - Duration::seconds(1));
        let mut second = status(id, role.as_str(), *pid, 100 + 3 * i as u64, now);
        if *id == "order" {
            first.figures.http = Some("http://127.0.0.1:41880".into());
            first.figures.order.breaker = Some(BreakerState::Closed);
            second.figures = first.figures.clone();
            second.figures.order.breaker = Some(BreakerState::Open);
        }
        if *id == "kitchen-2" {
            second.faults.latency_ms = 500;
            second.faults.out_of_stock = vec!["mozzarella".into()];
        }
        if *id == "delivery" {
            let drivers = vec![
                DriverView {
                    driver: "Ada".into(),
                    order_id: Some(order_id(3)),
                    since: Some(rfc3339(now - Duration::seconds(4))),
                },
                DriverView {
                    driver: "Brian".into(),
                    order_id: None,
                    since: None,
                },
                DriverView {
                    driver: "Chiara".into(),
                    order_id: Some(order_id(4)),
                    since: Some(rfc3339(now - Duration::seconds(12))),
                },
            ];
            second.figures.delivery.drivers = Some(drivers);
        }
        send(&mut m, Msg::Tick(now - Duration::seconds(1)));
        send(&mut m, Msg::Status(Box::new(first)));
        send(&mut m, Msg::Tick(now));
        send(&mut m, Msg::Status(Box::new(second)));
    }
    for (n, steps) in [
        (1, 8),
        (2, 8),
        (3, 6),
        (4, 7),
        (5, 5),
        (6, 4),
        (7, 3),
        (8, 3),
        (9, 2),
        (10, 1),
    ] {
        let kitchen = if n % 2 == 0 { "kitchen-2" } else { "kitchen-1" };
        let driver = if n % 2 == 0 { "Chiara" } else { "Ada" };
        for e in order_events(n, n as i64 * 3_000, steps, kitchen, driver) {
            send(&mut m, Msg::Event(Box::new(e)));
        }
    }
    let dead = events::QueueDeadLettered {
        queue: "kitchen".into(),
        reason: "out of stock: mozzarella".into(),
        event_id: None,
        order_id: Some(order_id(11)),
        attempts: 5,
    };
    let mut alert = event(&dead, 11, 0, 40_000, "broker");
    alert.order_id = String::new();
    send(&mut m, Msg::Event(Box::new(alert)));
    for i in 0..30u64 {
        let consumers = |c: &[(&str, u32, u32)]| {
            c.iter()
                .map(|(id, in_flight, credit)| ConsumerFigures {
                    id: (*id).into(),
                    credit: *credit,
                    in_flight: *in_flight,
                    online: true,
                })
                .collect()
        };
        send(
            &mut m,
            Msg::Stats(QueueStats {
                at: String::new(),
                queues: vec![
                    QueueFigures {
                        name: "kitchen".into(),
                        ready: (i * 7) % 13,
                        delayed: 1,
                        in_flight: 4,
                        dlq: 1,
                        in_rate: 2.5,
                        out_rate: 2.0,
                        consumers: consumers(&[("kitchen-1", 2, 2), ("kitchen-2", 2, 2)]),
                        ..Default::default()
                    },
                    QueueFigures {
                        name: "delivery".into(),
                        ready: i % 3,
                        in_flight: 2,
                        in_rate: 1.0,
                        out_rate: 1.0,
                        consumers: consumers(&[("delivery", 2, 3)]),
                        ..Default::default()
                    },
                ],
            }),
        );
    }
    send(&mut m, Msg::Child(killed("kitchen-1", Role::Kitchen)));
    m
}

/// Node `id` died of a kill -9 that nobody here asked for.
pub fn killed(id: &str, role: Role) -> ChildEvent {
    ChildEvent::Exited {
        id: id.into(),
        role,
        code: None,
        signal: Some(9),
        expected: false,
        last_words: None,
    }
}
