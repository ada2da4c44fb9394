//! `--metrics ADDR`: the node's counters and gauges over HTTP, in the Prometheus text format
//! (`curl http://ADDR/metrics`; any path answers the same).
//!
//! Counters: every `gossip_core::Metrics` field as `gossip_<field>_total` and every driver
//! counter as `gossip_driver_<field>_total`. Gauges: `gossip_members{state="..."}`,
//! `gossip_keys` (keys held, every member's, tombstones included), `gossip_local_health`
//! (Lifeguard's score: above 0, this node thinks itself slow and stretches its probe
//! timeouts); `gossip_max_version{node="..."}` is left out on purpose (one series per member
//! would not scale). The same names as the adapters' `metrics` feature publishes.

use std::fmt::Write as _;
use std::net::SocketAddr;

use gossip_tokio::{Handle, MemberState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves the metrics of `node` on `address` until the node shuts down.
pub async fn serve(node: Handle, address: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(address).await?;
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { continue };
            let asked = node.clone();
            tokio::spawn(async move {
                // The request itself does not matter; read what came so the client is not reset.
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request).await;
                let (status, body) = match render(&asked).await {
                    Some(body) => ("200 OK", body),
                    None => ("503 Service Unavailable", "the node has shut down\n".to_owned()),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
            if node.is_closed() {
                return;
            }
        }
    });
    Ok(())
}

/// The exposition text, or `None` once the node has shut down.
async fn render(node: &Handle) -> Option<String> {
    let metrics = node.metrics().await.ok()?;
    let members = node.members().await.ok()?;
    let mut out = String::new();
    for (name, value) in metrics.core.counters() {
        let _ = writeln!(out, "# TYPE gossip_{name}_total counter\ngossip_{name}_total {value}");
    }
    for (name, value) in metrics.driver.counters() {
        let _ =
            writeln!(out, "# TYPE gossip_driver_{name}_total counter\ngossip_driver_{name}_total {value}");
    }
    let _ = writeln!(out, "# TYPE gossip_members gauge");
    for (state, label) in [
        (MemberState::Alive, "alive"),
        (MemberState::Suspect, "suspect"),
        (MemberState::Dead, "dead"),
        (MemberState::Left, "left"),
    ] {
        let count = members.iter().filter(|member| member.state == state).count();
        let _ = writeln!(out, "gossip_members{{state=\"{label}\"}} {count}");
    }
    let keys: usize = members.iter().map(|member| member.keys).sum();
    let _ = writeln!(out, "# TYPE gossip_keys gauge\ngossip_keys {keys}");
    let _ = writeln!(out, "# TYPE gossip_local_health gauge\ngossip_local_health {}", metrics.local_health);
    Some(out)
}
