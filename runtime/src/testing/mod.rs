//! Test an app without a browser: a real server on 127.0.0.1 and a native Socket.IO client
//! speaking the same wire protocol as the browser, in the spirit of Phoenix's `LiveViewTest`.
//!
//! ```no_run
//! # async fn demo(app: ferrule::App) -> Result<(), ferrule::testing::TestError> {
//! use ferrule::testing::TestServer;
//! let server = TestServer::start(app).await?;
//! let mut client = server.client().await?;
//! let update = client.call("counter_state.increment", serde_json::json!({})).await?;
//! assert_eq!(update.delta["counter_state"]["count"], 1);
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::App;
pub use crate::fault_proxy::FaultProxy;
use crate::protocol::codec::{EnginePacket, SocketPacket};
use crate::protocol::{EVENT, RouterData, StateUpdate};

mod client;
mod db;
mod http;
mod logs;
mod server;
mod services;

pub use self::http::{TestResponse, http_request};
pub use client::{ClientOptions, TestClient, fresh_token};
pub use db::TestDatabase;
pub use logs::{CapturedLogs, capture_logs};
pub use server::{TestServer, csrf_at, login_at};
#[cfg(feature = "redis")]
pub use services::clear_redis_prefix;
pub use services::{SKIPS_FILE_VAR, service_url, skipped};

/// What went wrong talking to a test server.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// The app did not build or bind.
    #[error("server: {0}")]
    Server(#[from] std::io::Error),
    /// The WebSocket failed.
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    /// The server sent something the protocol does not allow here.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The server refused the connection (`connect_error`).
    #[error("connection refused: {0}")]
    Refused(Value),
    /// Nothing arrived in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The server closed the connection.
    #[error("connection closed")]
    Closed,
    /// A test database could not be made.
    #[error("test database: {0}")]
    Database(String),
}
