//! In-order PUBACKs.
//!
//! The link acknowledges an incoming message only once it is handled, so a
//! node that dies mid-message gets it again. But handlers finish in any
//! order, and rumqttd 0.20 drops a client whose PUBACKs arrive out of order
//! ("out of order ack", then the connection is closed and the last will
//! fires). So acks are released strictly in arrival order: each incoming
//! message takes a slot, finishing marks it, and only the finished prefix is
//! sent. Slots from an earlier connection are discarded: the broker resends
//! those messages itself.

use std::collections::VecDeque;

/// One incoming QoS 1 message awaiting its ack.
#[derive(Debug)]
struct Slot<T> {
    connection: u64,
    id: u64,
    done: bool,
    item: T,
}

/// Acks waiting for their turn. `T` is whatever sending an ack needs.
#[derive(Debug)]
pub struct AckOrder<T> {
    slots: VecDeque<Slot<T>>,
    connection: u64,
    next_id: u64,
}

impl<T> Default for AckOrder<T> {
    fn default() -> Self {
        AckOrder {
            slots: VecDeque::new(),
            connection: 0,
            next_id: 0,
        }
    }
}

/// A claim on a slot, carried by the incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    connection: u64,
    id: u64,
}

impl<T> AckOrder<T> {
    /// A new connection: earlier slots will never be acked on it.
    pub fn reconnected(&mut self) {
        self.connection += 1;
        self.slots.clear();
    }

    /// Takes the next slot for a message that just arrived.
    pub fn arrive(&mut self, item: T) -> Ticket {
        self.next_id += 1;
        let ticket = Ticket {
            connection: self.connection,
            id: self.next_id,
        };
        self.slots.push_back(Slot {
            connection: ticket.connection,
            id: ticket.id,
            done: false,
            item,
        });
        ticket
    }

    /// Marks a message handled; returns the acks that may be sent now, in order.
    pub fn finish(&mut self, ticket: Ticket) -> Vec<T> {
        if ticket.connection != self.connection {
            return Vec::new();
        }
        if let Some(slot) = self.slots.iter_mut().find(|s| s.id == ticket.id) {
            slot.done = true;
        }
        let mut ready = Vec::new();
        while self
            .slots
            .front()
            .is_some_and(|s| s.done && s.connection == self.connection)
        {
            if let Some(s) = self.slots.pop_front() {
                ready.push(s.item);
            }
        }
        ready
    }

    /// Messages arrived and not yet acked.
    pub fn waiting(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_leave_in_arrival_order() {
        let mut o = AckOrder::default();
        let (a, b, c) = (o.arrive(1), o.arrive(2), o.arrive(3));
        assert_eq!(o.finish(c), Vec::<i32>::new(), "3 waits for 1 and 2");
        assert_eq!(o.finish(a), vec![1]);
        assert_eq!(o.finish(b), vec![2, 3]);
        assert_eq!(o.waiting(), 0);
    }

    #[test]
    fn a_reconnect_forgets_the_old_connections_slots() {
        let mut o = AckOrder::default();
        let old = o.arrive(1);
        o.reconnected();
        let new = o.arrive(2);
        assert!(
            o.finish(old).is_empty(),
            "the broker resends it on the new connection"
        );
        assert_eq!(o.finish(new), vec![2]);
    }
}
