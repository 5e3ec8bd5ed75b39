//! `worker`: see `worker --help`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    rabbitmq_jobs::init_tracing();
    worker::run(
        rabbitmq_jobs::parse_args::<worker::Cli>(),
        rabbitmq_jobs::shutdown_signal(),
    )
    .await
}
