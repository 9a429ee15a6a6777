//! A circuit breaker, as plain data: the order node wraps its calls to
//! payment in it so that a dead payment service costs callers nothing.
//!
//! closed --(N failures in a row)--> open --(after open_for)--> half-open
//! half-open --(trial succeeds)--> closed; --(trial fails)--> open

pub use contracts::status::BreakerState;
use contracts::status::OrderFigures;

/// The breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    state: BreakerState,
    failures: u32,
    threshold: u32,
    open_for_ms: u64,
    opened_at: u64,
    trial_out: bool,
    /// Times it opened.
    pub opened_total: u64,
    /// Calls refused while open.
    pub rejected_total: u64,
}

impl Breaker {
    /// A closed breaker opening after `threshold` failures in a row, for `open_for_ms`.
    pub fn new(threshold: u32, open_for_ms: u64) -> Self {
        Breaker {
            state: BreakerState::Closed,
            failures: 0,
            threshold: threshold.max(1),
            open_for_ms,
            opened_at: 0,
            trial_out: false,
            opened_total: 0,
            rejected_total: 0,
        }
    }

    /// Its state.
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// While open: how long until it lets a trial call through (`now` in ms).
    pub fn open_remaining_ms(&self, now: u64) -> Option<u64> {
        (self.state == BreakerState::Open).then(|| (self.opened_at + self.open_for_ms).saturating_sub(now))
    }

    /// Writes its state and counts into the order node's figures.
    pub fn figures(&self, f: &mut OrderFigures) {
        f.breaker = Some(self.state);
        f.breaker_failures = Some(u64::from(self.failures));
        f.breaker_opened = Some(self.opened_total);
        f.breaker_rejected = Some(self.rejected_total);
    }

    /// Whether a call may go out now (`now` in ms). A `true` in half-open
    /// state is the one trial call.
    pub fn allow(&mut self, now: u64) -> bool {
        match self.state {
            BreakerState::Closed => true,
            BreakerState::Open if now >= self.opened_at + self.open_for_ms => {
                self.state = BreakerState::HalfOpen;
                self.trial_out = true;
                true
            }
            BreakerState::HalfOpen if !self.trial_out => {
                self.trial_out = true;
                true
            }
            _ => {
                self.rejected_total += 1;
                false
            }
        }
    }

    /// The call worked (a decline counts: payment answered).
    pub fn success(&mut self) {
        self.state = BreakerState::Closed;
        self.failures = 0;
        self.trial_out = false;
    }

    /// The call failed (timeout, refused, 5xx).
    pub fn failure(&mut self, now: u64) {
        self.failures += 1;
        let trip = self.state == BreakerState::HalfOpen || self.failures >= self.threshold;
        if trip && self.state != BreakerState::Open {
            self.state = BreakerState::Open;
            self.opened_at = now;
            self.opened_total += 1;
        }
        self.trial_out = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_refuses_at_once() {
        let mut b = Breaker::new(3, 1_000);
        for t in 0..3 {
            assert!(b.allow(t));
            b.failure(t);
        }
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.allow(500));
        assert_eq!(b.rejected_total, 1);
        assert!(b.open_remaining_ms(500).is_some_and(|ms| ms > 0));
    }

    #[test]
    fn half_open_lets_one_trial_through_and_closes_on_success() {
        let mut b = Breaker::new(1, 1_000);
        b.allow(0);
        b.failure(0);
        assert!(b.allow(1_000), "the trial");
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.open_remaining_ms(2_000), None, "half-open is not open");
        assert!(!b.allow(1_001), "only one trial at a time");
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.allow(1_002));
    }

    #[test]
    fn a_failed_trial_opens_it_again() {
        let mut b = Breaker::new(5, 1_000);
        for _ in 0..5 {
            b.failure(0);
        }
        assert!(b.allow(1_000));
        b.failure(1_000);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.allow(1_500));
        assert_eq!(b.opened_total, 2);
    }

    #[test]
    fn a_success_resets_the_count() {
        let mut b = Breaker::new(2, 1_000);
        b.failure(0);
        b.success();
        b.failure(0);
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
