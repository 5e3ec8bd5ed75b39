//! `photo-producer`: the producer binary, built inside the test package so that tests can
//! start it as a process of its own (`CARGO_BIN_EXE_photo-producer`) and read its memory.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::init_tracing();
    let cli = shared::parse_args::<producer::Cli>();
    producer::run(cli, shared::shutdown_signal()).await
}
