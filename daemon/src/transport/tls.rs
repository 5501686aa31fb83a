//! rustls and quinn configuration for mutual TLS under the cluster CA.
//!
//! - Server: requires a client certificate that chains to the CA (`WebPkiClientVerifier`).
//! - Link client: verifies the server against the CA *and* the expected `node-<id>.ringraft`.
//! - Call client: verifies the server against the CA and accepts any node name (a joining node
//!   does not know the member's id), but still requires exactly one node name in it.
//!
//! Every config carries the ring provider explicitly, so nothing depends on a process default.

use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use ringraft_raft::NodeId;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::wire::{CALL_ALPN, LINK_ALPN};
use super::TransportError;
use crate::certs::{node_dns_name, node_id_from_certificate, TlsMaterial};

/// Timeouts and stream limits shared by every QUIC connection of the transport.
#[derive(Debug, Clone, Copy)]
pub struct QuicLimits {
    pub keep_alive_interval: Duration,
    pub idle_timeout: Duration,
    pub max_concurrent_uni_streams: u32,
    pub max_concurrent_bidi_streams: u32,
}

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(material: &TlsMaterial) -> Result<Arc<RootCertStore>, TransportError> {
    let mut roots = RootCertStore::empty();
    for ca in &material.ca_certs {
        roots
            .add(ca.clone())
            .map_err(|e| TransportError::Tls(format!("CA certificate: {e}")))?;
    }
    Ok(Arc::new(roots))
}

fn quinn_transport(limits: &QuicLimits) -> Result<Arc<quinn::TransportConfig>, TransportError> {
    let mut transport = quinn::TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(limits.idle_timeout)
        .map_err(|e| TransportError::Config(format!("idle timeout: {e}")))?;
    transport
        .max_idle_timeout(Some(idle))
        .keep_alive_interval(Some(limits.keep_alive_interval))
        .max_concurrent_uni_streams(limits.max_concurrent_uni_streams.into())
        .max_concurrent_bidi_streams(limits.max_concurrent_bidi_streams.into());
    Ok(Arc::new(transport))
}

/// The endpoint's server side: both ALPNs, client certificates required.
pub fn server_config(
    material: &TlsMaterial,
    limits: &QuicLimits,
) -> Result<quinn::ServerConfig, TransportError> {
    let provider = provider();
    let client_verifier =
        WebPkiClientVerifier::builder_with_provider(roots(material)?, provider.clone())
            .build()
            .map_err(|e| TransportError::Tls(format!("client verifier: {e}")))?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TransportError::Tls(e.to_string()))?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(material.node_chain.clone(), material.node_key.clone_key())
        .map_err(|e| TransportError::Tls(format!("node certificate: {e}")))?;
    tls.alpn_protocols = vec![LINK_ALPN.to_vec(), CALL_ALPN.to_vec()];
    let quic = QuicServerConfig::try_from(tls).map_err(|e| TransportError::Tls(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    config.transport_config(quinn_transport(limits)?);
    Ok(config)
}

/// Client config for dialing a known peer: the server name must be `node-<id>.ringraft`.
pub fn link_client_config(
    material: &TlsMaterial,
    limits: &QuicLimits,
) -> Result<quinn::ClientConfig, TransportError> {
    let verifier = WebPkiServerVerifier::builder_with_provider(roots(material)?, provider())
        .build()
        .map_err(|e| TransportError::Tls(format!("server verifier: {e}")))?;
    client_config(material, limits, verifier, LINK_ALPN)
}

/// Client config for a call to a member whose id is unknown.
pub fn call_client_config(
    material: &TlsMaterial,
    limits: &QuicLimits,
) -> Result<quinn::ClientConfig, TransportError> {
    let inner = WebPkiServerVerifier::builder_with_provider(roots(material)?, provider())
        .build()
        .map_err(|e| TransportError::Tls(format!("server verifier: {e}")))?;
    client_config(
        material,
        limits,
        Arc::new(AnyNodeVerifier { inner }),
        CALL_ALPN,
    )
}

fn client_config(
    material: &TlsMaterial,
    limits: &QuicLimits,
    verifier: Arc<dyn ServerCertVerifier>,
    alpn: &[u8],
) -> Result<quinn::ClientConfig, TransportError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TransportError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(material.node_chain.clone(), material.node_key.clone_key())
        .map_err(|e| TransportError::Tls(format!("node certificate: {e}")))?;
    tls.alpn_protocols = vec![alpn.to_vec()];
    let quic = QuicClientConfig::try_from(tls).map_err(|e| TransportError::Tls(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(quinn_transport(limits)?);
    Ok(config)
}

/// Full WebPKI verification against the cluster CA, with the name taken from the certificate's
/// own node name instead of from the caller. A certificate without exactly one node name fails.
#[derive(Debug)]
struct AnyNodeVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for AnyNodeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let id = node_id_from_certificate(end_entity)
            .map_err(|e| rustls::Error::General(format!("peer certificate: {e}")))?;
        let name = ServerName::try_from(node_dns_name(id))
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        self.inner
            .verify_server_cert(end_entity, intermediates, &name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The node id in the verified certificate of a connection's peer.
pub fn peer_node_id(conn: &quinn::Connection) -> Result<NodeId, TransportError> {
    let identity = conn
        .peer_identity()
        .ok_or_else(|| TransportError::Tls("peer presented no certificate".into()))?;
    let chain = identity
        .downcast::<Vec<CertificateDer<'static>>>()
        .map_err(|_| TransportError::Tls("peer identity is not a certificate chain".into()))?;
    let leaf = chain
        .first()
        .ok_or_else(|| TransportError::Tls("peer certificate chain is empty".into()))?;
    node_id_from_certificate(leaf).map_err(|e| TransportError::Tls(e.to_string()))
}

/// The ALPN the connection negotiated.
pub fn negotiated_alpn(conn: &quinn::Connection) -> Option<Vec<u8>> {
    conn.handshake_data()?
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .ok()?
        .protocol
}
