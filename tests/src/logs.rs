//! Logs of the code under test, captured per test: the harness shows them for a failing test
//! only, so a flaky failure in CI comes with the worker's and publisher's own account.

use tracing_subscriber::EnvFilter;

/// Installs the test subscriber once; later calls are no-ops. `RUST_LOG` overrides the
/// default filter (the library at info, everything else at warn).
pub fn capture() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("warn,rabbitmq_jobs=info,photos=info,worker=info,producer=info")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
