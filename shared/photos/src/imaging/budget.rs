//! A memory budget for decoding: every decode reserves the bytes its image's header declares
//! before it starts, so concurrent uploads (or jobs) cannot together decode more than the
//! budget, whatever their count. A small file can declare a huge image (a 155 KiB PNG of 49
//! megapixels decodes to 147 MB), so the cost is the declared size, never the file's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::decoder::GuardedDecoder;
use super::upload::{DecodeError, UploadLimits};

/// The budget is counted in units of this many bytes (a semaphore counts in `u32`).
const UNIT: u64 = 64 * 1024;

/// Shared by every decode of a process; cloning shares it.
#[derive(Debug, Clone)]
pub struct DecodeBudget {
    units: Arc<Semaphore>,
    total: u32,
    /// The most units reserved at once so far, for tests and logs.
    peak: Arc<AtomicU64>,
}

/// Room for one decode, given back when dropped.
#[derive(Debug)]
pub struct DecodeReservation {
    _permit: OwnedSemaphorePermit,
}

/// The budget stayed full for as long as the caller would wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the decode memory budget stayed full for {waited:?}")]
pub struct BudgetFull {
    /// How long the caller waited.
    pub waited: Duration,
}

impl DecodeBudget {
    /// A budget of `bytes` (at least one unit).
    #[must_use]
    pub fn new(bytes: u64) -> Self {
        let total = u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .max(1);
        let total = total.min(u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX));
        Self {
            units: Arc::new(Semaphore::new(total as usize)),
            total,
            peak: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The budget in bytes.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        u64::from(self.total) * UNIT
    }

    /// The most bytes reserved at once since the start.
    #[must_use]
    pub fn peak_bytes(&self) -> u64 {
        self.peak.load(Ordering::Relaxed) * UNIT
    }

    /// Reserves `bytes`, waiting for room. A decode larger than the whole budget reserves all
    /// of it, so it runs alone rather than never.
    pub async fn reserve(&self, bytes: u64) -> DecodeReservation {
        let units = self.units_for(bytes);
        match Arc::clone(&self.units).acquire_many_owned(units).await {
            Ok(permit) => self.granted(permit),
            // Only a closed semaphore refuses, and nothing closes this one; were it closed,
            // no room would ever come, which is what waiting for ever says.
            Err(_) => std::future::pending().await,
        }
    }

    /// Reserves `bytes`, waiting at most `wait` for room.
    pub async fn reserve_within(
        &self,
        bytes: u64,
        wait: Duration,
    ) -> Result<DecodeReservation, BudgetFull> {
        tokio::time::timeout(wait, self.reserve(bytes))
            .await
            .map_err(|_| BudgetFull { waited: wait })
    }

    fn units_for(&self, bytes: u64) -> u32 {
        u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total)
    }

    fn granted(&self, permit: OwnedSemaphorePermit) -> DecodeReservation {
        let in_use = u64::from(self.total) - self.units.available_permits() as u64;
        self.peak.fetch_max(in_use, Ordering::Relaxed);
        DecodeReservation { _permit: permit }
    }
}

/// What decoding `bytes` will take, from the header alone (cheap: no pixel is decoded).
/// Refuses what [`check_upload`](super::check_upload) would refuse before decoding.
pub fn decode_cost(bytes: &[u8], limits: &UploadLimits) -> Result<u64, DecodeError> {
    GuardedDecoder::open(bytes, limits).map(|decoder| decoder.decoded_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_decode_larger_than_the_budget_runs_alone_and_others_wait_or_give_up() {
        let budget = DecodeBudget::new(100 * UNIT);
        let huge = budget.reserve(1_000 * UNIT).await;
        assert_eq!(budget.peak_bytes(), budget.bytes());
        // Each refusal below is certain (the room is not there), so a short wait suffices.
        let wait = Duration::from_millis(50);
        assert_eq!(
            budget.reserve_within(1, wait).await.err(),
            Some(BudgetFull { waited: wait })
        );
        drop(huge);
        let first = budget.reserve_within(60 * UNIT, wait).await;
        assert!(first.is_ok());
        assert!(budget.reserve_within(60 * UNIT, wait).await.is_err());
        assert!(budget.reserve_within(40 * UNIT, wait).await.is_ok());
    }
}
