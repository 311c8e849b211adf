//! Run with `cargo run -p counter -- serve` (address from `FERRULE_ADDR`, default 127.0.0.1:3000).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    counter::app().run_cli().await
}
