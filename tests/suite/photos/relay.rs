//! A TCP relay between the code under test and a real server, switched by the test: refuse
//! connections (a server not up yet), forward them, or freeze them (every byte held, the
//! sockets left open: a network cut that neither end notices).

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Accept and close at once.
    Refuse,
    Forward,
    /// Keep connections open but pass nothing either way.
    Freeze,
}

pub struct Relay {
    pub port: u16,
    mode: watch::Sender<Mode>,
    accept: JoinHandle<()>,
}

impl Relay {
    /// A relay on a free local port to `upstream_port` on 127.0.0.1.
    pub async fn start(upstream_port: u16, mode: Mode) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = SocketAddr::from(([127, 0, 0, 1], upstream_port));
        let (mode, watching) = watch::channel(mode);
        let accept = tokio::spawn(accept_loop(listener, upstream, watching));
        Relay { port, mode, accept }
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// `url` (`scheme://user:pass@127.0.0.1:PORT/...`) with its port replaced by the relay's.
    pub fn url_through(&self, url: &str) -> String {
        let (head, rest) = url.split_once("@127.0.0.1:").unwrap();
        let path = rest.find('/').map_or("", |i| &rest[i..]);
        format!("{head}@127.0.0.1:{}{path}", self.port)
    }
}

/// The port of a `scheme://user:pass@127.0.0.1:PORT/...` URL.
pub fn port_of(url: &str) -> u16 {
    let (_, rest) = url.split_once("@127.0.0.1:").unwrap();
    rest.split('/').next().unwrap().parse().unwrap()
}

impl Drop for Relay {
    /// Ends the relay and every connection through it (the accept task owns them).
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, mode: watch::Receiver<Mode>) {
    let mut connections = JoinSet::new();
    while let Ok((client, _)) = listener.accept().await {
        if *mode.borrow() == Mode::Refuse {
            drop(client);
            continue;
        }
        let mode = mode.clone();
        connections.spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::join!(
                pump(client_read, server_write, mode.clone()),
                pump(server_read, client_write, mode),
            );
        });
    }
}

/// Copies one direction; bytes read while frozen are held until the relay thaws.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        if mode.wait_for(|m| *m != Mode::Freeze).await.is_err()
            || to.write_all(&buffer[..read]).await.is_err()
        {
            break;
        }
    }
    let _ = to.shutdown().await;
}
