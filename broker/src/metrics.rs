//! The keeper's and the event log's Prometheus series, recorded through the
//! `metrics` facade: the binary that runs them installs an exporter and
//! serves `/metrics` (node/src/metrics.rs); without one these calls do
//! nothing. Names follow RabbitMQ's exporter (`rabbitmq_queue_messages_ready`
//! and so on) so that its dashboards and alerts translate by prefix.

use contracts::queue::QueueStats;

use crate::eventlog::EventLog;
use crate::subscriptions::Subscriptions;

/// Says what each series means; the exporter prints it as `# HELP`.
/// Called once per process before anything is recorded.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge};
    describe_gauge!(
        "pizza_queue_messages_ready",
        "Messages ready to deliver (and held behind their key), per queue."
    );
    describe_gauge!(
        "pizza_queue_messages_delayed",
        "Messages waiting out a retry backoff, per queue."
    );
    describe_gauge!(
        "pizza_queue_messages_unacked",
        "Messages delivered and not yet acknowledged, per queue."
    );
    describe_gauge!(
        "pizza_queue_messages_dead_lettered",
        "Messages in the queue's dead-letter queue."
    );
    describe_gauge!(
        "pizza_queue_consumers",
        "Consumers that announced credit, per queue."
    );
    describe_counter!(
        "pizza_queue_messages_published_total",
        "Puts the keeper accepted since it started."
    );
    describe_counter!(
        "pizza_queue_messages_delivered_total",
        "Deliveries sent, first ones and redeliveries."
    );
    describe_counter!(
        "pizza_queue_messages_acknowledged_total",
        "Messages acknowledged done."
    );
    describe_counter!(
        "pizza_queue_messages_redelivered_total",
        "Redeliveries (retries and expired leases)."
    );
    describe_gauge!("pizza_eventlog_events", "Events in the broker's event log.");
    describe_counter!(
        "pizza_eventlog_appended_total",
        "Events appended since the log was opened."
    );
    describe_counter!(
        "pizza_eventlog_duplicates_total",
        "Events offered again and stored before."
    );
    describe_counter!(
        "pizza_eventlog_malformed_total",
        "Messages on the log's put topic that were not envelopes."
    );
    describe_counter!(
        "pizza_eventlog_refused_total",
        "Envelopes the trust file refused."
    );
    describe_gauge!(
        "pizza_eventlog_subscription_lag",
        "Events a subscription has not acknowledged yet."
    );
}

/// Records one round of the keeper's figures (every 500 ms).
pub fn queues(stats: &QueueStats) {
    use metrics::{counter, gauge};
    for q in &stats.queues {
        let queue = || [("queue", q.name.clone())];
        gauge!("pizza_queue_messages_ready", &queue()).set(q.ready as f64);
        gauge!("pizza_queue_messages_delayed", &queue()).set(q.delayed as f64);
        gauge!("pizza_queue_messages_unacked", &queue()).set(q.in_flight as f64);
        gauge!("pizza_queue_messages_dead_lettered", &queue()).set(q.dlq as f64);
        gauge!("pizza_queue_consumers", &queue()).set(q.consumers.len() as f64);
        counter!("pizza_queue_messages_published_total", &queue()).absolute(q.put_total);
        counter!("pizza_queue_messages_delivered_total", &queue()).absolute(q.delivered_total);
        counter!("pizza_queue_messages_acknowledged_total", &queue()).absolute(q.done_total);
        counter!("pizza_queue_messages_redelivered_total", &queue()).absolute(q.redelivered_total);
    }
}

/// Records the event log's size, counters and each subscription's lag.
pub fn event_log(log: &EventLog, subs: &Subscriptions) {
    use metrics::{counter, gauge};
    let end = log.len();
    let c = log.counters();
    gauge!("pizza_eventlog_events").set(end as f64);
    counter!("pizza_eventlog_appended_total").absolute(c.stored);
    counter!("pizza_eventlog_duplicates_total").absolute(c.duplicates);
    counter!("pizza_eventlog_malformed_total").absolute(c.malformed);
    counter!("pizza_eventlog_refused_total").absolute(c.refused);
    for ((client, name), sub) in subs.iter().filter(|(_, s)| s.durable) {
        let labels = [("subscriber", client.clone()), ("subscription", name.clone())];
        gauge!("pizza_eventlog_subscription_lag", &labels).set(end.saturating_sub(sub.acked) as f64);
    }
}
