//! Request workers: N threads, each a current-thread tokio runtime with its own `SO_REUSEPORT`
//! listener sockets, so a connection, its requests, their timers and their upstream
//! connections stay on the thread that accepted them.
//!
//! Why not the multi-threaded runtime: its work stealing moved a request's task and its
//! upstream connection's task between cores, and every hand-off woke another thread (a futex,
//! an IPI, cold caches); on a proxied request about 60 % of the CPU went to the kernel
//! (bench/README.md). With one runtime per core and the kernel spreading connections over the
//! listeners (`SO_REUSEPORT` hashes the 4-tuple), a request never leaves its core, and anything
//! per worker (upstream pools, buffers, limits) needs no lock.
//!
//! What runs apart, on the node's main runtime: Raft, edge sync, the quota and demand
//! reporters, the management and metrics listeners; the access-log writer has its own thread.
//! None of it can sit between a request and its worker.
//!
//! The cost: a connection is never moved off a busy worker, so a few very busy connections
//! can load one core more than the others (the kernel balances connections, not requests);
//! nginx and HAProxy make the same trade.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::runtime::Handle;

/// Listen backlog of every worker's socket (what `tokio::net::TcpListener::bind` uses).
const BACKLOG: u32 = 1024;
/// Client connections a node holds at most (all workers, all data-plane listeners), unless its
/// file-descriptor limit allows fewer.
pub const MAX_CONNECTIONS_DEFAULT: usize = 16_384;
/// File descriptors kept out of the connection budget: listeners, the data dir, the cluster's
/// links, the log, a management request's files.
const RESERVED_FDS: u64 = 512;
/// How long a stopping worker waits for its blocking tasks before leaving them behind.
const BLOCKING_SHUTDOWN: Duration = Duration::from_secs(1);

/// The node's request workers; dropping it stops them (after their listeners have drained, when
/// the owner waited for [`super::Listener::stopped`] first).
#[derive(Debug)]
pub struct Workers {
    workers: Vec<Worker>,
}

#[derive(Debug)]
struct Worker {
    handle: Handle,
    slots: Arc<Slots>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Workers {
    /// One worker per available core (what `--workers` and `workers =` default to).
    pub fn default_count() -> usize {
        std::thread::available_parallelism().map_or(1, usize::from)
    }

    /// Starts `count` workers (at least one), named `portico-worker-{i}`, sharing
    /// [`MAX_CONNECTIONS_DEFAULT`] client connections (see [`Workers::start_with`]).
    pub fn start(count: usize) -> io::Result<Workers> {
        Workers::start_with(count, MAX_CONNECTIONS_DEFAULT)
    }

    /// Starts `count` workers sharing at most `max_connections` client connections, fewer
    /// when the file-descriptor limit (raised to its hard limit first) cannot hold them and an
    /// upstream connection for each: every worker gets an equal share, so a flood on one
    /// worker's listener cannot take the others' slots.
    pub fn start_with(count: usize, max_connections: usize) -> io::Result<Workers> {
        let count = count.max(1);
        let budget = connection_budget(max_connections, raise_fd_limit());
        let per_worker = (budget / count).max(1);
        let mut workers = Workers {
            workers: Vec::with_capacity(count),
        };
        for index in 0..count {
            // Dropping `workers` on an error stops the ones already started.
            workers.workers.push(Worker::start(index, per_worker)?);
        }
        tracing::info!(
            workers = count,
            connections_per_worker = per_worker,
            "request workers started"
        );
        Ok(workers)
    }

    /// Client connections each worker admits.
    pub fn connections_per_worker(&self) -> usize {
        self.workers.first().map_or(0, |worker| worker.slots.limit)
    }

    pub fn len(&self) -> usize {
        self.workers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// The runtimes, to spawn on.
    pub fn handles(&self) -> impl Iterator<Item = &Handle> {
        self.workers.iter().map(|worker| &worker.handle)
    }

    /// Binds one listening socket per worker on `addr` (port 0: one free port for all of them),
    /// each registered with its worker's runtime.
    pub fn bind(&self, addr: SocketAddr) -> io::Result<Vec<(Handle, TcpListener, Arc<Slots>)>> {
        // `SO_REUSEPORT` would let this bind share a port another process already serves
        // (and split its traffic with it): an explicit port is first bound without it, so a
        // port in use fails here as a plain bind would.
        if addr.port() != 0 {
            drop(std::net::TcpListener::bind(addr)?);
        }
        let mut bound = Vec::with_capacity(self.workers.len());
        let mut addr = addr;
        for worker in &self.workers {
            let socket = match addr {
                SocketAddr::V4(_) => TcpSocket::new_v4()?,
                SocketAddr::V6(_) => TcpSocket::new_v6()?,
            };
            socket.set_reuseaddr(true)?;
            socket.set_reuseport(true)?;
            socket.set_nodelay(true)?;
            socket.bind(addr)?;
            // The next workers bind the port the first one got.
            addr = socket.local_addr()?;
            // `listen` registers the socket with the runtime in context: the worker's.
            let listener = {
                let _context = worker.handle.enter();
                socket.listen(BACKLOG)?
            };
            bound.push((worker.handle.clone(), listener, worker.slots.clone()));
        }
        Ok(bound)
    }
}

impl Worker {
    fn start(index: usize, connections: usize) -> io::Result<Worker> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name(format!("portico-worker-{index}-blocking"))
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("portico-worker-{index}"))
            .spawn(move || {
                // The runtime runs its tasks only while this thread drives it.
                runtime.block_on(async {
                    let _ = stopped.await;
                });
                runtime.shutdown_timeout(BLOCKING_SHUTDOWN);
            })?;
        Ok(Worker {
            handle,
            slots: Arc::new(Slots::new(connections)),
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// A worker's (or a single listener's) client-connection slots. Only the owning worker's
/// accept loops and connections touch the count.
#[derive(Debug)]
pub struct Slots {
    limit: usize,
    open: AtomicUsize,
}

/// One admitted connection; its slot is free again when this drops.
#[derive(Debug)]
pub struct Slot(Arc<Slots>);

impl Slots {
    pub fn new(limit: usize) -> Slots {
        Slots {
            limit,
            open: AtomicUsize::new(0),
        }
    }

    /// A slot, or `None` when `limit` connections are open.
    pub fn try_take(self: &Arc<Self>) -> Option<Slot> {
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.limit).then_some(open + 1)
            });
        taken.ok().map(|_| Slot(self.clone()))
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Connections the node can hold: `max`, or fewer when `fd_limit` file descriptors cannot hold
/// the reserve and two per connection (the client's and an upstream's).
fn connection_budget(max: usize, fd_limit: u64) -> usize {
    let by_fds = fd_limit.saturating_sub(RESERVED_FDS) / 2;
    max.min(usize::try_from(by_fds).unwrap_or(usize::MAX))
        .max(1)
}

/// Raises the soft file-descriptor limit to the hard one (as nginx's `worker_rlimit_nofile`
/// would be set by hand) and returns the limit in force.
fn raise_fd_limit() -> u64 {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct given.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return 1024;
            }
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit = raised;
                }
            }
        }
        limit.rlim_cur
    }
    #[cfg(not(unix))]
    {
        u64::MAX
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        // Every worker is told to stop before any is waited for, so they stop together.
        for worker in &mut self.workers {
            if let Some(stop) = worker.stop.take() {
                let _ = stop.send(());
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("a request worker panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn every_worker_listens_on_the_same_port_and_answers() {
        let workers = Workers::start(3).unwrap();
        let bound = workers.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = bound[0].1.local_addr().unwrap().port();
        assert_ne!(port, 0);
        for (handle, listener, _) in bound {
            assert_eq!(listener.local_addr().unwrap().port(), port);
            handle.spawn(async move {
                // Answers with the worker thread's name, then stops after 64 connections.
                for _ in 0..64 {
                    let Ok((mut stream, _)) = listener.accept().await else {
                        return;
                    };
                    let name = std::thread::current().name().unwrap_or("").to_string();
                    let _ = stream.write_all(name.as_bytes()).await;
                }
            });
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut names = std::collections::BTreeSet::new();
        runtime.block_on(async {
            for _ in 0..48 {
                let mut stream = tokio::time::timeout(
                    Duration::from_secs(5),
                    tokio::net::TcpStream::connect(("127.0.0.1", port)),
                )
                .await
                .unwrap()
                .unwrap();
                let mut name = String::new();
                tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut name))
                    .await
                    .unwrap()
                    .unwrap();
                assert!(name.starts_with("portico-worker-"), "{name}");
                names.insert(name);
            }
        });
        // The kernel spreads connections by a hash of the 4-tuple: 48 connections from
        // different source ports reach more than one of the 3 listeners.
        assert!(names.len() > 1, "all connections went to {names:?}");
        drop(workers);
    }

    #[test]
    fn the_connection_budget_fits_the_descriptor_limit_and_is_shared_out() {
        assert_eq!(connection_budget(16_384, 1_048_576), 16_384);
        assert_eq!(connection_budget(16_384, 1024), 256);
        assert_eq!(connection_budget(16_384, 100), 1);
        let workers = Workers::start_with(2, 10).unwrap();
        assert_eq!(workers.connections_per_worker(), 5);

        let slots = Arc::new(Slots::new(2));
        let first = slots.try_take().unwrap();
        let _second = slots.try_take().unwrap();
        assert!(slots.try_take().is_none());
        drop(first);
        assert_eq!(slots.open(), 1);
        assert!(slots.try_take().is_some());
    }

    #[test]
    fn an_explicit_port_another_socket_listens_on_is_refused() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let workers = Workers::start(2).unwrap();
        let error = workers.bind(taken.local_addr().unwrap()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
        // A port the workers bound is not shared with a second set of workers either.
        let bound = workers.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = bound[0].1.local_addr().unwrap();
        let others = Workers::start(1).unwrap();
        assert!(others.bind(port).is_err());
    }

    #[test]
    fn dropping_the_workers_stops_their_threads() {
        let workers = Workers::start(2).unwrap();
        let handles: Vec<Handle> = workers.handles().cloned().collect();
        drop(workers);
        for handle in handles {
            // A stopped runtime refuses new work: the spawned task never runs.
            let (sender, receiver) = std::sync::mpsc::channel::<()>();
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                handle.spawn(async move {
                    let _ = sender.send(());
                })
            }));
            assert!(receiver.recv_timeout(Duration::from_millis(200)).is_err());
        }
    }
}
