//! The cluster's private PKI (`portico cluster init`): one CA that signs every node's and the
//! admin's certificate, so that inter-node QUIC links can use mutual TLS with no outside CA.
//!
//! Why a private CA: only holders of a certificate from *this* CA may send Raft RPCs, writes or
//! subscriptions to a node, and the CA key never has to leave the machine that ran `init`.
//!
//! Identity: each certificate carries its role and node id in a URI subject alternative name,
//! `portico://node/{id}` or `portico://admin`, and the same text in its common name
//! (`portico-node-{id}` / `portico-admin`, for humans and tools such as `openssl x509`). The
//! transport reads the URI SAN from the *verified* peer certificate ([`identity_of`]), so a node
//! cannot claim another node's id. Every node certificate also carries the fixed DNS name
//! [`CLUSTER_SERVER_NAME`], which is the name clients verify, because nodes are dialed by IP
//! address (and through relays in tests) and their addresses may change; the admin certificate
//! does not carry it and has no `serverAuth` usage, so it can never pose as a node.
//!
//! The SAN is read with a small, strict DER walker ([`identity_of`]) rather than a general X.509
//! parser: rcgen's `x509-parser` feature is off and the walker only has to follow the fixed
//! structure of RFC 5280 down to one extension. It only ever sees certificates that rustls has
//! already verified against the cluster CA.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use portico_proto::cluster::NodeId;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The DNS name every node certificate carries and every client verifies.
pub const CLUSTER_SERVER_NAME: &str = "portico-cluster";

const CA_COMMON_NAME: &str = "Portico cluster CA";
/// Origins (Raft members) carry `portico://node/{id}`; edges `portico://edge/{id}`. The role is
/// in the certificate so that an edge's key, which sits on many exposed machines, can never
/// act as an origin (send Raft RPCs, propose writes).
const NODE_URI_PREFIX: &str = "portico://node/";
const EDGE_URI_PREFIX: &str = "portico://edge/";
const ADMIN_URI: &str = "portico://admin";

/// How long the CA and the certificates it issues are valid. Rotation is a re-run of `init`
/// into a new directory (and a rolling restart), so these are long on purpose.
const CA_VALIDITY: Duration = Duration::from_secs(20 * 365 * 24 * 3600);
const LEAF_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Allowance for clocks that run behind the machine that issued the certificate.
const BACKDATE: Duration = Duration::from_secs(3600);

/// The node a certificate is issued for and the names (DNS names or IP addresses) it may also
/// be reached under; [`CLUSTER_SERVER_NAME`] is always added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCertSpec {
    pub node_id: NodeId,
    pub hosts: Vec<String>,
    pub role: NodeRole,
}

/// What a node certificate allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeRole {
    /// A control-plane node: Raft member, serves the cluster protocol.
    Origin,
    /// A data-plane node: may subscribe to origins and report, nothing else.
    Edge,
}

/// Who is at the other end of a link, as proven by its certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerIdentity {
    /// An origin.
    Node(NodeId),
    Edge(NodeId),
    Admin,
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerIdentity::Node(id) => write!(f, "node {id}"),
            PeerIdentity::Edge(id) => write!(f, "edge {id}"),
            PeerIdentity::Admin => f.write_str("admin"),
        }
    }
}

/// The files `init_cluster` writes into its directory.
pub fn ca_cert_path(dir: &Path) -> PathBuf {
    dir.join("ca.pem")
}
pub fn ca_key_path(dir: &Path) -> PathBuf {
    dir.join("ca-key.pem")
}
pub fn node_cert_path(dir: &Path, node_id: NodeId) -> PathBuf {
    dir.join(format!("node-{node_id}.pem"))
}
pub fn node_key_path(dir: &Path, node_id: NodeId) -> PathBuf {
    dir.join(format!("node-{node_id}-key.pem"))
}
pub fn admin_cert_path(dir: &Path) -> PathBuf {
    dir.join("admin.pem")
}
pub fn admin_key_path(dir: &Path) -> PathBuf {
    dir.join("admin-key.pem")
}

/// Creates the cluster CA, one certificate per node and the admin client certificate in `dir`.
/// Refuses to run if `dir` already holds a CA (or its key), so a second `init` can never
/// orphan a running cluster.
pub fn init_cluster(dir: &Path, nodes: &[NodeCertSpec]) -> anyhow::Result<()> {
    for path in [ca_cert_path(dir), ca_key_path(dir)] {
        anyhow::ensure!(
            !path.exists(),
            "{} already exists: refusing to overwrite the cluster CA",
            path.display()
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for spec in nodes {
        anyhow::ensure!(
            seen.insert(spec.node_id),
            "node id {} is listed twice",
            spec.node_id
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;

    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let ca_cert = ca_params()?
        .self_signed(&ca_key)
        .context("signing the CA certificate")?;
    // The key first: a CA certificate without its key would block a retry of `init`.
    write_private(&ca_key_path(dir), ca_key.serialize_pem().as_bytes())?;
    write_new(&ca_cert_path(dir), ca_cert.pem().as_bytes())?;

    let issuer = Issuer::new(ca_params()?, ca_key);
    for spec in nodes {
        write_node_cert(dir, spec, &issuer)?;
    }
    let (cert, key) = issue(leaf_params(None, &[])?, &issuer)?;
    write_private(&admin_key_path(dir), key.as_bytes())?;
    write_new(&admin_cert_path(dir), cert.as_bytes())?;
    Ok(())
}

/// Issues a certificate for a node added later (a new learner), signed by the CA in `dir`.
/// Refuses to overwrite an existing certificate for that node id (ids are never reused).
pub fn issue_node_cert(dir: &Path, spec: &NodeCertSpec) -> anyhow::Result<()> {
    let key_path = ca_key_path(dir);
    let key_pem = std::fs::read_to_string(&key_path)
        .with_context(|| format!("reading the CA key {}", key_path.display()))?;
    let ca_key = KeyPair::from_pem(&key_pem)
        .with_context(|| format!("parsing the CA key {}", key_path.display()))?;
    let issuer = Issuer::new(ca_params()?, ca_key);
    write_node_cert(dir, spec, &issuer)?;

    // The issuer is rebuilt from fixed parameters (no X.509 parser here), so prove that the
    // result chains to the CA certificate on disk; this also catches a CA key that does not
    // belong to `ca.pem`.
    let ca_path = ca_cert_path(dir);
    let ca = load_certs(&ca_path)?
        .into_iter()
        .next()
        .with_context(|| format!("{}: no certificate found", ca_path.display()))?;
    let cert_path = node_cert_path(dir, spec.node_id);
    let cert = load_certs(&cert_path)?
        .into_iter()
        .next()
        .with_context(|| format!("{}: no certificate found", cert_path.display()))?;
    if let Err(error) = verify_chains_to(&ca, &cert) {
        let _ = std::fs::remove_file(&cert_path);
        let _ = std::fs::remove_file(node_key_path(dir, spec.node_id));
        return Err(error.context(format!(
            "the new certificate does not verify against {} (does {} belong to it?)",
            ca_path.display(),
            key_path.display()
        )));
    }
    Ok(())
}

fn write_node_cert(
    dir: &Path,
    spec: &NodeCertSpec,
    issuer: &Issuer<'_, KeyPair>,
) -> anyhow::Result<()> {
    let cert_path = node_cert_path(dir, spec.node_id);
    let key_path = node_key_path(dir, spec.node_id);
    for path in [&cert_path, &key_path] {
        anyhow::ensure!(
            !path.exists(),
            "{} already exists: node ids are never reused",
            path.display()
        );
    }
    let (cert, key) = issue(
        leaf_params(Some((spec.node_id, spec.role)), &spec.hosts)?,
        issuer,
    )?;
    write_private(&key_path, key.as_bytes())?;
    write_new(&cert_path, cert.as_bytes())?;
    Ok(())
}

/// Signs a fresh key pair; returns the certificate and key as PEM.
fn issue(
    params: CertificateParams,
    issuer: &Issuer<'_, KeyPair>,
) -> anyhow::Result<(String, String)> {
    let key = KeyPair::generate().context("generating a key")?;
    let cert = params
        .signed_by(&key, issuer)
        .context("signing a certificate")?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Sets the validity window: from a little before now until `lifetime` from now.
fn set_validity(params: &mut CertificateParams, lifetime: Duration) {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let now = rcgen::date_time_ymd(1970, 1, 1) + since_epoch;
    params.not_before = now - BACKDATE;
    params.not_after = now + lifetime;
}

/// The CA's parameters. `issue_node_cert` rebuilds the issuer from these, so they must stay
/// deterministic (no serial, no dates matter to the issuer; the name and key usages do).
fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_COMMON_NAME);
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, CA_VALIDITY);
    Ok(params)
}

/// A node's (`Some((id, role))`) or the admin's (`None`) certificate parameters.
fn leaf_params(
    node: Option<(NodeId, NodeRole)>,
    hosts: &[String],
) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    match node {
        Some((id, role)) => {
            let (prefix, common_name) = match role {
                NodeRole::Origin => (NODE_URI_PREFIX, format!("portico-node-{id}")),
                NodeRole::Edge => (EDGE_URI_PREFIX, format!("portico-edge-{id}")),
            };
            name.push(DnType::CommonName, common_name);
            params.subject_alt_names.push(SanType::URI(
                format!("{prefix}{id}").try_into().context("node URI")?,
            ));
            params.subject_alt_names.push(SanType::DnsName(
                CLUSTER_SERVER_NAME.try_into().context("cluster name")?,
            ));
            for host in hosts {
                if host == CLUSTER_SERVER_NAME {
                    continue;
                }
                let san = match host.parse::<std::net::IpAddr>() {
                    Ok(ip) => SanType::IpAddress(ip),
                    Err(_) => SanType::DnsName(
                        host.as_str()
                            .try_into()
                            .with_context(|| format!("host name {host:?} is not ASCII"))?,
                    ),
                };
                params.subject_alt_names.push(san);
            }
            // A node is both a server (it accepts links) and a client (it dials peers).
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
        }
        None => {
            name.push(DnType::CommonName, "portico-admin");
            params
                .subject_alt_names
                .push(SanType::URI(ADMIN_URI.try_into().context("admin URI")?));
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
    }
    params.distinguished_name = name;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, LEAF_VALIDITY);
    Ok(params)
}

fn verify_chains_to(
    ca: &CertificateDer<'static>,
    cert: &CertificateDer<'static>,
) -> anyhow::Result<()> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).context("unusable CA certificate")?;
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        crate::tls::provider(),
    )
    .build()
    .context("building a verifier")?;
    verifier
        .verify_client_cert(cert, &[], rustls_pki_types::UnixTime::now())
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(())
}

fn write_new(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    write_file(path, contents, 0o644)
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    write_file(path, contents, 0o600)
}

/// Writes a file that must not exist yet (`create_new`), with `mode` on Unix, so keys are
/// never readable by others, not even for a moment.
fn write_file(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

fn load_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing certificates in {}", path.display()))
}

/// A node's or the admin's TLS material for cluster links.
#[derive(Debug)]
pub struct ClusterTls {
    pub ca: CertificateDer<'static>,
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub identity: PeerIdentity,
}

impl Clone for ClusterTls {
    fn clone(&self) -> Self {
        ClusterTls {
            ca: self.ca.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            identity: self.identity,
        }
    }
}

impl ClusterTls {
    /// Loads the CA certificate, this node's (or the admin's) certificate chain and its key.
    /// The identity comes from the certificate itself, and the certificate must verify against
    /// the CA, so a mixed-up file is reported here rather than as refused links later.
    pub fn load(ca_file: &Path, cert_file: &Path, key_file: &Path) -> anyhow::Result<Self> {
        let ca = load_certs(ca_file)?
            .into_iter()
            .next()
            .with_context(|| format!("{}: no certificate found", ca_file.display()))?;
        let chain = load_certs(cert_file)?;
        let leaf = chain
            .first()
            .with_context(|| format!("{}: no certificate found", cert_file.display()))?;
        let key = PrivateKeyDer::from_pem_file(key_file)
            .with_context(|| format!("reading the private key in {}", key_file.display()))?;
        let identity = identity_of(leaf).with_context(|| {
            format!(
                "{}: not a Portico cluster certificate (no portico:// identity)",
                cert_file.display()
            )
        })?;
        verify_chains_to(&ca, leaf).with_context(|| {
            format!(
                "{} is not signed by the CA in {}",
                cert_file.display(),
                ca_file.display()
            )
        })?;
        Ok(ClusterTls {
            ca,
            chain,
            key,
            identity,
        })
    }
}

/// The identity in a cluster certificate's URI SAN, or `None` if it has none (or more than one,
/// or the DER is malformed). Call it only on certificates verified against the cluster CA.
pub fn identity_of(cert: &CertificateDer<'_>) -> Option<PeerIdentity> {
    let mut found = None;
    for uri in san_uris(cert.as_ref())? {
        let identity = parse_identity_uri(uri)?;
        if found.is_some_and(|previous| previous != identity) {
            return None;
        }
        found = Some(identity);
    }
    found
}

fn parse_identity_uri(uri: &[u8]) -> Option<PeerIdentity> {
    let uri = std::str::from_utf8(uri).ok()?;
    if uri == ADMIN_URI {
        return Some(PeerIdentity::Admin);
    }
    let (id, make): (&str, fn(NodeId) -> PeerIdentity) =
        if let Some(id) = uri.strip_prefix(NODE_URI_PREFIX) {
            (id, PeerIdentity::Node)
        } else {
            (uri.strip_prefix(EDGE_URI_PREFIX)?, PeerIdentity::Edge)
        };
    // Only canonical decimal: no sign, no leading zeros, so each id has one spelling.
    if id.is_empty()
        || !id.bytes().all(|b| b.is_ascii_digit())
        || (id.len() > 1 && id.starts_with('0'))
    {
        return None;
    }
    id.parse().ok().map(make)
}

/// The `uniformResourceIdentifier` entries of the subjectAltName extension, following
/// RFC 5280: Certificate ::= SEQUENCE { tbsCertificate, ... }; TBSCertificate ::= SEQUENCE {
/// [0] version OPTIONAL, serial, signature, issuer, validity, subject, spki, [1] OPTIONAL,
/// [2] OPTIONAL, [3] extensions OPTIONAL }.
fn san_uris(der: &[u8]) -> Option<Vec<&[u8]>> {
    const SEQUENCE: u8 = 0x30;
    const EXTENSIONS: u8 = 0xa3;
    const OID: u8 = 0x06;
    const BOOLEAN: u8 = 0x01;
    const OCTET_STRING: u8 = 0x04;
    const URI: u8 = 0x86; // [6] IMPLICIT IA5String
    // 2.5.29.17
    const SAN_OID: &[u8] = &[0x55, 0x1d, 0x11];

    let (certificate, _) = Der::new(der).expect(SEQUENCE)?;
    let (tbs, _) = Der::new(certificate).expect(SEQUENCE)?;
    let mut fields = Der::new(tbs);
    let mut extensions = None;
    while !fields.is_empty() {
        let (tag, value) = fields.next()?;
        if tag == EXTENSIONS {
            extensions = Some(value);
        }
    }
    let (extensions, _) = Der::new(extensions?).expect(SEQUENCE)?;
    let mut extensions = Der::new(extensions);
    let mut uris = Vec::new();
    let mut seen_san = false;
    while !extensions.is_empty() {
        let mut extension = Der::new(extensions.expect(SEQUENCE)?.0);
        let oid = extension.expect(OID)?.0;
        if oid != SAN_OID {
            continue;
        }
        if seen_san {
            return None; // RFC 5280: an extension appears at most once
        }
        seen_san = true;
        let (mut tag, mut value) = extension.next()?;
        if tag == BOOLEAN {
            (tag, value) = extension.next()?;
        }
        if tag != OCTET_STRING {
            return None;
        }
        let (names, _) = Der::new(value).expect(SEQUENCE)?;
        let mut names = Der::new(names);
        while !names.is_empty() {
            let (tag, value) = names.next()?;
            if tag == URI {
                uris.push(value);
            }
        }
    }
    Some(uris)
}

/// A cursor over DER TLVs with definite lengths (DER forbids the indefinite form).
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Der { rest: bytes }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next element's tag and contents; `None` if the encoding is malformed. Multi-byte
    /// tags (low five bits all set) are refused: nothing on the path we follow uses them.
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.rest.split_first()?;
        if tag & 0x1f == 0x1f {
            return None;
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return None;
            }
            let (bytes, after) = rest.split_at(count);
            rest = after;
            bytes
                .iter()
                .fold(0usize, |len, &byte| (len << 8) | usize::from(byte))
        };
        if rest.len() < len {
            return None;
        }
        let (value, after) = rest.split_at(len);
        self.rest = after;
        Some((tag, value))
    }

    /// The next element, which must have `tag`; also returns the remaining input.
    fn expect(&mut self, tag: u8) -> Option<(&'a [u8], &'a [u8])> {
        let (found, value) = self.next()?;
        (found == tag).then_some((value, self.rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_certificates_carry_the_edge_role() {
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::new(ca_params().unwrap(), KeyPair::generate().unwrap());
        let cert = leaf_params(Some((21, NodeRole::Edge)), &[])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        assert_eq!(identity_of(cert.der()), Some(PeerIdentity::Edge(21)));
        assert_eq!(
            parse_identity_uri(b"portico://edge/3"),
            Some(PeerIdentity::Edge(3))
        );
        assert_eq!(parse_identity_uri(b"portico://edge/03"), None);
    }

    fn leaf(node: Option<NodeId>) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        let ca = ca_params().unwrap();
        let issuer = Issuer::new(ca, KeyPair::generate().unwrap());
        leaf_params(
            node.map(|id| (id, NodeRole::Origin)),
            &["10.0.0.1".into(), "node.example".into()],
        )
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap()
        .der()
        .clone()
    }

    #[test]
    fn identities_parse_back() {
        assert_eq!(identity_of(&leaf(Some(0))), Some(PeerIdentity::Node(0)));
        assert_eq!(
            identity_of(&leaf(Some(u64::MAX))),
            Some(PeerIdentity::Node(u64::MAX))
        );
        assert_eq!(identity_of(&leaf(None)), Some(PeerIdentity::Admin));
    }

    #[test]
    fn only_canonical_identity_uris_count() {
        assert_eq!(
            parse_identity_uri(b"portico://node/12"),
            Some(PeerIdentity::Node(12))
        );
        for bad in [
            &b"portico://node/"[..],
            b"portico://node/012",
            b"portico://node/+1",
            b"portico://node/1/x",
            b"portico://node/18446744073709551616",
            b"portico://admin/",
            b"https://example.com",
        ] {
            assert_eq!(parse_identity_uri(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn malformed_der_yields_no_identity_and_never_panics() {
        let cert = leaf(Some(5));
        let der = cert.as_ref();
        for len in 0..der.len() {
            assert_eq!(
                identity_of(&CertificateDer::from(&der[..len])),
                None,
                "{len}"
            );
        }
        let mut flipped = der.to_vec();
        for index in 0..flipped.len() {
            flipped[index] ^= 0xff;
            // Any answer is fine as long as the walker does not panic.
            let _ = identity_of(&CertificateDer::from(flipped.as_slice()));
            flipped[index] ^= 0xff;
        }
    }
}
