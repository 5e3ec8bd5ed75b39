//! How long to wait before trying again: doubling from a floor to a ceiling, with jitter so
//! that a fleet of workers cut off together does not reconnect in lockstep. Public, so that a
//! domain's own retry loops (waiting for its database) back off alike.

use std::time::Duration;

/// Reconnect delays: 100 ms, 200 ms, ... up to 10 s by default, each jittered to 50–100 %.
#[derive(Debug, Clone)]
pub struct Backoff {
    floor: Duration,
    ceiling: Duration,
    next: Duration,
}

impl Backoff {
    #[must_use]
    pub fn new(floor: Duration, ceiling: Duration) -> Self {
        Self {
            floor,
            ceiling,
            next: floor,
        }
    }

    /// The delay to wait now; the one after doubles.
    pub fn next_delay(&mut self) -> Duration {
        let current = self.next;
        self.next = (self.next * 2).min(self.ceiling);
        current.mul_f64(0.5 + fastrand::f64() / 2.0)
    }

    /// Back to the floor after a success.
    pub fn reset(&mut self) {
        self.next = self.floor;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(10))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_ceiling_and_reset() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let delays: Vec<Duration> = (0..5).map(|_| backoff.next_delay()).collect();
        let ceilings = [100, 200, 400, 400, 400];
        for (delay, ceiling) in delays.iter().zip(ceilings) {
            assert!(*delay <= Duration::from_millis(ceiling));
            assert!(*delay >= Duration::from_millis(ceiling / 2));
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }
}
