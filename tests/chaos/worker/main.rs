//! `chaos-worker`: the real photo worker with the chaos run's test kinds on the same registry,
//! so the chaos run kills, freezes and poisons the very runtime that serves the photo app.
//!
//! Configured from the environment like `worker` (`worker --help`); the test kinds record
//! into the same database (`DATABASE_URL`), in tables the harness creates.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rabbitmq_jobs::{Job, JobContext, JobError, JobResult, Registry, Worker};
use sqlx::PgPool;
use support::chaos::{self, ChaosAbort, ChaosEffect, ChaosPanic};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    rabbitmq_jobs::init_tracing();
    let cli = rabbitmq_jobs::parse_args::<worker::Cli>();
    let registry = worker::registry(&cli.handlers, &cli.amqp, cli.publishing.clone()).await?;
    let pool = chaos::connect(&cli.handlers.database.url, 4)
        .await
        .context("connecting the chaos kinds' pool (DATABASE_URL)")?;
    let name: Arc<str> = cli.worker.name.clone().into();
    let registry = with_chaos_kinds(registry, &pool, &name);
    let worker = Worker::new(cli.amqp, cli.worker, cli.publishing, registry)
        .context("invalid worker configuration")?;
    worker
        .run(rabbitmq_jobs::shutdown_signal())
        .await
        .context("worker stopped")
}

/// Registers the three chaos kinds beside the photo kinds.
fn with_chaos_kinds(registry: Registry, pool: &PgPool, name: &Arc<str>) -> Registry {
    let (effect_pool, effect_name) = (pool.clone(), Arc::clone(name));
    let (panic_pool, panic_name) = (pool.clone(), Arc::clone(name));
    let (abort_pool, abort_name) = (pool.clone(), Arc::clone(name));
    registry
        .register(move |job: ChaosEffect, ctx: JobContext| {
            effect(effect_pool.clone(), Arc::clone(&effect_name), job, ctx)
        })
        .register(move |job: ChaosPanic, ctx: JobContext| {
            panics(panic_pool.clone(), Arc::clone(&panic_name), job, ctx)
        })
        .register(move |job: ChaosAbort, ctx: JobContext| {
            aborts(abort_pool.clone(), Arc::clone(&abort_name), job, ctx)
        })
}

/// Records the run, sleeps a little so jobs overlap, and applies the effect once per id.
async fn effect(pool: PgPool, worker: Arc<str>, job: ChaosEffect, ctx: JobContext) -> JobResult {
    chaos::record_run(&pool, ChaosEffect::KIND, job.seq, &worker, &ctx)
        .await
        .map_err(|e| JobError::retry(format!("recording the run: {e}")))?;
    tokio::time::sleep(Duration::from_millis(fastrand::u64(10..=60))).await;
    chaos::apply_effect(&pool, ctx.id, job.seq, &worker)
        .await
        .map_err(|e| JobError::retry(format!("applying the effect: {e}")))?;
    Ok(())
}

/// Records the run, then panics: every time.
async fn panics(pool: PgPool, worker: Arc<str>, job: ChaosPanic, ctx: JobContext) -> JobResult {
    let _ = chaos::record_run(&pool, ChaosPanic::KIND, 0, &worker, &ctx).await;
    panic!("chaos_panic plant {} panics every time", job.plant);
}

/// Records the run, then aborts the whole process: every time.
async fn aborts(pool: PgPool, worker: Arc<str>, job: ChaosAbort, ctx: JobContext) -> JobResult {
    let _ = chaos::record_run(&pool, ChaosAbort::KIND, 0, &worker, &ctx).await;
    eprintln!(
        "chaos_abort plant {}: aborting the worker process",
        job.plant
    );
    std::process::abort();
}
