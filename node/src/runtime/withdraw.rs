//! Asking the keeper to take an order off a queue ([`contracts::queue::Withdraw`])
//! and waiting for its answer.

use std::time::Duration;

use contracts::queue::{Withdraw, Withdrawn};

use crate::error::NodeError;
use crate::runtime::link::Link;
use crate::runtime::request::Requests;

/// Withdrawals in progress, matched to the keeper's answers by request id.
#[derive(Clone)]
pub struct Withdrawals {
    requests: Requests<Withdrawn>,
}

impl Withdrawals {
    /// Subscribes to this node's answers on every queue.
    pub async fn start(link: Link) -> Result<Self, NodeError> {
        let replies = link.topics().withdrawn("+", link.id());
        Ok(Withdrawals {
            requests: Requests::start(link, replies).await?,
        })
    }

    /// Withdraws `order_id` from `queue`; `None` if the keeper did not
    /// answer within `wait` (it may be down: ask again, it is idempotent).
    pub async fn withdraw(
        &self,
        queue: &str,
        order_id: &str,
        wait: Duration,
    ) -> Result<Option<Withdrawn>, NodeError> {
        let link = self.requests.link();
        let topic = link.topics().withdraw(queue, link.id());
        self.requests
            .ask(topic, wait, |request_id| Withdraw {
                request_id,
                order_id: order_id.to_string(),
            })
            .await
    }
}
