//! The kitchen: consumes queue `kitchen`, one ticket per free oven.
//!
//! For each ticket: check stock, publish `order.cooking`, cook for the prep
//! time, publish `order.ready`, put the order on queue `delivery`, then ack.
//! A ticket it cannot make (out of stock) is answered with
//! `order.cancelling`; the order node then compensates (refund, cancel).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use contracts::events::{self, KitchenTicket, OrderCancelling, OrderCooking, OrderReady};
use contracts::queue::{Delivery, DELIVERY, KITCHEN};
use contracts::Envelope;
use tracing::Instrument;

pub mod decide;

use decide::{plan, Plan};

use crate::config::CommonArgs;
use crate::otlp;
use crate::runtime::worker::{self, Handled};
use crate::runtime::{Node, Outgoing};
use crate::services::assets::{Menu, Stock};
use crate::services::range::MsRange;

/// `pizza-node kitchen`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Ovens: tickets cooked at once (the credit announced to the keeper).
    #[arg(long, default_value_t = 2)]
    pub ovens: u32,
    /// Prep time in ms (a range like 5000..10000, or one value; 0 = instant).
    #[arg(long, default_value = "5000..10000")]
    pub prep_ms: MsRange,
    /// Starting stock (TOML); defaults to assets/stock.toml.
    #[arg(long)]
    pub stock: Option<PathBuf>,
    /// The menu (TOML); defaults to assets/menu.toml.
    #[arg(long)]
    pub menu: Option<PathBuf>,
}

struct Kitchen {
    node: Node,
    menu: Menu,
    stock: Mutex<Stock>,
    prep: MsRange,
    ovens: u32,
}

/// Runs the kitchen.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let node = crate::runtime::start::start_node(&args.common, contracts::trust::role::KITCHEN).await?;
    let kitchen = Arc::new(Kitchen {
        node: node.clone(),
        menu: Menu::load(args.menu.as_deref())?,
        stock: Mutex::new(Stock::load(args.stock.as_deref())?),
        prep: args.prep_ms,
        ovens: args.ovens,
    });
    kitchen.figures();
    tracing::info!(kitchen = %node.id(), ovens = args.ovens, prep_ms = %args.prep_ms, "kitchen open");
    let k = kitchen.clone();
    worker::run(node.clone(), KITCHEN, args.ovens, move |d| {
        let k = k.clone();
        async move { k.cook(d).await }
    })
    .await?;
    node.shutdown().await;
    Ok(())
}

impl Kitchen {
    fn lock_stock(&self) -> std::sync::MutexGuard<'_, Stock> {
        self.stock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn figures(&self) {
        let busy = self
            .node
            .counters()
            .in_flight
            .load(std::sync::atomic::Ordering::Relaxed);
        let ovens = u64::from(self.ovens);
        let low: Vec<String> = self
            .lock_stock()
            .stock
            .iter()
            .filter(|(_, n)| **n < 10)
            .map(|(i, n)| format!("{i}: {n}"))
            .collect();
        self.node.set_figures(|f| {
            f.kitchen = contracts::status::KitchenFigures {
                ovens: Some(ovens),
                ovens_busy: Some(busy),
                stock_low: Some(low),
            }
        });
    }

    async fn emit<E: events::Event>(
        &self,
        payload: &E,
        ticket: &Envelope,
        seq: u64,
    ) -> Result<Envelope, String> {
        let env = events::follow(payload, ticket, seq, self.node.id()).map_err(|e| e.to_string())?;
        self.node.emit(&env).await.map_err(|e| e.to_string())?;
        Ok(env)
    }

    async fn cook(&self, d: Delivery) -> Handled {
        let ticket = d.envelope;
        let order = ticket.order_id.clone();
        let body: KitchenTicket = match events::decode(&ticket) {
            Ok(b) => b,
            Err(e) => return Handled::Reject(format!("not a kitchen ticket: {e}")),
        };
        // Anyone on the broker can put a ticket: hold it to the rules of an
        // order (a qty of 4 billion would fill the memory in `plan`).
        if let Err(e) =
            contracts::api::validate_order(&body.customer, &body.items, |p| self.menu.get(p).is_some())
        {
            return Handled::Reject(format!(
                "not a ticket a kitchen cooks: {}: {}",
                e.field, e.message
            ));
        }
        let id = self.node.id().to_string();
        let faked_out = self.node.faults().out_of_stock;
        let plan = plan(&body, &self.menu, &mut self.lock_stock(), &faked_out);
        let result = match plan {
            Plan::Refuse(reason) => {
                tracing::warn!(kitchen = %id, order_id = %order, trace_id = %ticket.trace_id, %reason, "ticket refused");
                let reason = format!("{id} is {reason}");
                self.emit(&OrderCancelling { reason }, &ticket, ticket.seq + 1)
                    .await
                    .map(|_| ())
            }
            Plan::Cook(_) => {
                let span = otlp::span("cooking", otlp::Kind::Internal, &order);
                otlp::under_order(&span, &ticket.trace_id);
                self.bake(&id, &ticket, body).instrument(span).await
            }
        };
        self.figures();
        match result {
            Ok(()) => Handled::Done,
            // The broker is unreachable: the outbox keeps what was written;
            // retrying the ticket re-publishes the rest (same seqs, deduped).
            Err(e) => Handled::Retry(e),
        }
    }

    async fn bake(&self, id: &str, ticket: &Envelope, body: KitchenTicket) -> Result<(), String> {
        let started = std::time::Instant::now();
        let cooking = self
            .emit(
                &OrderCooking {
                    kitchen: id.to_string(),
                },
                ticket,
                ticket.seq + 1,
            )
            .await?;
        otlp::record(|| otlp::wait_span("queue wait", ticket, cooking.occurred_at));
        self.figures();
        let extra = std::time::Duration::from_millis(self.node.faults().latency_ms);
        tokio::time::sleep(self.prep.sample() + extra).await;
        let ready = OrderReady {
            kitchen: id.to_string(),
        };
        let ready = events::follow(&ready, ticket, ticket.seq + 2, id).map_err(|e| e.to_string())?;
        let delivery = events::DeliveryTicket {
            kitchen: id.to_string(),
            customer: body.customer,
        };
        let handoff = events::follow(&delivery, &ready, ticket.seq + 2, id).map_err(|e| e.to_string())?;
        // Ready, the hand-off to delivery and the ticket's inbox record in
        // one write: a kill -9 after it cannot bring the ticket back.
        self.node
            .finish(
                ticket,
                &[Outgoing::Event(&ready), Outgoing::Put(DELIVERY, &handoff)],
            )
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(
            kitchen = %id,
            order_id = %ticket.order_id,
            trace_id = %ticket.trace_id,
            cook_ms = started.elapsed().as_millis() as u64,
            "ticket cooked"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::api::{Customer, Item};

    fn ticket(pizza: &str, qty: u32) -> KitchenTicket {
        KitchenTicket {
            items: vec![Item {
                pizza: pizza.into(),
                qty,
            }],
            customer: Customer {
                name: "Ada".into(),
                address: "Seestrasse 1".into(),
            },
        }
    }

    #[test]
    fn cooks_and_takes_stock() {
        let menu = Menu::load(None).unwrap();
        let mut stock = Stock {
            stock: [("dough", 2), ("tomato", 2), ("mozzarella", 2), ("basil", 2)]
                .map(|(i, n)| (i.to_string(), n))
                .into(),
        };
        assert!(
            matches!(plan(&ticket("margherita", 2), &menu, &mut stock, &[]), Plan::Cook(v) if v.len() == 8)
        );
        assert_eq!(
            plan(&ticket("margherita", 1), &menu, &mut stock, &[]),
            Plan::Refuse("out of basil".into())
        );
    }

    #[test]
    fn refuses_what_it_cannot_make() {
        let menu = Menu::load(None).unwrap();
        let mut stock = Stock::load(None).unwrap();
        assert_eq!(
            plan(
                &ticket("margherita", 1),
                &menu,
                &mut stock,
                &["mozzarella".into()]
            ),
            Plan::Refuse("out of mozzarella".into())
        );
        assert!(
            matches!(plan(&ticket("hawaii", 1), &menu, &mut stock, &[]), Plan::Refuse(r) if r.contains("hawaii"))
        );
    }
}
