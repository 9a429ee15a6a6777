//! Injected faults applied to an incoming message: what the control room's
//! fault menu does to a node.

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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

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
