//! `photo-producer`: the producer binary, built inside the test package so that tests can
//! start it as a process of its own (`CARGO_BIN_EXE_photo-producer`) and read its memory.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    rabbitmq_jobs::init_tracing();
    let cli = rabbitmq_jobs::parse_args::<producer::Cli>();
    producer::run(cli, rabbitmq_jobs::shutdown_signal()).await
}
