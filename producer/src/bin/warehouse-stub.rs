//! The warehouse stand-in of the compose stack (see `producer::warehouse_stub`).

use anyhow::Context;

/// Takes shipment notices like a warehouse would, logs them and de-duplicates them.
#[derive(Debug, clap::Parser)]
#[command(version, about)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8090")]
    http_addr: std::net::SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    rabbitmq_jobs::init_tracing();
    let cli = rabbitmq_jobs::parse_args::<Cli>();
    let listener = tokio::net::TcpListener::bind(cli.http_addr)
        .await
        .with_context(|| format!("listening on HTTP_ADDR {}", cli.http_addr))?;
    producer::warehouse_stub::serve(listener, rabbitmq_jobs::shutdown_signal())
        .await
        .context("serving")
}
