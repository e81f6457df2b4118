//! openraft's network over a transport the node supplies.
//!
//! This module knows how to turn openraft's RPCs into bytes and back ([`codec`], with its
//! version byte), and nothing about QUIC: the node hands it a [`RaftTransport`] that moves one
//! request payload to a peer and brings one response payload back. The receiving node passes
//! the payload to [`handle_rpc`], which calls into its `Raft` and encodes the answer,
//! including openraft's own errors, so that a refusal on the far side becomes a
//! `RPCError::RemoteError` here, exactly as if the call had been local.
//!
//! ```text
//!   Raft (leader) ──RaftNetwork──▶ codec::encode(req) ──RaftTransport::send──▶ peer node
//!                                                                               │
//!   RPCError / response ◀── codec::decode(Result<resp, err>) ◀── handle_rpc ◀───┘
//! ```
//!
//! Failure mapping: `Unreachable` and `Timeout` from the transport become
//! `RPCError::Unreachable`, so openraft backs off before retrying the peer; a payload the peer
//! could not handle (`Remote`) or a response that does not decode becomes `RPCError::Network`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    Fatal, NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed, StreamingError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft, Snapshot, Vote};
use portico_proto::cluster::RaftRpc;
use portico_proto::codec;
use serde::{Deserialize, Serialize};

use super::types::{SnapshotMeta, TypeConfig};

/// Why a Raft RPC did not get a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RaftTransportError {
    /// The peer could not be reached (no connection, connection lost, node unknown).
    #[error("peer unreachable: {0}")]
    Unreachable(String),
    /// No response within the deadline.
    #[error("raft rpc timed out")]
    Timeout,
    /// The peer answered with an error of its own (e.g. it could not decode the request).
    #[error("peer failed the rpc: {0}")]
    Remote(String),
}

/// Moves encoded Raft RPCs between nodes; implemented by the node's QUIC transport (and by
/// in-process routers in tests).
pub trait RaftTransport: Send + Sync + 'static {
    /// Sends one Raft RPC (openraft request encoded with codec) to `target` at `addr`; returns
    /// the encoded response or an error.
    fn send(
        &self,
        target: u64,
        addr: &str,
        rpc: RaftRpc,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, RaftTransportError>> + Send>>;
}

/// A whole snapshot on the wire: the leader's vote, the metadata and the data.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotTransfer {
    vote: Vote<u64>,
    meta: SnapshotMeta,
    data: Vec<u8>,
}

type AppendEntriesResult = Result<AppendEntriesResponse<u64>, RaftError<u64>>;
type VoteResult = Result<VoteResponse<u64>, RaftError<u64>>;
type SnapshotResult = Result<SnapshotResponse<u64>, Fatal<u64>>;

/// The receiving side: decodes `payload`, calls `raft`, and encodes its answer (openraft's
/// errors included). `Err` means the request itself was unusable.
pub async fn handle_rpc(
    raft: &Raft<TypeConfig>,
    rpc: RaftRpc,
    payload: &[u8],
) -> Result<Vec<u8>, String> {
    let encoded = match rpc {
        RaftRpc::AppendEntries => {
            let request: AppendEntriesRequest<TypeConfig> =
                codec::decode(payload).map_err(|error| error.to_string())?;
            let result: AppendEntriesResult = raft.append_entries(request).await;
            codec::encode(&result)
        }
        RaftRpc::Vote => {
            let request: VoteRequest<u64> =
                codec::decode(payload).map_err(|error| error.to_string())?;
            let result: VoteResult = raft.vote(request).await;
            codec::encode(&result)
        }
        RaftRpc::InstallSnapshot => {
            let transfer: SnapshotTransfer =
                codec::decode(payload).map_err(|error| error.to_string())?;
            let snapshot = Snapshot {
                meta: transfer.meta,
                snapshot: Box::new(transfer.data),
            };
            let result: SnapshotResult = raft.install_full_snapshot(transfer.vote, snapshot).await;
            codec::encode(&result)
        }
    };
    encoded.map_err(|error| error.to_string())
}

/// Creates one [`PeerClient`] per target; never connects eagerly (the transport does that on
/// first use).
#[derive(Clone)]
pub struct Network {
    transport: Arc<dyn RaftTransport>,
}

impl Network {
    pub fn new(transport: Arc<dyn RaftTransport>) -> Self {
        Network { transport }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> PeerClient {
        PeerClient {
            transport: self.transport.clone(),
            target,
            node: node.clone(),
        }
    }
}

/// The RPC client for one peer.
pub struct PeerClient {
    transport: Arc<dyn RaftTransport>,
    target: u64,
    node: BasicNode,
}

/// What went wrong before openraft's own answer could be read.
enum CallError {
    Unreachable(Unreachable),
    Network(NetworkError),
}

impl PeerClient {
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        rpc: RaftRpc,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<T, CallError> {
        let response = self
            .transport
            .send(self.target, &self.node.addr, rpc, payload, timeout)
            .await
            .map_err(|error| match error {
                RaftTransportError::Unreachable(_) | RaftTransportError::Timeout => {
                    CallError::Unreachable(Unreachable::new(&error))
                }
                RaftTransportError::Remote(_) => CallError::Network(NetworkError::new(&error)),
            })?;
        codec::decode(&response).map_err(|error| CallError::Network(NetworkError::new(&error)))
    }

    fn rpc_error<E: std::error::Error>(
        error: CallError,
    ) -> RPCError<u64, BasicNode, RaftError<u64, E>> {
        match error {
            CallError::Unreachable(error) => RPCError::Unreachable(error),
            CallError::Network(error) => RPCError::Network(error),
        }
    }

    fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, NetworkError> {
        codec::encode(value).map_err(|error| NetworkError::new(&error))
    }
}

impl PeerClient {
    /// An error the peer's Raft answered with (as opposed to a transport failure).
    fn remote(&self, error: RaftError<u64>) -> RPCError<u64, BasicNode, RaftError<u64>> {
        RPCError::RemoteError(RemoteError::new_with_node(
            self.target,
            self.node.clone(),
            error,
        ))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        let payload = Self::encode(&request).map_err(RPCError::Network)?;
        let result: AppendEntriesResult = self
            .call(RaftRpc::AppendEntries, payload, option.hard_ttl())
            .await
            .map_err(Self::rpc_error)?;
        result.map_err(|error| self.remote(error))
    }

    async fn vote(
        &mut self,
        request: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        let payload = Self::encode(&request).map_err(RPCError::Network)?;
        let result: VoteResult = self
            .call(RaftRpc::Vote, payload, option.hard_ttl())
            .await
            .map_err(Self::rpc_error)?;
        result.map_err(|error| self.remote(error))
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<u64>,
        snapshot: Snapshot<TypeConfig>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<u64>, StreamingError<TypeConfig, Fatal<u64>>> {
        let transfer = SnapshotTransfer {
            vote,
            meta: snapshot.meta,
            data: *snapshot.snapshot,
        };
        let payload = Self::encode(&transfer).map_err(StreamingError::Network)?;
        let call =
            self.call::<SnapshotResult>(RaftRpc::InstallSnapshot, payload, option.hard_ttl());
        let result = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            result = call => result,
        };
        let result = result.map_err(|error| match error {
            CallError::Unreachable(error) => StreamingError::Unreachable(error),
            CallError::Network(error) => StreamingError::Network(error),
        })?;
        result.map_err(|error| {
            StreamingError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                error,
            ))
        })
    }
}
