//! MQTT topic names, built in one place so that no two parts spell them
//! differently. Every topic lives under a configurable prefix (default `pizza`).

/// Builds topic names under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
}

impl Default for Topics {
    fn default() -> Self {
        Topics::new("pizza")
    }
}

impl Topics {
    /// Topics under `prefix` (trailing slashes are ignored).
    pub fn new(prefix: &str) -> Self {
        Topics {
            prefix: prefix.trim_end_matches('/').to_string(),
        }
    }

    /// The prefix, without trailing slash.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `pizza/events/<kind>`: a domain event.
    pub fn event(&self, kind: &str) -> String {
        format!("{}/events/{kind}", self.prefix)
    }

    /// `pizza/events/#`: every domain event.
    pub fn all_events(&self) -> String {
        format!("{}/events/#", self.prefix)
    }

    /// `pizza/q/<queue>/put`.
    pub fn put(&self, queue: &str) -> String {
        format!("{}/q/{queue}/put", self.prefix)
    }

    /// `pizza/q/<queue>/confirm/<client>`.
    pub fn confirm(&self, queue: &str, client: &str) -> String {
        format!("{}/q/{queue}/confirm/{client}", self.prefix)
    }

    /// `pizza/q/<queue>/acked/<consumer>`: the keeper's word that these
    /// acks are on its disk.
    pub fn acked(&self, queue: &str, consumer: &str) -> String {
        format!("{}/q/{queue}/acked/{consumer}", self.prefix)
    }

    /// `pizza/q/<queue>/credit/<consumer>`.
    pub fn credit(&self, queue: &str, consumer: &str) -> String {
        format!("{}/q/{queue}/credit/{consumer}", self.prefix)
    }

    /// `pizza/q/<queue>/deliver/<consumer>`.
    pub fn deliver(&self, queue: &str, consumer: &str) -> String {
        format!("{}/q/{queue}/deliver/{consumer}", self.prefix)
    }

    /// `pizza/q/<queue>/ack/<consumer>`.
    pub fn ack(&self, queue: &str, consumer: &str) -> String {
        format!("{}/q/{queue}/ack/{consumer}", self.prefix)
    }

    /// `pizza/q/<queue>/dlq/requeue`: move dead letters back.
    pub fn requeue(&self, queue: &str) -> String {
        format!("{}/q/{queue}/dlq/requeue", self.prefix)
    }

    /// `pizza/q/<queue>/dlq/items`: retained list of the queue's dead letters.
    pub fn dlq_items(&self, queue: &str) -> String {
        format!("{}/q/{queue}/dlq/items", self.prefix)
    }

    /// `pizza/q/<queue>/withdraw/<client>`: take an order off a queue.
    pub fn withdraw(&self, queue: &str, client: &str) -> String {
        format!("{}/q/{queue}/withdraw/{client}", self.prefix)
    }

    /// `pizza/q/<queue>/withdrawn/<client>`: the keeper's answer.
    pub fn withdrawn(&self, queue: &str, client: &str) -> String {
        format!("{}/q/{queue}/withdrawn/{client}", self.prefix)
    }

    /// `pizza/q/stats`: the keeper's figures every 500 ms.
    pub fn queue_stats(&self) -> String {
        format!("{}/q/stats", self.prefix)
    }

    /// `pizza/nodes/<id>/status`: retained heartbeat, LWT = offline.
    pub fn status(&self, node: &str) -> String {
        format!("{}/nodes/{node}/status", self.prefix)
    }

    /// `pizza/nodes/+/status`.
    pub fn all_status(&self) -> String {
        format!("{}/nodes/+/status", self.prefix)
    }

    /// `pizza/control/<id>`: commands for one node.
    pub fn control(&self, node: &str) -> String {
        format!("{}/control/{node}", self.prefix)
    }

    /// `pizza/log/query/<client>`: a [`crate::history::LogQuery`] to the
    /// broker's event log; the answer goes to [`log_reply`](Self::log_reply)
    /// of the same client.
    pub fn log_query(&self, client: &str) -> String {
        format!("{}/log/query/{client}", self.prefix)
    }

    /// `pizza/log/query/+`: every query, for the event log to subscribe to.
    pub fn all_log_queries(&self) -> String {
        format!("{}/log/query/+", self.prefix)
    }

    /// `pizza/log/reply/<client>`: the event log's
    /// [`crate::history::LogReply`] to `client`.
    pub fn log_reply(&self, client: &str) -> String {
        format!("{}/log/reply/{client}", self.prefix)
    }

    /// `pizza/log/put`: an event for the durable log (see [`crate::stream`]).
    pub fn log_put(&self) -> String {
        format!("{}/log/put", self.prefix)
    }

    /// `pizza/log/confirm/<client>`: the log's [`crate::queue::Confirm`] of
    /// `client`'s events, sent once they are on disk.
    pub fn log_confirm(&self, client: &str) -> String {
        format!("{}/log/confirm/{client}", self.prefix)
    }

    /// `pizza/log/subscribe/<client>`: a [`crate::stream::Subscribe`].
    pub fn log_subscribe(&self, client: &str) -> String {
        format!("{}/log/subscribe/{client}", self.prefix)
    }

    /// `pizza/log/deliver/<client>`: the log's [`crate::stream::StreamBatch`]es.
    pub fn log_deliver(&self, client: &str) -> String {
        format!("{}/log/deliver/{client}", self.prefix)
    }

    /// `pizza/log/ack/<client>`: a [`crate::stream::StreamAck`].
    pub fn log_ack(&self, client: &str) -> String {
        format!("{}/log/ack/{client}", self.prefix)
    }

    /// Splits a `pizza/log/<verb>/<client>` topic into (verb, client);
    /// `pizza/log/put` is `("put", None)`.
    pub fn parse_log_topic<'a>(&self, topic: &'a str) -> Option<(&'a str, Option<&'a str>)> {
        let rest = topic.strip_prefix(self.prefix.as_str())?.strip_prefix("/log/")?;
        match rest.split_once('/') {
            None => Some((rest, None)),
            Some((verb, client)) if !client.is_empty() && !client.contains('/') => Some((verb, Some(client))),
            Some(_) => None,
        }
    }

    /// The client in a log query topic.
    pub fn parse_log_query_topic<'a>(&self, topic: &'a str) -> Option<&'a str> {
        let client = topic
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix("/log/query/")?;
        (!client.is_empty() && !client.contains('/')).then_some(client)
    }

    /// Splits a queue topic into (queue, verb, client), e.g.
    /// `pizza/q/kitchen/ack/k1` -> `("kitchen", "ack", Some("k1"))`.
    /// Returns `None` for anything that is not a queue topic.
    pub fn parse_queue_topic<'a>(&self, topic: &'a str) -> Option<(&'a str, &'a str, Option<&'a str>)> {
        let rest = topic.strip_prefix(self.prefix.as_str())?.strip_prefix("/q/")?;
        let mut parts = rest.splitn(3, '/');
        let queue = parts.next()?;
        let verb = parts.next()?;
        let client = parts.next();
        Some((queue, verb, client))
    }

    /// The node id in a status topic.
    pub fn parse_status_topic<'a>(&self, topic: &'a str) -> Option<&'a str> {
        topic
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix("/nodes/")?
            .strip_suffix("/status")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_parses_queue_topics() {
        let t = Topics::new("pizza/");
        assert_eq!(t.ack("kitchen", "k1"), "pizza/q/kitchen/ack/k1");
        assert_eq!(
            t.parse_queue_topic("pizza/q/kitchen/ack/k1"),
            Some(("kitchen", "ack", Some("k1")))
        );
        assert_eq!(
            t.parse_queue_topic("pizza/q/kitchen/put"),
            Some(("kitchen", "put", None))
        );
        assert_eq!(
            t.parse_queue_topic("pizza/q/kitchen/dlq/requeue"),
            Some(("kitchen", "dlq", Some("requeue")))
        );
        assert_eq!(t.parse_queue_topic("other/q/kitchen/put"), None);
        assert_eq!(t.parse_status_topic("pizza/nodes/k1/status"), Some("k1"));
    }

    #[test]
    fn builds_and_parses_log_topics() {
        let t = Topics::new("pizza");
        assert_eq!(t.log_query("order"), "pizza/log/query/order");
        assert_eq!(t.log_reply("order"), "pizza/log/reply/order");
        assert_eq!(t.all_log_queries(), "pizza/log/query/+");
        assert_eq!(t.parse_log_query_topic("pizza/log/query/order"), Some("order"));
        assert_eq!(t.parse_log_query_topic("pizza/log/query/"), None);
        assert_eq!(t.parse_log_query_topic("pizza/log/query/a/b"), None);
        assert_eq!(t.parse_log_query_topic("pizza/log/reply/order"), None);
        assert_eq!(t.parse_log_topic(&t.log_put()), Some(("put", None)));
        assert_eq!(
            t.parse_log_topic(&t.log_ack("order")),
            Some(("ack", Some("order")))
        );
        assert_eq!(
            t.parse_log_topic(&t.log_subscribe("a")),
            Some(("subscribe", Some("a")))
        );
        assert_eq!(t.parse_log_topic("pizza/log/ack/a/b"), None);
        assert_eq!(t.parse_log_topic("pizza/q/kitchen/put"), None);
    }
}
