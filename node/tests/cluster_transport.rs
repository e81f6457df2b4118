//! The cluster PKI and the QUIC/mTLS transport, on loopback. Every wait is bounded.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portico::cluster::certs::{
    ClusterTls, NodeCertSpec, PeerIdentity, identity_of, init_cluster, issue_node_cert,
};
use portico::cluster::transport::{
    ALPN, BoxFuture, Handler, MAX_FRAME_BYTES, Reply, Transport, TransportError,
};
use portico_proto::cluster::{EdgeUpdate, NodeRequest, NodeResponse, RaftRpc, Subscribe};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

fn spec(node_id: u64) -> NodeCertSpec {
    NodeCertSpec {
        node_id,
        hosts: vec!["127.0.0.1".into(), "localhost".into()],
        role: portico::cluster::certs::NodeRole::Origin,
    }
}

fn cluster(nodes: &[u64]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let specs: Vec<_> = nodes.iter().copied().map(spec).collect();
    init_cluster(dir.path(), &specs).unwrap();
    dir
}

fn node_tls(dir: &Path, id: u64) -> ClusterTls {
    ClusterTls::load(
        &dir.join("ca.pem"),
        &dir.join(format!("node-{id}.pem")),
        &dir.join(format!("node-{id}-key.pem")),
    )
    .unwrap()
}

fn admin_tls(dir: &Path) -> ClusterTls {
    ClusterTls::load(
        &dir.join("ca.pem"),
        &dir.join("admin.pem"),
        &dir.join("admin-key.pem"),
    )
    .unwrap()
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Records who called and what; answers with `respond`.
struct Recorder {
    calls: AtomicUsize,
    peers: Mutex<Vec<PeerIdentity>>,
    respond: Box<dyn Fn(NodeRequest) -> Reply + Send + Sync>,
}

impl Recorder {
    fn new(respond: impl Fn(NodeRequest) -> Reply + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Recorder {
            calls: AtomicUsize::new(0),
            peers: Mutex::new(Vec::new()),
            respond: Box::new(respond),
        })
    }

    fn done() -> Arc<Self> {
        Recorder::new(|_| Reply::Response(NodeResponse::Done))
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Handler for Recorder {
    fn handle(&self, peer: PeerIdentity, request: NodeRequest) -> BoxFuture<'static, Reply> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.peers.lock().unwrap().push(peer);
        let reply = (self.respond)(request);
        Box::pin(async move { reply })
    }
}

fn serve(dir: &Path, id: u64, handler: Arc<Recorder>) -> Transport {
    let transport = Transport::bind(loopback(), &node_tls(dir, id)).unwrap();
    transport.serve(handler);
    transport
}

#[test]
fn init_writes_the_pki_and_refuses_to_overwrite_it() {
    let dir = cluster(&[1, 2]);
    for name in [
        "ca.pem",
        "ca-key.pem",
        "node-1.pem",
        "node-1-key.pem",
        "node-2.pem",
        "node-2-key.pem",
        "admin.pem",
        "admin-key.pem",
    ] {
        assert!(dir.path().join(name).is_file(), "{name} missing");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for name in ["ca-key.pem", "node-1-key.pem", "admin-key.pem"] {
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }

    let ca_before = std::fs::read(dir.path().join("ca.pem")).unwrap();
    let error = init_cluster(dir.path(), &[spec(3)]).unwrap_err();
    assert!(format!("{error:#}").contains("ca.pem"), "{error:#}");
    assert_eq!(std::fs::read(dir.path().join("ca.pem")).unwrap(), ca_before);
    assert!(!dir.path().join("node-3.pem").exists());

    assert_eq!(node_tls(dir.path(), 1).identity, PeerIdentity::Node(1));
    assert_eq!(node_tls(dir.path(), 2).identity, PeerIdentity::Node(2));
    assert_eq!(admin_tls(dir.path()).identity, PeerIdentity::Admin);

    // A learner added later, from the same CA; its id cannot be issued twice.
    issue_node_cert(dir.path(), &spec(3)).unwrap();
    assert_eq!(node_tls(dir.path(), 3).identity, PeerIdentity::Node(3));
    assert!(issue_node_cert(dir.path(), &spec(3)).is_err());

    // A certificate that is not from `init` has no identity; a cert from another cluster does
    // not load against this CA, and the error names the file.
    let foreign = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    assert_eq!(identity_of(foreign.cert.der()), None);
    let other = cluster(&[1]);
    let error = ClusterTls::load(
        &dir.path().join("ca.pem"),
        &other.path().join("node-1.pem"),
        &other.path().join("node-1-key.pem"),
    )
    .unwrap_err();
    assert!(format!("{error:#}").contains("node-1.pem"), "{error:#}");
    let error = ClusterTls::load(
        &dir.path().join("missing-ca.pem"),
        &dir.path().join("node-1.pem"),
        &dir.path().join("node-1-key.pem"),
    )
    .unwrap_err();
    assert!(format!("{error:#}").contains("missing-ca.pem"), "{error:#}");
}

#[test]
fn node_certificates_name_the_cluster_and_the_node() {
    let dir = cluster(&[7]);
    let cert = CertificateDer::from_pem_file(dir.path().join("node-7.pem")).unwrap();
    let der = cert.as_ref();
    let contains = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
    assert!(contains(b"portico-cluster"));
    assert!(contains(b"portico://node/7"));
    assert!(contains(b"portico-node-7"));
    assert_eq!(identity_of(&cert), Some(PeerIdentity::Node(7)));
}

#[tokio::test]
async fn a_call_round_trips_and_the_server_sees_the_callers_identity() {
    let dir = cluster(&[1, 2]);
    let handler = Recorder::new(|request| match request {
        NodeRequest::Raft { payload, .. } => Reply::Response(NodeResponse::Raft(Ok(payload))),
        _ => Reply::Response(NodeResponse::Done),
    });
    let server = serve(dir.path(), 2, handler.clone());
    let client = Transport::bind(loopback(), &node_tls(dir.path(), 1)).unwrap();

    let response = client
        .call(server.local_addr(), &NodeRequest::Status, WAIT)
        .await
        .unwrap();
    assert_eq!(response, NodeResponse::Done);
    let request = NodeRequest::Raft {
        rpc: RaftRpc::Vote,
        payload: vec![1, 2, 3],
    };
    let response = client
        .call(server.local_addr(), &request, WAIT)
        .await
        .unwrap();
    assert_eq!(response, NodeResponse::Raft(Ok(vec![1, 2, 3])));
    assert_eq!(
        *handler.peers.lock().unwrap(),
        vec![PeerIdentity::Node(1), PeerIdentity::Node(1)]
    );

    let admin = Transport::bind(loopback(), &admin_tls(dir.path())).unwrap();
    let response = admin
        .call(server.local_addr(), &NodeRequest::Status, WAIT)
        .await
        .unwrap();
    assert_eq!(response, NodeResponse::Done);
    assert_eq!(
        handler.peers.lock().unwrap().last(),
        Some(&PeerIdentity::Admin)
    );

    client.close().await;
    admin.close().await;
    server.close().await;
}

#[tokio::test]
async fn a_client_from_another_ca_is_refused() {
    let dir = cluster(&[1, 2]);
    let other = cluster(&[1]);
    let handler = Recorder::done();
    let server = serve(dir.path(), 2, handler.clone());
    let intruder = Transport::bind(loopback(), &node_tls(other.path(), 1)).unwrap();

    let started = Instant::now();
    let result = intruder
        .call(server.local_addr(), &NodeRequest::Status, WAIT)
        .await;
    // The intruder does not trust the server either; whichever side notices first, the call
    // fails as a refusal, fast, and the handler never runs.
    assert!(
        matches!(result, Err(TransportError::Refused(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < WAIT);
    assert_eq!(handler.calls(), 0);

    // The same with a client that trusts the server's CA but presents a foreign certificate:
    // under TLS 1.3 the refusal only shows when the stream is used.
    let mut mixed = node_tls(other.path(), 1);
    mixed.ca = node_tls(dir.path(), 1).ca;
    let intruder = Transport::bind(loopback(), &mixed).unwrap();
    let result = intruder
        .call(server.local_addr(), &NodeRequest::Status, WAIT)
        .await;
    assert!(
        matches!(result, Err(TransportError::Refused(_))),
        "{result:?}"
    );
    assert_eq!(handler.calls(), 0);
    server.close().await;
}

/// A raw QUIC client with the given rustls config, for what `Transport` never does.
async fn raw_connect(
    config: rustls::ClientConfig,
    server: SocketAddr,
) -> Result<quinn::Connection, quinn::ConnectionError> {
    let mut endpoint = quinn::Endpoint::client(loopback()).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(config).unwrap(),
    )));
    endpoint.connect(server, "portico-cluster").unwrap().await
}

fn raw_client_config(dir: &Path, with_cert: bool) -> rustls::ClientConfig {
    let tls = node_tls(dir, 1);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(tls.ca.clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(portico::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots);
    let mut config = if with_cert {
        builder.with_client_auth_cert(tls.chain, tls.key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    config.alpn_protocols = vec![ALPN.to_vec()];
    config
}

fn frame(request: &NodeRequest) -> Vec<u8> {
    let body = portico_proto::codec::encode(request).unwrap();
    let mut frame = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let dir = cluster(&[1, 2]);
    let handler = Recorder::done();
    let server = serve(dir.path(), 2, handler.clone());

    let outcome = tokio::time::timeout(WAIT, async {
        let connection = raw_connect(raw_client_config(dir.path(), false), server.local_addr())
            .await
            .map_err(|error| error.to_string())?;
        let (mut send, mut recv) = connection
            .open_bi()
            .await
            .map_err(|error| error.to_string())?;
        send.write_all(&frame(&NodeRequest::Status))
            .await
            .map_err(|error| error.to_string())?;
        send.finish().map_err(|error| error.to_string())?;
        recv.read_to_end(1024)
            .await
            .map_err(|error| error.to_string())
    })
    .await
    .expect("the refusal came within the wait");
    assert!(outcome.is_err(), "{outcome:?}");
    assert_eq!(handler.calls(), 0);
    server.close().await;
}

#[tokio::test]
async fn a_frame_over_the_limit_is_refused() {
    let dir = cluster(&[1, 2]);
    let handler = Recorder::done();
    let server = serve(dir.path(), 2, handler.clone());

    let connection = tokio::time::timeout(
        WAIT,
        raw_connect(raw_client_config(dir.path(), true), server.local_addr()),
    )
    .await
    .unwrap()
    .unwrap();
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    // Announce one byte over the limit and send only a little: the server must refuse from the
    // header, not wait for (or allocate) 64 MiB.
    let announced = u32::try_from(MAX_FRAME_BYTES + 1).unwrap();
    send.write_all(&announced.to_be_bytes()).await.unwrap();
    send.write_all(&[1; 16]).await.unwrap();
    let result = tokio::time::timeout(WAIT, recv.read_to_end(1024))
        .await
        .expect("the server answered within the wait");
    assert!(
        matches!(
            result,
            Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(_)))
        ),
        "{result:?}"
    );
    assert_eq!(handler.calls(), 0);

    // The connection is still good for the next stream.
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    send.write_all(&frame(&NodeRequest::Status)).await.unwrap();
    send.finish().unwrap();
    let bytes = tokio::time::timeout(WAIT, recv.read_to_end(1024))
        .await
        .unwrap()
        .unwrap();
    let body: NodeResponse = portico_proto::codec::decode(&bytes[4..]).unwrap();
    assert_eq!(body, NodeResponse::Done);
    assert_eq!(handler.calls(), 1);
    server.close().await;
}

#[tokio::test]
async fn a_subscription_streams_updates_in_order_until_the_server_ends_it() {
    let dir = cluster(&[1, 2]);
    let handler = Recorder::new(|request| {
        assert!(matches!(request, NodeRequest::Subscribe(_)));
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            for index in 1..=5u64 {
                if tx
                    .send(EdgeUpdate::Entries(vec![(index, None)]))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            // Dropping `tx` ends the stream.
        });
        Reply::Stream(rx)
    });
    let server = serve(dir.path(), 2, handler.clone());
    let edge = Transport::bind(loopback(), &node_tls(dir.path(), 1)).unwrap();
    let subscribe = Subscribe {
        edge_id: 1,
        region: "eu".into(),
        have_version: None,
    };
    let mut updates = edge
        .subscribe(server.local_addr(), &subscribe, WAIT)
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Some(update) = tokio::time::timeout(WAIT, updates.recv()).await.unwrap() {
        seen.push(update.unwrap());
    }
    let expected: Vec<_> = (1..=5u64)
        .map(|index| EdgeUpdate::Entries(vec![(index, None)]))
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(*handler.peers.lock().unwrap(), vec![PeerIdentity::Node(1)]);
    server.close().await;
}

#[tokio::test]
async fn the_server_notices_when_a_subscriber_goes_away() {
    let dir = cluster(&[1, 2]);
    let (senders_tx, mut senders_rx) = mpsc::unbounded_channel();
    let handler = Recorder::new(move |_| {
        let (tx, rx) = mpsc::channel(4);
        senders_tx.send(tx).unwrap();
        Reply::Stream(rx)
    });
    let server = serve(dir.path(), 2, handler);
    let edge = Transport::bind(loopback(), &node_tls(dir.path(), 1)).unwrap();
    let subscribe = Subscribe {
        edge_id: 1,
        region: "eu".into(),
        have_version: Some(3),
    };
    let mut updates = edge
        .subscribe(server.local_addr(), &subscribe, WAIT)
        .await
        .unwrap();
    let sender = tokio::time::timeout(WAIT, senders_rx.recv())
        .await
        .unwrap()
        .unwrap();
    sender
        .send(EdgeUpdate::Entries(vec![(4, None)]))
        .await
        .unwrap();
    let first = tokio::time::timeout(WAIT, updates.recv()).await.unwrap();
    assert_eq!(first, Some(Ok(EdgeUpdate::Entries(vec![(4, None)]))));
    drop(updates);
    // With no further update to write, the server still learns the subscriber left.
    tokio::time::timeout(WAIT, sender.closed())
        .await
        .expect("the server dropped the subscription");
    server.close().await;
}

#[tokio::test]
async fn calls_to_a_dead_address_fail_within_the_timeout() {
    let dir = cluster(&[1, 2]);
    let client = Transport::bind(loopback(), &node_tls(dir.path(), 1)).unwrap();
    let dead = {
        let socket = std::net::UdpSocket::bind(loopback()).unwrap();
        socket.local_addr().unwrap()
    };
    let timeout = Duration::from_millis(500);
    let started = Instant::now();
    let result = client.call(dead, &NodeRequest::Status, timeout).await;
    assert!(
        matches!(
            result,
            Err(TransportError::Unreachable(_) | TransportError::Timeout)
        ),
        "{result:?}"
    );
    assert!(started.elapsed() < timeout + Duration::from_millis(500));

    // A server that closes: the cached connection is noticed as closed.
    let server = serve(dir.path(), 2, Recorder::done());
    let addr = server.local_addr();
    client.call(addr, &NodeRequest::Status, WAIT).await.unwrap();
    server.close().await;
    let started = Instant::now();
    let result = client.call(addr, &NodeRequest::Status, timeout).await;
    assert!(
        matches!(
            result,
            Err(TransportError::Unreachable(_) | TransportError::Timeout)
        ),
        "{result:?}"
    );
    assert!(started.elapsed() < timeout + Duration::from_millis(500));

    // A new server on the same address: the client re-dials. The old endpoint's driver lets
    // go of the socket once the last handle is dropped.
    drop(server);
    let deadline = Instant::now() + WAIT;
    let restarted = loop {
        match Transport::bind(addr, &node_tls(dir.path(), 2)) {
            Ok(transport) => break transport,
            Err(error) if Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("rebinding {addr}: {error:#}"),
        }
    };
    restarted.serve(Recorder::done());
    let response = client.call(addr, &NodeRequest::Status, WAIT).await.unwrap();
    assert_eq!(response, NodeResponse::Done);
    restarted.close().await;
}

#[tokio::test]
async fn a_large_snapshot_round_trips() {
    let dir = cluster(&[1, 2]);
    let handler = Recorder::new(|request| match request {
        NodeRequest::Raft { payload, .. } => Reply::Response(NodeResponse::Raft(Ok(payload))),
        _ => Reply::Response(NodeResponse::Done),
    });
    let server = serve(dir.path(), 2, handler);
    let client = Transport::bind(loopback(), &node_tls(dir.path(), 1)).unwrap();
    let payload: Vec<u8> = (0..5 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let request = NodeRequest::Raft {
        rpc: RaftRpc::InstallSnapshot,
        payload: payload.clone(),
    };
    let response = client
        .call(server.local_addr(), &request, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(response, NodeResponse::Raft(Ok(payload)));
    server.close().await;
}

struct Panicky;

impl Handler for Panicky {
    fn handle(&self, _peer: PeerIdentity, request: NodeRequest) -> BoxFuture<'static, Reply> {
        match request {
            NodeRequest::Status => panic!("handler bug"),
            _ => Box::pin(async { Reply::Response(NodeResponse::Done) }),
        }
    }
}

#[tokio::test]
async fn a_handler_panic_costs_only_its_stream() {
    let dir = cluster(&[1, 2]);
    let server = Transport::bind(loopback(), &node_tls(dir.path(), 2)).unwrap();
    server.serve(Arc::new(Panicky));
    let client = Transport::bind(loopback(), &node_tls(dir.path(), 1)).unwrap();
    let result = client
        .call(server.local_addr(), &NodeRequest::Status, WAIT)
        .await;
    assert!(result.is_err(), "{result:?}");
    let request = NodeRequest::ChangeVoters { voters: vec![1] };
    let response = client
        .call(server.local_addr(), &request, WAIT)
        .await
        .unwrap();
    assert_eq!(response, NodeResponse::Done);
    server.close().await;
}

#[tokio::test]
async fn a_ca_signed_certificate_without_an_identity_is_closed() {
    let dir = cluster(&[1, 2]);
    let handler = Recorder::done();
    let server = serve(dir.path(), 2, handler.clone());

    // Sign a client certificate with the real CA key but without a portico:// URI.
    let ca_key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(dir.path().join("ca-key.pem")).unwrap())
            .unwrap();
    let mut ca_params = rcgen::CertificateParams::default();
    let mut ca_name = rcgen::DistinguishedName::new();
    ca_name.push(rcgen::DnType::CommonName, "Portico cluster CA");
    ca_params.distinguished_name = ca_name;
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["nobody".to_string()]).unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, &issuer).unwrap();
    assert_eq!(identity_of(cert.der()), None);

    let mut roots = rustls::RootCertStore::empty();
    roots.add(node_tls(dir.path(), 1).ca).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(portico::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![cert.der().clone()],
            rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    config.alpn_protocols = vec![ALPN.to_vec()];

    let connection = tokio::time::timeout(WAIT, raw_connect(config, server.local_addr()))
        .await
        .unwrap()
        .expect("the handshake itself succeeds: the certificate is from the cluster CA");
    let reason = tokio::time::timeout(WAIT, connection.closed())
        .await
        .expect("the server closed the connection");
    assert!(
        matches!(reason, quinn::ConnectionError::ApplicationClosed(_)),
        "{reason:?}"
    );
    assert_eq!(handler.calls(), 0);
    server.close().await;
}
