//! `worker`: see `worker --help`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::init_tracing();
    worker::run(
        shared::parse_args::<worker::Cli>(),
        shared::shutdown_signal(),
    )
    .await
}
