//! A fault-injecting TCP proxy for outage tests: put it between an app and its PostgreSQL or
//! Redis, then cut, slow down and restore the link while the real service keeps running.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use ferrule::testing::FaultProxy;
//! let proxy = FaultProxy::start("127.0.0.1:6379".parse().unwrap()).await?;
//! let url = format!("redis://{}", proxy.addr()); // give this to the app
//! proxy.cut(); // open connections drop, new ones are refused
//! proxy.restore(); // connections go through again
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does to traffic now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Bytes flow both ways.
    Pass,
    /// Every open connection is closed and new ones are closed as soon as they are accepted.
    Cut,
    /// Bytes flow, each chunk held back this long first.
    Slow(Duration),
}

/// A TCP proxy on an ephemeral port of 127.0.0.1 that forwards to one upstream address and
/// can fail on demand. It stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    mode: Arc<watch::Sender<(Mode, u64)>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1 and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (mode, _) = watch::channel((Mode::Pass, 0));
        let mode = Arc::new(mode);
        let task = tokio::spawn(accept_loop(listener, upstream, mode.clone()));
        Ok(Self { addr, mode, task })
    }

    /// The address to give the app instead of the service's.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every open connection and refuses new ones, as a dead network would.
    pub fn cut(&self) {
        self.set(Mode::Cut);
    }

    /// Holds back every chunk of bytes by `delay`, in both directions.
    pub fn slow(&self, delay: Duration) {
        self.set(Mode::Slow(delay));
    }

    /// Lets traffic through again; connections cut earlier stay closed.
    pub fn restore(&self) {
        self.set(Mode::Pass);
    }

    fn set(&self, mode: Mode) {
        self.mode.send_modify(|(m, generation)| {
            *m = mode;
            *generation += 1;
        });
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    mode: Arc<watch::Sender<(Mode, u64)>>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if mode.borrow().0 == Mode::Cut {
            drop(client);
            continue;
        }
        let watcher = mode.subscribe();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::select! {
                () = pipe(client_read, server_write, watcher.clone()) => {}
                () = pipe(server_read, client_write, watcher.clone()) => {}
                () = until_cut(watcher) => {}
            }
        });
    }
}

/// Copies bytes one way, honouring the mode for each chunk.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mode: watch::Receiver<(Mode, u64)>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let now = mode.borrow().0;
        match now {
            Mode::Cut => return,
            Mode::Slow(delay) => tokio::time::sleep(delay).await,
            Mode::Pass => {}
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Completes when the proxy is cut.
async fn until_cut(mut mode: watch::Receiver<(Mode, u64)>) {
    loop {
        if mode.borrow_and_update().0 == Mode::Cut {
            return;
        }
        if mode.changed().await.is_err() {
            return;
        }
    }
}
