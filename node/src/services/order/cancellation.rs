//! The cancellation executor: the order node's orchestrated saga.
//!
//! A cancellation is a work item on queue `cancellation`, put there by
//! `DELETE /orders/{id}` (the customer) or by the order node when a kitchen
//! could not make an order. Being on a durable queue, it survives a crash of
//! the order node, and a cancellation that cannot finish lands in the
//! `cancellation.dlq` with its reason, where the keeper raises an alert and
//! an operator can re-queue it.
//!
//! The executor runs the steps one after another, each with
//! [`ATTEMPTS`] attempts and exponential backoff:
//!
//! 1. `withdraw_ticket`: the keeper takes the kitchen ticket off its queue if
//!    no kitchen has started it. A kitchen already cooking finishes, but its
//!    hand-off to delivery is dropped.
//! 2. `recall_driver`: the keeper takes the order off queue `delivery`, and a
//!    delivery node carrying it calls its driver back (`POST /recall`).
//! 3. `refund`: `POST /refund` on payment (idempotent there).
//! 4. `notify_customer`: `customer.notified` with the reason.
//!
//! then `order.cancelled`. Each finished step is an event (`saga.step`,
//! `payment.refunded`, `customer.notified`), so the order's history shows the
//! compensation, and a re-queued cancellation skips what is done.
//!
//! **Who numbers the events.** Until steps 1-2 have settled, a kitchen or a
//! driver may still publish events for the order (seq continues from the
//! message they hold). So the executor publishes nothing before nothing is
//! in flight anywhere, then numbers its events after the highest seq that
//! anyone used: the book's, the keeper's (`Withdrawn::last_seq`, which
//! includes a dropped hand-off) and the delivery node's (`Recalled::last_seq`).

use std::future::Future;
use std::time::{Duration, Instant};

use contracts::api::{Recalled, RefundRequest};
use contracts::events::{
    self, step, CancellationRequest, CustomerNotified, OrderCancelled, OrderCancelling, OrderPaid,
    PaymentRefunded, SagaStep, StepOutcome,
};
use contracts::order::{OrderFold, OrderState};
use contracts::queue::{Delivery, Withdrawn, DELIVERY, KITCHEN};
use contracts::token::scope;
use contracts::trust::role;
use contracts::Envelope;
use reqwest::StatusCode;
use tracing::Instrument;

use crate::otlp;
use crate::runtime::worker::Handled;
use crate::services::order::Shared;

/// Attempts per step before the cancellation goes to the DLQ.
pub const ATTEMPTS: u32 = 3;
/// Backoff after the first failed attempt; doubled after each further one.
const BACKOFF: Duration = Duration::from_millis(200);
/// How long one attempt waits for the keeper or a node to answer.
const ANSWER_WAIT: Duration = Duration::from_secs(2);
/// Longest wait for a kitchen to finish cooking (or a recalled driver to
/// come back) before the cancellation is retried later.
const SETTLE: Duration = Duration::from_secs(60);
/// Longest wait for the book to hold the events the others reported.
const CATCH_UP: Duration = Duration::from_secs(3);

/// What the order's events say about its cancellation so far.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Progress {
    /// The order's state.
    pub state: Option<OrderState>,
    /// Steps finished (done or skipped), from `saga.step`,
    /// `payment.refunded` and a notification after `order.cancelling`.
    pub finished: Vec<String>,
    /// The charge to refund, if the order was paid.
    pub payment_id: Option<String>,
    /// The delivery node that assigned a driver, if any.
    pub delivery_node: Option<String>,
    /// The reason recorded by `order.cancelling`, if it is out.
    pub reason: Option<String>,
}

impl Progress {
    /// Reads an order's folded events.
    pub fn of(fold: &OrderFold) -> Progress {
        let mut p = Progress {
            state: fold.state(),
            ..Progress::default()
        };
        for e in fold.applied() {
            match e.kind.as_str() {
                events::kind::ORDER_PAID => {
                    p.payment_id = events::decode::<OrderPaid>(e).ok().map(|x| x.payment_id);
                }
                events::kind::DRIVER_ASSIGNED => p.delivery_node = Some(e.source.clone()),
                events::kind::ORDER_CANCELLING => {
                    p.reason = events::decode::<OrderCancelling>(e).ok().map(|x| x.reason);
                }
                events::kind::SAGA_STEP => {
                    if let Ok(s) = events::decode::<SagaStep>(e) {
                        if s.outcome != StepOutcome::Failed {
                            p.finished.push(s.step);
                        }
                    }
                }
                events::kind::PAYMENT_REFUNDED => p.finished.push(step::REFUND.into()),
                events::kind::CUSTOMER_NOTIFIED if p.reason.is_some() => {
                    p.finished.push(step::NOTIFY_CUSTOMER.into())
                }
                _ => {}
            }
        }
        p
    }

    /// Whether `step` is finished.
    pub fn has(&self, step: &str) -> bool {
        self.finished.iter().any(|s| s == step)
    }
}

/// What the customer is told when an order is cancelled.
pub fn cancelled_message(reason: &str) -> String {
    format!("Your order was cancelled ({reason}). Any payment is refunded.")
}

/// Runs `attempt` up to [`ATTEMPTS`] times with exponential backoff; the
/// value and the attempts it took, or the last error.
async fn with_attempts<T, F, Fut>(
    name: &str,
    order_id: &str,
    trace_id: &str,
    mut attempt: F,
) -> Result<(T, u32), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let mut last = String::new();
    for n in 1..=ATTEMPTS {
        match attempt().await {
            Ok(v) => return Ok((v, n)),
            Err(e) => {
                tracing::warn!(%order_id, %trace_id, step = name, attempt = n, error = %e, "cancellation step failed");
                last = e;
            }
        }
        if n < ATTEMPTS {
            tokio::time::sleep(BACKOFF * 2u32.pow(n - 1)).await;
        }
    }
    Err(format!("step {name} failed after {ATTEMPTS} attempts: {last}"))
}

/// One cancellation being executed.
struct Run<'a> {
    s: &'a Shared,
    order_id: String,
    trace_id: String,
    /// The highest seq another node used, as far as we have heard.
    others_seq: u64,
    /// Step outcomes of steps 1-2, published once the order has settled.
    pending: Vec<SagaStep>,
}

/// Handles one `cancellation.request` delivery.
pub(crate) async fn execute(s: Shared, d: Delivery) -> Handled {
    let req = match events::decode::<CancellationRequest>(&d.envelope) {
        Ok(r) => r,
        Err(e) => return Handled::Reject(format!("not a cancellation request: {e}")),
    };
    let mut run = Run {
        s: &s,
        order_id: d.envelope.order_id.clone(),
        trace_id: d.envelope.trace_id.clone(),
        others_seq: 0,
        pending: Vec::new(),
    };
    tracing::info!(order_id = %run.order_id, trace_id = %run.trace_id, reason = %req.reason, by = %req.requested_by, attempt = d.attempt, "cancellation started");
    let outcome = run.steps(&req).await;
    match &outcome {
        Handled::Done => {}
        Handled::Retry(why) | Handled::Reject(why) => {
            tracing::warn!(order_id = %run.order_id, trace_id = %run.trace_id, %why, "cancellation stopped")
        }
    }
    outcome
}

impl Run<'_> {
    async fn progress(&self) -> Option<Progress> {
        self.s.book.lock().await.get(&self.order_id).map(Progress::of)
    }

    async fn steps(&mut self, req: &CancellationRequest) -> Handled {
        let Some(p) = self.progress().await else {
            return Handled::Reject(format!("no order {} is known here", self.order_id));
        };
        match p.state {
            Some(state) if state.is_terminal() => {
                tracing::info!(order_id = %self.order_id, trace_id = %self.trace_id, %state, "nothing to cancel: the order has ended");
                return Handled::Done;
            }
            None => return Handled::Retry("the order's first events have not arrived yet".into()),
            _ => {}
        }
        if !p.has(step::WITHDRAW_TICKET) {
            if let Err(h) = self.withdraw_ticket().await {
                return h;
            }
        }
        if !p.has(step::RECALL_DRIVER) {
            match self.recall_driver(&p).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(order_id = %self.order_id, trace_id = %self.trace_id, "too late to cancel: the order was delivered");
                    return Handled::Done;
                }
                Err(h) => return h,
            }
        }
        // Nothing is in flight anywhere now: this node is the only writer.
        self.catch_up().await;
        let mut seq = self.first_free_seq().await;
        let reason = p.reason.clone().unwrap_or_else(|| req.reason.clone());
        let Some(cause) = self.last_event().await else {
            return Handled::Retry("the order's events are not here yet".into());
        };
        if p.state != Some(OrderState::Cancelling) {
            if let Err(h) = self
                .emit(
                    &OrderCancelling {
                        reason: reason.clone(),
                    },
                    &cause,
                    &mut seq,
                )
                .await
            {
                return h;
            }
        }
        for outcome in std::mem::take(&mut self.pending) {
            if let Err(h) = self.emit(&outcome, &cause, &mut seq).await {
                return h;
            }
        }
        if !p.has(step::REFUND) {
            if let Err(h) = self.refund(&p, &cause, &mut seq).await {
                return h;
            }
        }
        if !p.has(step::NOTIFY_CUSTOMER) {
            let told = CustomerNotified {
                message: cancelled_message(&reason),
            };
            if let Err(h) = self.emit(&told, &cause, &mut seq).await {
                return h;
            }
            self.log_step(step::NOTIFY_CUSTOMER, StepOutcome::Done, "customer told", 1);
        }
        if let Err(h) = self
            .emit(
                &OrderCancelled {
                    reason: reason.clone(),
                },
                &cause,
                &mut seq,
            )
            .await
        {
            return h;
        }
        tracing::info!(order_id = %self.order_id, trace_id = %self.trace_id, %reason, "cancelled");
        Handled::Done
    }

    fn log_step(&self, name: &str, outcome: StepOutcome, detail: &str, attempts: u32) {
        tracing::info!(order_id = %self.order_id, trace_id = %self.trace_id, step = name, ?outcome, attempts, %detail, "cancellation step");
    }

    fn finish_step(&mut self, name: &str, outcome: StepOutcome, detail: String, attempts: u32) {
        self.log_step(name, outcome, &detail, attempts);
        self.pending.push(SagaStep {
            step: name.to_string(),
            outcome,
            detail,
            attempts,
        });
    }

    /// Asks the keeper to withdraw the order from `queue`, with retries.
    async fn withdraw(&self, name: &str, queue: &str) -> Result<(Withdrawn, u32), Handled> {
        let w = &self.s.withdrawals;
        with_attempts(name, &self.order_id, &self.trace_id, || async {
            match w.withdraw(queue, &self.order_id, ANSWER_WAIT).await {
                Ok(Some(answer)) => Ok(answer),
                Ok(None) => Err(format!(
                    "the keeper did not answer within {} s",
                    ANSWER_WAIT.as_secs()
                )),
                Err(e) => Err(e.to_string()),
            }
        })
        .await
        .map_err(Handled::Reject)
    }

    /// Waits until no consumer of `queue` holds the order; the last answer.
    async fn settle(&self, name: &str, queue: &str, mut answer: Withdrawn) -> Result<Withdrawn, Handled> {
        let deadline = Instant::now() + SETTLE;
        while answer.in_flight {
            if Instant::now() > deadline {
                return Err(Handled::Retry(format!(
                    "a {queue} consumer still holds the order after {} s",
                    SETTLE.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            answer = self.withdraw(name, queue).await?.0;
        }
        Ok(answer)
    }

    async fn withdraw_ticket(&mut self) -> Result<(), Handled> {
        let (first, attempts) = self.withdraw(step::WITHDRAW_TICKET, KITCHEN).await?;
        let (outcome, detail) = if first.removed > 0 {
            (
                StepOutcome::Done,
                "ticket withdrawn before any kitchen started it".to_string(),
            )
        } else if first.in_flight {
            (
                StepOutcome::Skipped,
                "a kitchen was already cooking it; the pizza will not be sent out".to_string(),
            )
        } else {
            (StepOutcome::Skipped, "no ticket was waiting".to_string())
        };
        if first.in_flight {
            // Fence the hand-off before waiting: the kitchen puts the cooked
            // order on queue `delivery` before it lets go of the ticket.
            self.withdraw(step::WITHDRAW_TICKET, DELIVERY).await?;
        }
        let settled = self.settle(step::WITHDRAW_TICKET, KITCHEN, first).await?;
        self.others_seq = self.others_seq.max(settled.last_seq);
        self.finish_step(step::WITHDRAW_TICKET, outcome, detail, attempts);
        Ok(())
    }

    /// `Ok(false)` when the order turned out to be delivered already.
    async fn recall_driver(&mut self, p: &Progress) -> Result<bool, Handled> {
        let (first, mut attempts) = self.withdraw(step::RECALL_DRIVER, DELIVERY).await?;
        let mut detail = if first.removed > 0 {
            "taken off the delivery queue before a driver took it".to_string()
        } else {
            "no driver was assigned".to_string()
        };
        let mut outcome = if first.removed > 0 {
            StepOutcome::Done
        } else {
            StepOutcome::Skipped
        };
        if first.in_flight {
            let recalled = with_attempts(step::RECALL_DRIVER, &self.order_id, &self.trace_id, || {
                self.call_back(p)
            })
            .await;
            match recalled {
                Ok((None, _)) => return Ok(false),
                Ok((Some(r), n)) => {
                    attempts = n;
                    self.others_seq = self.others_seq.max(r.last_seq);
                    outcome = StepOutcome::Done;
                    detail = match r.driver {
                        Some(d) => format!("driver {d} called back"),
                        None => "the delivery node let the order go before a driver set off".into(),
                    };
                }
                Err(e) => return Err(Handled::Reject(e)),
            }
        }
        let settled = self.settle(step::RECALL_DRIVER, DELIVERY, first).await?;
        self.others_seq = self.others_seq.max(settled.last_seq);
        self.finish_step(step::RECALL_DRIVER, outcome, detail, attempts);
        Ok(true)
    }

    /// `POST /recall/{id}` on the delivery node that carries the order (or
    /// every online one, if no driver is known yet). `None`: delivered.
    async fn call_back(&self, p: &Progress) -> Result<Option<Recalled>, String> {
        let dir = &self.s.directory;
        let candidates: Vec<(String, String)> = match &p.delivery_node {
            Some(id) => dir.url(id).map(|u| vec![(id.clone(), u)]).unwrap_or_default(),
            None => dir.urls_of(role::DELIVERY),
        };
        if candidates.is_empty() {
            return Err("no delivery node with an HTTP address is known".into());
        }
        let mut errors = Vec::new();
        for (id, url) in candidates {
            let span = self.call_span("recall");
            let request = self.s.http.post(format!("{url}/recall/{}", self.order_id));
            let answer = self
                .s
                .tokens
                .attach(request, role::DELIVERY, scope::RECALL)
                .header("traceparent", otlp::traceparent(&span, &self.trace_id))
                .timeout(ANSWER_WAIT)
                .send()
                .instrument(span)
                .await;
            match answer {
                Ok(r) if r.status() == StatusCode::OK => {
                    return r
                        .json::<Recalled>()
                        .await
                        .map(Some)
                        .map_err(|e| format!("{id}: unreadable answer: {e}"));
                }
                Ok(r) if r.status() == StatusCode::CONFLICT => return Ok(None),
                Ok(r) => errors.push(format!("{id} answered {}", r.status())),
                Err(e) => errors.push(format!("{id} unreachable: {e}")),
            }
        }
        Err(errors.join("; "))
    }

    /// The trace span of a call this saga makes, under the order's root.
    fn call_span(&self, name: &'static str) -> tracing::Span {
        let span = otlp::span(name, otlp::Kind::Client, &self.order_id);
        otlp::under_order(&span, &self.trace_id);
        span
    }

    async fn refund(&mut self, p: &Progress, cause: &Envelope, seq: &mut u64) -> Result<(), Handled> {
        let Some(payment_id) = p.payment_id.clone() else {
            let skipped = SagaStep {
                step: step::REFUND.into(),
                outcome: StepOutcome::Skipped,
                detail: "the order was never paid".into(),
                attempts: 0,
            };
            return self.emit(&skipped, cause, seq).await;
        };
        let req = RefundRequest {
            payment_id: payment_id.clone(),
            order_id: self.order_id.clone(),
        };
        let s = self.s;
        let result = with_attempts(step::REFUND, &self.order_id, &self.trace_id, || async {
            let span = self.call_span("refund");
            let request = s.http.post(format!("{}/refund", s.payment_url));
            let answer = s
                .tokens
                .attach(request, role::PAYMENT, scope::PAYMENT)
                .header("traceparent", otlp::traceparent(&span, &self.trace_id))
                .json(&req)
                .send()
                .instrument(span)
                .await;
            match answer {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("payment answered {}", r.status())),
                Err(e) if e.is_timeout() => Err("payment timed out".into()),
                Err(e) => Err(format!("payment unreachable: {e}")),
            }
        })
        .await;
        match result {
            Ok(((), attempts)) => {
                self.log_step(step::REFUND, StepOutcome::Done, "refunded", attempts);
                self.emit(&PaymentRefunded { payment_id }, cause, seq).await
            }
            Err(why) => {
                let failed = SagaStep {
                    step: step::REFUND.into(),
                    outcome: StepOutcome::Failed,
                    detail: why.clone(),
                    attempts: ATTEMPTS,
                };
                self.log_step(step::REFUND, StepOutcome::Failed, &why, ATTEMPTS);
                self.emit(&failed, cause, seq).await?;
                Err(Handled::Reject(why))
            }
        }
    }

    /// Waits (briefly) until the book has every event up to the highest seq
    /// the others reported, so our first event follows the last one they
    /// sent rather than racing it; after [`CATCH_UP`] we number above them
    /// anyway and the fold holds ours back until theirs arrive.
    async fn catch_up(&self) {
        let deadline = Instant::now() + CATCH_UP;
        while Instant::now() < deadline {
            let caught_up = {
                let book = self.s.book.lock().await;
                book.get(&self.order_id)
                    .is_some_and(|f| f.next_seq() > self.others_seq && f.held_back() == 0)
            };
            if caught_up {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The first seq no one has used for the order.
    async fn first_free_seq(&self) -> u64 {
        let book = self.s.book.lock().await;
        let ours = book.get(&self.order_id).map_or(0, OrderFold::highest_seq);
        ours.max(self.others_seq) + 1
    }

    /// The order's latest folded event: what our events follow from.
    async fn last_event(&self) -> Option<Envelope> {
        let book = self.s.book.lock().await;
        book.get(&self.order_id)?.applied().last().cloned()
    }

    /// Publishes the next event of the cancellation, numbered `seq`.
    async fn emit<E: events::Event>(
        &self,
        payload: &E,
        cause: &Envelope,
        seq: &mut u64,
    ) -> Result<(), Handled> {
        let env = events::follow(payload, cause, *seq, self.s.node.id())
            .map_err(|e| Handled::Retry(e.to_string()))?;
        self.s
            .publish(&env)
            .await
            .map_err(|e| Handled::Retry(format!("could not record the cancellation: {e:?}")))?;
        *seq += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<E: events::Event>(payload: &E, seq: u64, source: &str) -> Envelope {
        events::envelope(payload, "o1", seq, "t1", source).unwrap()
    }

    fn placed() -> Envelope {
        let p = events::OrderPlaced {
            customer: contracts::api::Customer {
                name: "Ada".into(),
                address: "1 Loop Rd".into(),
            },
            items: vec![],
            amount_cents: 1200,
        };
        env(&p, 1, "order")
    }

    #[test]
    fn progress_reads_payment_driver_and_finished_steps() {
        let paid = OrderPaid {
            payment_id: "pay_1".into(),
            amount_cents: 1200,
        };
        let withdrawn = SagaStep {
            step: step::WITHDRAW_TICKET.into(),
            outcome: StepOutcome::Skipped,
            detail: "x".into(),
            attempts: 1,
        };
        let failed = SagaStep {
            step: step::REFUND.into(),
            outcome: StepOutcome::Failed,
            detail: "down".into(),
            attempts: 3,
        };
        let fold = OrderFold::from_envelopes(
            "o1",
            [
                placed(),
                env(&paid, 2, "order"),
                env(
                    &OrderCancelling {
                        reason: "customer".into(),
                    },
                    3,
                    "order",
                ),
                env(&withdrawn, 4, "order"),
                env(&failed, 5, "order"),
            ],
        );
        let p = Progress::of(&fold);
        assert_eq!(p.state, Some(OrderState::Cancelling));
        assert_eq!(p.payment_id.as_deref(), Some("pay_1"));
        assert_eq!(p.reason.as_deref(), Some("customer"));
        assert!(p.has(step::WITHDRAW_TICKET));
        assert!(!p.has(step::REFUND), "a failed step is not finished");
        assert!(!p.has(step::NOTIFY_CUSTOMER));
    }

    #[test]
    fn the_on_its_way_notice_is_not_the_cancellation_notice() {
        let on_its_way = CustomerNotified {
            message: "Your pizza is on its way!".into(),
        };
        let fold = OrderFold::from_envelopes("o1", [placed(), env(&on_its_way, 2, "delivery")]);
        assert!(!Progress::of(&fold).has(step::NOTIFY_CUSTOMER));
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_gets_three_attempts_with_growing_backoff() {
        let started = tokio::time::Instant::now();
        let mut calls = 0;
        let r: Result<((), u32), String> = with_attempts("refund", "o1", "t1", || {
            calls += 1;
            async { Err("payment unreachable".to_string()) }
        })
        .await;
        assert_eq!(calls, ATTEMPTS);
        assert_eq!(
            r.unwrap_err(),
            "step refund failed after 3 attempts: payment unreachable"
        );
        assert_eq!(started.elapsed(), BACKOFF + BACKOFF * 2);
        let mut n = 0;
        let ok = with_attempts("refund", "o1", "t1", || {
            n += 1;
            let v = n;
            async move {
                if v < 2 {
                    Err("once".to_string())
                } else {
                    Ok(v)
                }
            }
        })
        .await;
        assert_eq!(ok, Ok((2, 2)));
    }
}
