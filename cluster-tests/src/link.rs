//! A user-space link emulator: a UDP relay that adds delay and loss, and can cut the link.
//!
//! Nodes talk QUIC, so a link between regions is a UDP relay. A node in region A is configured
//! to reach a node in region B at the relay's address; the relay forwards each client's
//! datagrams to B from a socket of its own (one per client address) and sends B's answers back.
//! QUIC identifies connections by connection id, and mutual TLS is end to end, so the relay is
//! invisible to both sides except for the conditions it imposes. Delay is applied per datagram
//! through a queue per direction, which keeps order; loss is a seeded coin per datagram.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The conditions of a link, changeable while it runs.
#[derive(Debug)]
pub struct Conditions {
    delay_micros: AtomicU64,
    /// Loss probability in millionths.
    loss_ppm: AtomicU32,
    cut: AtomicBool,
}

impl Conditions {
    pub fn set_delay(&self, delay: Duration) {
        self.delay_micros
            .store(delay.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn set_loss(&self, probability: f64) {
        let ppm = (probability.clamp(0.0, 1.0) * 1_000_000.0) as u32;
        self.loss_ppm.store(ppm, Ordering::Relaxed);
    }

    /// Cuts (or heals) the link in both directions.
    pub fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::Relaxed);
    }

    pub fn is_cut(&self) -> bool {
        self.cut.load(Ordering::Relaxed)
    }

    fn delay(&self) -> Duration {
        Duration::from_micros(self.delay_micros.load(Ordering::Relaxed))
    }
}

/// A running relay from `listen` to `target`.
#[derive(Debug)]
pub struct Link {
    pub listen: SocketAddr,
    pub target: SocketAddr,
    pub conditions: Arc<Conditions>,
    tasks: Vec<JoinHandle<()>>,
    clients: Arc<Mutex<HashMap<SocketAddr, ClientSide>>>,
}

#[derive(Debug)]
struct ClientSide {
    task: JoinHandle<()>,
    to_target: mpsc::UnboundedSender<(Instant, Vec<u8>)>,
}

impl Drop for Link {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Ok(clients) = self.clients.try_lock() {
            for client in clients.values() {
                client.task.abort();
            }
        }
    }
}

/// A deterministic, cheap coin for loss (xorshift).
struct Coin(u64);

impl Coin {
    fn lose(&mut self, ppm: u32) -> bool {
        if ppm == 0 {
            return false;
        }
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % 1_000_000) < u64::from(ppm)
    }
}

/// Sends queued datagrams when their time comes, in order.
fn spawn_delayed_sender(
    socket: Arc<UdpSocket>,
    destination: SocketAddr,
    mut queue: mpsc::UnboundedReceiver<(Instant, Vec<u8>)>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some((due, datagram)) = queue.recv().await {
            tokio::time::sleep_until(due).await;
            let _ = socket.send_to(&datagram, destination).await;
        }
    })
}

impl Link {
    /// Starts relaying datagrams arriving at `listen` (port 0 picks one) to `target`.
    pub async fn start(listen: SocketAddr, target: SocketAddr, seed: u64) -> std::io::Result<Link> {
        let socket = Arc::new(UdpSocket::bind(listen).await?);
        let listen = socket.local_addr()?;
        let conditions = Arc::new(Conditions {
            delay_micros: AtomicU64::new(0),
            loss_ppm: AtomicU32::new(0),
            cut: AtomicBool::new(false),
        });
        let clients: Arc<Mutex<HashMap<SocketAddr, ClientSide>>> = Arc::default();
        let task = {
            let socket = socket.clone();
            let conditions = conditions.clone();
            let clients = clients.clone();
            tokio::spawn(async move {
                let mut coin = Coin(seed | 1);
                let mut buffer = vec![0u8; 65_536];
                loop {
                    let Ok((length, client)) = socket.recv_from(&mut buffer).await else {
                        continue;
                    };
                    if conditions.is_cut() || coin.lose(conditions.loss_ppm.load(Ordering::Relaxed))
                    {
                        continue;
                    }
                    let due = Instant::now() + conditions.delay();
                    let mut clients = clients.lock().await;
                    let side = match clients.get(&client) {
                        Some(side) if !side.task.is_finished() => side,
                        _ => {
                            let Ok(side) = Self::client_side(
                                listen,
                                target,
                                client,
                                socket.clone(),
                                conditions.clone(),
                                seed.wrapping_add(client.port() as u64),
                            )
                            .await
                            else {
                                continue;
                            };
                            clients.insert(client, side);
                            &clients[&client]
                        }
                    };
                    let _ = side.to_target.send((due, buffer[..length].to_vec()));
                }
            })
        };
        Ok(Link {
            listen,
            target,
            conditions,
            tasks: vec![task],
            clients,
        })
    }

    /// The socket that talks to the target on behalf of one client, and the task that carries
    /// the target's answers back.
    async fn client_side(
        listen: SocketAddr,
        target: SocketAddr,
        client: SocketAddr,
        front: Arc<UdpSocket>,
        conditions: Arc<Conditions>,
        seed: u64,
    ) -> std::io::Result<ClientSide> {
        let upstream = Arc::new(UdpSocket::bind(SocketAddr::new(listen.ip(), 0)).await?);
        let (to_target, queue) = mpsc::unbounded_channel();
        let (to_client, back_queue) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
        let forward = spawn_delayed_sender(upstream.clone(), target, queue);
        let backward = spawn_delayed_sender(front, client, back_queue);
        let task = tokio::spawn(async move {
            let mut coin = Coin(seed | 1);
            let mut buffer = vec![0u8; 65_536];
            loop {
                let Ok((length, from)) = upstream.recv_from(&mut buffer).await else {
                    continue;
                };
                if from != target
                    || conditions.is_cut()
                    || coin.lose(conditions.loss_ppm.load(Ordering::Relaxed))
                {
                    continue;
                }
                let due = Instant::now() + conditions.delay();
                if to_client.send((due, buffer[..length].to_vec())).is_err() {
                    break;
                }
            }
            forward.abort();
            backward.abort();
        });
        Ok(ClientSide { task, to_target })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> (SocketAddr, JoinHandle<()>) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut buffer = [0u8; 1500];
            while let Ok((length, from)) = socket.recv_from(&mut buffer).await {
                let _ = socket.send_to(&buffer[..length], from).await;
            }
        });
        (addr, task)
    }

    async fn round_trip(client: &UdpSocket, link: &Link, payload: &[u8]) -> Option<Duration> {
        let started = Instant::now();
        client.send_to(payload, link.listen).await.unwrap();
        let mut buffer = [0u8; 1500];
        match tokio::time::timeout(Duration::from_millis(500), client.recv_from(&mut buffer)).await
        {
            Ok(Ok((length, _))) => {
                assert_eq!(&buffer[..length], payload);
                Some(started.elapsed())
            }
            _ => None,
        }
    }

    #[tokio::test]
    async fn relays_with_delay_cut_and_heal() {
        let (target, server) = echo_server().await;
        let link = Link::start("127.0.0.1:0".parse().unwrap(), target, 7)
            .await
            .unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert!(round_trip(&client, &link, b"plain").await.is_some());

        link.conditions.set_delay(Duration::from_millis(50));
        let rtt = round_trip(&client, &link, b"delayed").await.unwrap();
        assert!(
            rtt >= Duration::from_millis(100),
            "one-way 50 ms both ways: {rtt:?}"
        );

        link.conditions.set_cut(true);
        assert!(round_trip(&client, &link, b"cut").await.is_none());
        link.conditions.set_cut(false);
        assert!(round_trip(&client, &link, b"healed").await.is_some());
        server.abort();
    }

    #[tokio::test]
    async fn loss_drops_about_the_configured_share() {
        let (target, server) = echo_server().await;
        let link = Link::start("127.0.0.1:0".parse().unwrap(), target, 11)
            .await
            .unwrap();
        link.conditions.set_loss(1.0);
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert!(round_trip(&client, &link, b"lost").await.is_none());
        link.conditions.set_loss(0.0);
        assert!(round_trip(&client, &link, b"kept").await.is_some());
        server.abort();
    }
}
