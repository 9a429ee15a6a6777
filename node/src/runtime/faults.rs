//! Injected faults: what the control room's fault menu does to a node.
//!
//! On an incoming message ([`roll`], [`gate`]): latency, error, drop,
//! duplicate. On an event the node publishes ([`roll_send`]): duplicate and
//! reorder, so that every subscriber sees the same disorder; the event is in
//! the outbox before either strikes, so durability is unchanged.

use contracts::status::Faults;
use rand::Rng;

/// What to do with one incoming message under the current faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Handle it (`twice`: the duplicate fault struck).
    Handle {
        /// Handle it a second time too.
        twice: bool,
    },
    /// Pretend it never arrived: no effect, no ack.
    Drop,
    /// Fail it (a retry for queue deliveries).
    Fail,
}

/// Rolls the dice for one message. Latency is applied by [`gate`].
pub fn roll(faults: &Faults, rng: &mut impl Rng) -> Verdict {
    if faults.drop_rate > 0.0 && rng.gen_bool(faults.drop_rate.clamp(0.0, 1.0)) {
        return Verdict::Drop;
    }
    if faults.error_rate > 0.0 && rng.gen_bool(faults.error_rate.clamp(0.0, 1.0)) {
        return Verdict::Fail;
    }
    let twice = faults.duplicate_rate > 0.0 && rng.gen_bool(faults.duplicate_rate.clamp(0.0, 1.0));
    Verdict::Handle { twice }
}

/// Waits out the injected latency, then rolls the dice.
pub async fn gate(faults: &Faults) -> Verdict {
    if faults.latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(faults.latency_ms)).await;
    }
    roll(faults, &mut rand::thread_rng())
}

/// How to send one event this node publishes, under the current faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendPlan {
    /// Hold the send back this long (the reorder fault); zero sends at once.
    pub delay: std::time::Duration,
    /// Send a second copy (the duplicate fault).
    pub twice: bool,
}

/// Rolls the dice for one outgoing event: whether it is held back (and for
/// how long, uniformly within the reorder window) and whether it goes twice.
pub fn roll_send(faults: &Faults, rng: &mut impl Rng) -> SendPlan {
    let delay_ms = if faults.reorder_rate > 0.0 && rng.gen_bool(faults.reorder_rate.clamp(0.0, 1.0)) {
        // At least 1 ms so a struck event is always really held back.
        rng.gen_range(1..=faults.reorder_window().max(1))
    } else {
        0
    };
    let twice = faults.duplicate_rate > 0.0 && rng.gen_bool(faults.duplicate_rate.clamp(0.0, 1.0));
    SendPlan {
        delay: std::time::Duration::from_millis(delay_ms),
        twice,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::time::Duration;

    #[test]
    fn no_faults_send_every_event_once_at_once() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..100 {
            assert_eq!(
                roll_send(&Faults::default(), &mut rng),
                SendPlan {
                    delay: Duration::ZERO,
                    twice: false
                }
            );
        }
    }

    #[test]
    fn a_certain_reorder_delays_within_the_window_and_duplicate_sends_twice() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let f = Faults {
            reorder_rate: 1.0,
            reorder_window_ms: 40,
            duplicate_rate: 1.0,
            ..Faults::default()
        };
        let mut delays = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let s = roll_send(&f, &mut rng);
            assert!(s.twice);
            assert!(
                s.delay >= Duration::from_millis(1) && s.delay <= Duration::from_millis(40),
                "{s:?}"
            );
            delays.insert(s.delay);
        }
        assert!(
            delays.len() > 10,
            "delays vary, so events overtake each other: {delays:?}"
        );
    }

    #[test]
    fn the_reorder_rate_is_a_share_of_events() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let f = Faults {
            reorder_rate: 0.3,
            ..Faults::default()
        };
        let held = (0..10_000)
            .filter(|_| roll_send(&f, &mut rng).delay > Duration::ZERO)
            .count();
        assert!((2_500..3_500).contains(&held), "{held}");
        // Incoming messages are not touched by the reorder fault.
        assert_eq!(roll(&f, &mut rng), Verdict::Handle { twice: false });
    }

    #[test]
    fn no_faults_always_handles_once() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..100 {
            assert_eq!(
                roll(&Faults::default(), &mut rng),
                Verdict::Handle { twice: false }
            );
        }
    }

    #[test]
    fn certain_faults_always_strike() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let drop = Faults {
            drop_rate: 1.0,
            ..Faults::default()
        };
        assert_eq!(roll(&drop, &mut rng), Verdict::Drop);
        let fail = Faults {
            error_rate: 1.0,
            ..Faults::default()
        };
        assert_eq!(roll(&fail, &mut rng), Verdict::Fail);
        let dup = Faults {
            duplicate_rate: 1.0,
            ..Faults::default()
        };
        assert_eq!(roll(&dup, &mut rng), Verdict::Handle { twice: true });
    }
}
