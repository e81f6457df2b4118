//! A counting backend for the cache tests: every answer says which call it was.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A backend answering every request with `{"call": N}` after `delay`, N counting from 1.
pub async fn counting_backend(delay: Duration) -> anyhow::Result<(SocketAddr, Arc<AtomicU64>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let calls = Arc::new(AtomicU64::new(0));
    let counter = calls.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buffer = [0u8; 4096];
                let read = async {
                    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
                        let n = stream.read(&mut buffer).await.ok()?;
                        if n == 0 || head.len() > 64 * 1024 {
                            return None;
                        }
                        head.extend_from_slice(&buffer[..n]);
                    }
                    Some(())
                };
                if tokio::time::timeout(Duration::from_secs(5), read)
                    .await
                    .ok()
                    .flatten()
                    .is_none()
                {
                    return;
                }
                let call = counter.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(delay).await;
                let body = format!("{{\"call\": {call}}}");
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Ok((addr, calls))
}
