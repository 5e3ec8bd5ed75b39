//! Client CPU time of this process, read around a timed run: what the library costs per job
//! on the client, which (unlike the broker's share of a shared machine) the library controls.

use std::time::Duration;

/// User plus system CPU time of every thread of this process so far (`getrusage`).
pub fn process_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one `rusage` into the pointer it is given, which points at a
    // zeroed value of that type; RUSAGE_SELF is always a valid target.
    #[allow(unsafe_code)]
    let (status, usage) = unsafe {
        let status = libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        (status, usage.assume_init())
    };
    assert_eq!(status, 0, "getrusage failed");
    let time = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// A rate and the client CPU it took: what one side of a comparison measured in one round.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    pub per_second: f64,
    /// Client CPU time per job, in microseconds.
    pub cpu_us_per_job: f64,
}

/// Times `count` jobs' worth of `work` (which returns its own rate) and the CPU it used.
pub async fn measured<F: Future<Output = f64>>(count: usize, work: F) -> Run {
    let before = process_cpu();
    let per_second = work.await;
    let used = process_cpu().saturating_sub(before);
    Run {
        per_second,
        cpu_us_per_job: used.as_secs_f64() * 1e6 / count as f64,
    }
}
