//! A Mosquitto `acl_file` made from the permission table ([`crate::trust`]),
//! for a platform on an external broker where every node logs in as its
//! node id ([`crate::login`]).
//!
//! The ACL is the outer wall: a login may write only the topics its role
//! uses (a kitchen cannot put tickets, command a node or ack another
//! consumer's deliveries) and read only its own streams (the event log's
//! replies carry customers' names and addresses). It cannot see inside a
//! message: which event kinds a role may put on `log/put` is the inner
//! wall, the event log's check of the signature.
//!
//! `pattern` lines hold for every login (`%u` is the login, `%c` the
//! client id: one-shot connections such as history queries read their
//! replies under their client id).

use crate::queue::{CANCELLATION, DELIVERY, KITCHEN};
use crate::topics::Topics;
use crate::trust::{may_consume, may_put, role};

/// Who may take an order off a queue (the cancellation executor, in the
/// order node; the keeper checks the same role).
const WITHDRAWS: &str = role::ORDER;

/// The ACL text for `nodes` (`(node id, role)`, e.g. a trust file's).
pub fn mosquitto(topics: &Topics, nodes: &[(String, String)]) -> String {
    let p = topics.prefix();
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line("# Made by `pizza-node acl` from the permission table (contracts::trust).".into());
    line("# Every node logs in as its node id; use with `acl_file` and a `password_file`.".into());
    line(String::new());
    line("# Every login: its own streams, heartbeat and commands; what is public.".into());
    for (access, topic) in [
        ("write", format!("{p}/log/put")),
        ("read", topics.log_confirm("%u")),
        ("write", topics.log_subscribe("%u")),
        ("write", topics.log_ack("%u")),
        ("read", topics.log_deliver("%u")),
        ("write", topics.log_query("%c")),
        ("read", topics.log_reply("%c")),
        ("readwrite", topics.status("%u")),
        ("read", topics.all_status()),
        ("read", topics.control("%u")),
        ("read", topics.all_events()),
        ("read", topics.queue_stats()),
        ("read", topics.dlq_items("+")),
    ] {
        line(format!("pattern {access} {topic}"));
    }
    for (id, node_role) in nodes {
        line(String::new());
        line(format!("# {id}: role {node_role}"));
        line(format!("user {id}"));
        for topic in role_topics(topics, id, node_role) {
            line(topic);
        }
    }
    out
}

/// The `topic` lines of one node beyond the patterns.
fn role_topics(topics: &Topics, id: &str, node_role: &str) -> Vec<String> {
    // The broker's keeper and log serve everyone; the control room
    // commands and watches everything.
    if node_role == role::BROKER || node_role == role::CONTROL {
        return vec![format!("topic readwrite {}/#", topics.prefix())];
    }
    let mut lines = Vec::new();
    let mut topic = |access: &str, t: String| lines.push(format!("topic {access} {t}"));
    // The demos' own queues are any other name: a worker gets the wildcard
    // (the business queues stay guarded by signatures).
    let queues: Vec<&str> = if node_role == role::WORKER {
        vec!["+"]
    } else {
        vec![KITCHEN, DELIVERY, CANCELLATION]
    };
    for q in queues {
        if q == "+" || may_put(node_role, q) {
            topic("write", topics.put(q));
            topic("read", topics.confirm(q, id));
        }
        if q == "+" || may_consume(node_role, q) {
            topic("write", topics.credit(q, id));
            topic("write", topics.ack(q, id));
            topic("read", topics.deliver(q, id));
            topic("read", topics.acked(q, id));
        }
        if node_role == WITHDRAWS && q != CANCELLATION {
            topic("write", topics.withdraw(q, id));
            topic("read", topics.withdrawn(q, id));
        }
    }
    lines
}

/// `(id, role)` pairs from `id:role` arguments.
pub fn parse_nodes<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Vec<(String, String)>, String> {
    args.into_iter()
        .map(|a| match a.split_once(':') {
            Some((id, r)) if !id.is_empty() && !r.is_empty() => Ok((id.to_string(), r.to_string())),
            _ => Err(format!("'{a}' is not ID:ROLE (e.g. kitchen-1:kitchen)")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl() -> String {
        let nodes = parse_nodes(["order:order", "kitchen-1:kitchen", "keeper:broker"]).unwrap();
        mosquitto(&Topics::default(), &nodes)
    }

    fn section<'a>(text: &'a str, user: &str) -> Vec<&'a str> {
        text.lines()
            .skip_while(|l| *l != format!("user {user}"))
            .skip(1)
            .take_while(|l| !l.is_empty())
            .collect()
    }

    #[test]
    fn each_role_writes_only_what_the_permission_table_allows() {
        let text = acl();
        let order = section(&text, "order");
        assert!(order.contains(&"topic write pizza/q/kitchen/put"));
        assert!(order.contains(&"topic write pizza/q/kitchen/withdraw/order"));
        assert!(
            !order.iter().any(|l| l.contains("q/kitchen/credit")),
            "order does not cook"
        );
        let kitchen = section(&text, "kitchen-1");
        assert!(kitchen.contains(&"topic write pizza/q/kitchen/credit/kitchen-1"));
        assert!(kitchen.contains(&"topic write pizza/q/delivery/put"));
        assert!(
            !kitchen.iter().any(|l| l.contains("q/kitchen/put")),
            "a kitchen puts no tickets"
        );
        assert!(
            !kitchen.iter().any(|l| l.contains("control")),
            "a kitchen commands no one"
        );
        assert_eq!(section(&text, "keeper"), ["topic readwrite pizza/#"]);
    }

    #[test]
    fn every_login_reads_only_its_own_streams() {
        let text = acl();
        assert!(text.contains("pattern read pizza/log/reply/%c"));
        assert!(text.contains("pattern read pizza/log/deliver/%u"));
        assert!(text.contains("pattern read pizza/control/%u"));
        assert!(!text.contains("pattern read pizza/log/reply/+"));
    }

    #[test]
    fn a_bad_node_argument_is_named() {
        assert_eq!(
            parse_nodes(["order"]).unwrap_err(),
            "'order' is not ID:ROLE (e.g. kitchen-1:kitchen)"
        );
    }
}
