//! `producer`: see `producer --help`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    rabbitmq_jobs::init_tracing();
    producer::run(
        rabbitmq_jobs::parse_args::<producer::Cli>(),
        rabbitmq_jobs::shutdown_signal(),
    )
    .await
}
