//! `producer`: see `producer --help`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::init_tracing();
    producer::run(
        shared::parse_args::<producer::Cli>(),
        shared::shutdown_signal(),
    )
    .await
}
