//! The cluster's certificates: a cluster CA, node certificates that bind a node id to a key, and
//! loading them from PEM files for the peer transport.
//!
//! A node's identity is the DNS subject alternative name `node-<id>.ringraft`. A certificate must
//! carry exactly one such name: a certificate naming two nodes could impersonate either, so it is
//! refused rather than resolved by picking one.
//!
//! Files (what `ringraftctl certs` writes and `TlsFiles::in_dir` expects):
//! `ca.pem`, `ca-key.pem` (0600), `node.pem`, `node-key.pem` (0600).

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use ringraft_raft::NodeId;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub const CA_CERT_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca-key.pem";
pub const NODE_CERT_FILE: &str = "node.pem";
pub const NODE_KEY_FILE: &str = "node-key.pem";

const NODE_NAME_PREFIX: &str = "node-";
const NODE_NAME_SUFFIX: &str = ".ringraft";
/// PEM files we read are a certificate or a key; anything near this size is not one.
const PEM_FILE_BYTES_MAX: u64 = 1 << 20;
const CA_VALIDITY_DAYS: i64 = 20 * 365;
const NODE_VALIDITY_DAYS: i64 = 5 * 365;
/// Tolerate clocks that are somewhat behind the machine that issued the certificate.
const BACKDATE_DAYS: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: file is larger than {PEM_FILE_BYTES_MAX} bytes, not a PEM certificate or key"
    )]
    FileTooLarge { path: PathBuf },
    #[error("{path}: {what}")]
    Pem { path: PathBuf, what: String },
    #[error("generating a certificate failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("certificate is not valid X.509: {0}")]
    Parse(String),
    #[error("certificate carries no node name (expected a DNS name node-<id>.ringraft)")]
    NoNodeName,
    #[error("certificate carries several node names ({0:?}); refusing an ambiguous identity")]
    SeveralNodeNames(Vec<NodeId>),
    #[error("extra name {0:?} is a node name; a certificate names only its own node")]
    ExtraNodeName(String),
    #[error("node id must be at least 1")]
    ZeroNodeId,
    #[error("{0} already exists; refusing to overwrite it")]
    AlreadyExists(PathBuf),
}

/// The DNS name that identifies node `id` in its certificate and in TLS server name checks.
pub fn node_dns_name(id: NodeId) -> String {
    format!("{NODE_NAME_PREFIX}{id}{NODE_NAME_SUFFIX}")
}

/// Inverse of [`node_dns_name`], strictly: lowercase, decimal, no sign, no leading zero, not 0,
/// fits in a u64. Anything else is not a node name (so each id has exactly one spelling).
pub fn parse_node_dns_name(name: &str) -> Option<NodeId> {
    let digits = name
        .strip_prefix(NODE_NAME_PREFIX)?
        .strip_suffix(NODE_NAME_SUFFIX)?;
    let well_formed = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if !well_formed {
        return None;
    }
    digits.parse::<NodeId>().ok()
}

/// The node id a DER certificate is issued for. This does not verify the certificate: call it
/// only on a certificate that rustls has already verified against the cluster CA.
pub fn node_id_from_certificate(der: &[u8]) -> Result<NodeId, CertError> {
    let (rest, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| CertError::Parse(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CertError::Parse(
            "trailing bytes after the certificate".into(),
        ));
    }
    let san = cert
        .subject_alternative_name()
        .map_err(|e| CertError::Parse(e.to_string()))?
        .ok_or(CertError::NoNodeName)?;
    let mut ids: Vec<NodeId> = san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            x509_parser::extensions::GeneralName::DNSName(dns) => parse_node_dns_name(dns),
            _ => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    match ids.as_slice() {
        [] => Err(CertError::NoNodeName),
        [id] => Ok(*id),
        _ => Err(CertError::SeveralNodeNames(ids)),
    }
}

/// A cluster CA: its certificate and private key, both PEM.
#[derive(Clone)]
pub struct CertificateAuthority {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// A new self-signed CA (ECDSA P-256) whose subject is `common_name`.
    pub fn generate(common_name: &str) -> Result<CertificateAuthority, CertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params, CA_VALIDITY_DAYS);
        let cert = params.self_signed(&key)?;
        Ok(CertificateAuthority {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Reads `ca.pem` and `ca-key.pem` from `dir`.
    pub fn load(dir: &Path) -> Result<CertificateAuthority, CertError> {
        let ca = CertificateAuthority {
            cert_pem: read_pem_file(&dir.join(CA_CERT_FILE))?,
            key_pem: read_pem_file(&dir.join(CA_KEY_FILE))?,
        };
        // Fail here, naming the files, rather than later when issuing.
        ca.issuer().map_err(|e| CertError::Pem {
            path: dir.to_path_buf(),
            what: format!("not a usable CA certificate and key: {e}"),
        })?;
        Ok(ca)
    }

    /// Writes `ca.pem` and `ca-key.pem` (mode 0600) into `dir`, creating it.
    pub fn write(&self, dir: &Path, overwrite: Overwrite) -> Result<(), CertError> {
        create_dir(dir)?;
        write_file(&dir.join(CA_CERT_FILE), &self.cert_pem, 0o644, overwrite)?;
        write_file(&dir.join(CA_KEY_FILE), &self.key_pem, 0o600, overwrite)
    }

    /// Issues a certificate for node `id`, valid as both TLS server and client, with the SAN
    /// `node-<id>.ringraft` plus `extra_names` (DNS names, or IP addresses when they parse as one).
    pub fn issue_node(
        &self,
        id: NodeId,
        extra_names: &[String],
    ) -> Result<NodeCertificate, CertError> {
        if id == 0 {
            return Err(CertError::ZeroNodeId);
        }
        let own_name = node_dns_name(id);
        let mut names = vec![own_name.clone()];
        for name in extra_names {
            if parse_node_dns_name(name).is_some() {
                // Another node name would make the identity ambiguous.
                return Err(CertError::ExtraNodeName(name.clone()));
            }
            names.push(name.clone());
        }
        let mut params = CertificateParams::new(names)?;
        params.distinguished_name.push(DnType::CommonName, own_name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, NODE_VALIDITY_DAYS);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer()?)?;
        Ok(NodeCertificate {
            node_id: id,
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    fn issuer(&self) -> Result<Issuer<'static, KeyPair>, CertError> {
        let key = KeyPair::from_pem(&self.key_pem)?;
        Ok(Issuer::from_ca_cert_pem(&self.cert_pem, key)?)
    }
}

/// A node's certificate and private key, both PEM.
#[derive(Clone)]
pub struct NodeCertificate {
    pub node_id: NodeId,
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for NodeCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCertificate")
            .field("node_id", &self.node_id)
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl NodeCertificate {
    /// Writes `node.pem` and `node-key.pem` (mode 0600) into `dir`, creating it.
    pub fn write(&self, dir: &Path, overwrite: Overwrite) -> Result<(), CertError> {
        create_dir(dir)?;
        write_file(&dir.join(NODE_CERT_FILE), &self.cert_pem, 0o644, overwrite)?;
        write_file(&dir.join(NODE_KEY_FILE), &self.key_pem, 0o600, overwrite)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    Refuse,
    Replace,
}

/// Where a node's TLS files are.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TlsFiles {
    pub ca_cert: PathBuf,
    pub node_cert: PathBuf,
    pub node_key: PathBuf,
}

impl TlsFiles {
    /// `dir/ca.pem`, `dir/node.pem`, `dir/node-key.pem`.
    pub fn in_dir(dir: &Path) -> TlsFiles {
        TlsFiles {
            ca_cert: dir.join(CA_CERT_FILE),
            node_cert: dir.join(NODE_CERT_FILE),
            node_key: dir.join(NODE_KEY_FILE),
        }
    }
}

/// A node's TLS material, parsed: the CA roots to trust, its own chain (leaf first) and key.
#[derive(Debug)]
pub struct TlsMaterial {
    pub ca_certs: Vec<CertificateDer<'static>>,
    pub node_chain: Vec<CertificateDer<'static>>,
    pub node_key: PrivateKeyDer<'static>,
}

impl Clone for TlsMaterial {
    fn clone(&self) -> Self {
        TlsMaterial {
            ca_certs: self.ca_certs.clone(),
            node_chain: self.node_chain.clone(),
            node_key: self.node_key.clone_key(),
        }
    }
}

impl TlsMaterial {
    pub fn load(files: &TlsFiles) -> Result<TlsMaterial, CertError> {
        let ca = read_pem_file(&files.ca_cert)?;
        let cert = read_pem_file(&files.node_cert)?;
        let key = read_pem_file(&files.node_key)?;
        let material = TlsMaterial {
            ca_certs: parse_certs(&files.ca_cert, &ca)?,
            node_chain: parse_certs(&files.node_cert, &cert)?,
            node_key: parse_key(&files.node_key, &key)?,
        };
        material.node_id().map_err(|e| CertError::Pem {
            path: files.node_cert.clone(),
            what: e.to_string(),
        })?;
        Ok(material)
    }

    /// From PEM text already in memory (the CA certificate(s), the node chain and its key).
    pub fn from_pem(
        ca_pem: &str,
        node_cert_pem: &str,
        node_key_pem: &str,
    ) -> Result<TlsMaterial, CertError> {
        let here = PathBuf::from("<memory>");
        Ok(TlsMaterial {
            ca_certs: parse_certs(&here, ca_pem)?,
            node_chain: parse_certs(&here, node_cert_pem)?,
            node_key: parse_key(&here, node_key_pem)?,
        })
    }

    /// The node id the node's own certificate is issued for.
    pub fn node_id(&self) -> Result<NodeId, CertError> {
        let leaf = self.node_chain.first().ok_or(CertError::NoNodeName)?;
        node_id_from_certificate(leaf)
    }
}

/// Generates a CA and a certificate for every node in `node_ids`, for a local development
/// cluster. Layout: `dir/ca.pem`, `dir/ca-key.pem`, and per node `dir/node-<id>/` with `ca.pem`,
/// `node.pem`, `node-key.pem`. Existing files are replaced (a dev cluster starts with fresh
/// certificates). Returns each node's files, in the order of `node_ids`.
pub fn dev_certs(dir: &Path, node_ids: &[NodeId]) -> Result<Vec<(NodeId, TlsFiles)>, CertError> {
    let ca = CertificateAuthority::generate("ringraft dev cluster CA")?;
    ca.write(dir, Overwrite::Replace)?;
    let mut out = Vec::with_capacity(node_ids.len());
    for &id in node_ids {
        let node_dir = dir.join(format!("node-{id}"));
        let node = ca.issue_node(id, &["localhost".to_string(), "127.0.0.1".to_string()])?;
        node.write(&node_dir, Overwrite::Replace)?;
        write_file(
            &node_dir.join(CA_CERT_FILE),
            &ca.cert_pem,
            0o644,
            Overwrite::Replace,
        )?;
        out.push((id, TlsFiles::in_dir(&node_dir)));
    }
    Ok(out)
}

/// `ringraftctl certs ...`
#[derive(Debug, clap::Args)]
pub struct CertsArgs {
    #[command(subcommand)]
    pub command: CertsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum CertsCommand {
    /// Create a cluster CA: writes ca.pem and ca-key.pem (mode 0600) into DIR.
    ///
    /// Prints each file written and the CA's expiry (--json: one document). Refuses to replace
    /// existing files.
    CreateCa {
        /// Directory to write ca.pem and ca-key.pem into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Subject common name of the CA.
        #[arg(long, default_value = "ringraft cluster CA")]
        common_name: String,
    },
    /// Issue a node certificate signed by the CA in --ca: writes node.pem, node-key.pem (0600)
    /// and a copy of ca.pem into DIR.
    ///
    /// Prints each file written, the certificate's node id, names and expiry (--json: one
    /// document). Refuses to replace an existing node.pem or node-key.pem.
    Issue {
        /// Directory holding ca.pem and ca-key.pem.
        #[arg(long, value_name = "DIR")]
        ca: PathBuf,
        /// The node id (>= 1); the certificate names node-<id>.ringraft.
        #[arg(long)]
        id: NodeId,
        /// Directory to write node.pem, node-key.pem and ca.pem into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Extra DNS names or IP addresses for the certificate (repeatable).
        #[arg(long = "name", value_name = "NAME")]
        names: Vec<String>,
    },
}

/// One file a certs command wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    pub path: PathBuf,
    /// What it holds: `ca_certificate`, `ca_private_key`, `node_certificate`, `node_private_key`.
    pub kind: &'static str,
    /// Its permission bits (0600 for private keys).
    pub mode: u32,
}

/// What a certs command did: the files written and the certificate it made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertsReport {
    pub files: Vec<WrittenFile>,
    /// The node the certificate is issued for (`None` for a CA).
    pub node_id: Option<NodeId>,
    /// The subject's common name (the CA's name, or `node-<id>.ringraft`).
    pub common_name: String,
    /// The certificate's subject alternative names (DNS names and IP addresses).
    pub names: Vec<String>,
    /// The end of the certificate's validity, seconds since the Unix epoch (UTC).
    pub not_after_unix: i64,
}

impl CertsReport {
    /// The expiry as RFC 3339 in UTC, for example `2031-12-03T14:11:42Z`.
    pub fn not_after_rfc3339(&self) -> String {
        match time::OffsetDateTime::from_unix_timestamp(self.not_after_unix) {
            Ok(t) => format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
            Err(_) => self.not_after_unix.to_string(),
        }
    }
}

/// The subject common name, alternative names and expiry of a PEM certificate, read back from
/// what was written so the report says what the file holds.
fn describe_certificate(pem: &str) -> Result<(String, Vec<String>, i64), CertError> {
    let der = parse_certs(Path::new("<memory>"), pem)?
        .into_iter()
        .next()
        .ok_or(CertError::NoNodeName)?;
    let (_, cert) =
        x509_parser::parse_x509_certificate(&der).map_err(|e| CertError::Parse(e.to_string()))?;
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => names.push(dns.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(ip) => match ip.len() {
                    4 => names.push(
                        std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*ip).unwrap_or_default())
                            .to_string(),
                    ),
                    16 => names.push(
                        std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*ip).unwrap_or_default())
                            .to_string(),
                    ),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Ok((common_name, names, cert.validity().not_after.timestamp()))
}

/// Run a certs command; the report lists what was written, where, and the certificate made.
pub fn run_certs_command(args: CertsArgs) -> Result<CertsReport, String> {
    match args.command {
        CertsCommand::CreateCa { out, common_name } => {
            let ca = CertificateAuthority::generate(&common_name).map_err(|e| e.to_string())?;
            ca.write(&out, Overwrite::Refuse)
                .map_err(|e| e.to_string())?;
            let (common_name, names, not_after_unix) =
                describe_certificate(&ca.cert_pem).map_err(|e| e.to_string())?;
            Ok(CertsReport {
                files: vec![
                    WrittenFile {
                        path: out.join(CA_CERT_FILE),
                        kind: "ca_certificate",
                        mode: 0o644,
                    },
                    WrittenFile {
                        path: out.join(CA_KEY_FILE),
                        kind: "ca_private_key",
                        mode: 0o600,
                    },
                ],
                node_id: None,
                common_name,
                names,
                not_after_unix,
            })
        }
        CertsCommand::Issue { ca, id, out, names } => {
            let authority = CertificateAuthority::load(&ca).map_err(|e| e.to_string())?;
            let node = authority
                .issue_node(id, &names)
                .map_err(|e| e.to_string())?;
            node.write(&out, Overwrite::Refuse)
                .map_err(|e| e.to_string())?;
            let mut files = vec![
                WrittenFile {
                    path: out.join(NODE_CERT_FILE),
                    kind: "node_certificate",
                    mode: 0o644,
                },
                WrittenFile {
                    path: out.join(NODE_KEY_FILE),
                    kind: "node_private_key",
                    mode: 0o600,
                },
            ];
            let ca_copy = out.join(CA_CERT_FILE);
            let same_file =
                fs::canonicalize(&ca_copy).ok() == fs::canonicalize(ca.join(CA_CERT_FILE)).ok();
            if !same_file {
                write_file(&ca_copy, &authority.cert_pem, 0o644, Overwrite::Replace)
                    .map_err(|e| e.to_string())?;
                files.push(WrittenFile {
                    path: ca_copy,
                    kind: "ca_certificate",
                    mode: 0o644,
                });
            }
            let (common_name, names, not_after_unix) =
                describe_certificate(&node.cert_pem).map_err(|e| e.to_string())?;
            Ok(CertsReport {
                files,
                node_id: Some(node.node_id),
                common_name,
                names,
                not_after_unix,
            })
        }
    }
}

fn set_validity(params: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(BACKDATE_DAYS);
    params.not_after = now + time::Duration::days(days);
}

fn parse_certs(path: &Path, pem: &str) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::Pem {
            path: path.to_path_buf(),
            what: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(CertError::Pem {
            path: path.to_path_buf(),
            what: "no CERTIFICATE section".into(),
        });
    }
    Ok(certs)
}

fn parse_key(path: &Path, pem: &str) -> Result<PrivateKeyDer<'static>, CertError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| CertError::Pem {
        path: path.to_path_buf(),
        what: format!("no usable private key: {e}"),
    })
}

fn read_pem_file(path: &Path) -> Result<String, CertError> {
    let io_err = |source| CertError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(io_err)?;
    let mut text = String::new();
    file.take(PEM_FILE_BYTES_MAX + 1)
        .read_to_string(&mut text)
        .map_err(io_err)?;
    if text.len() as u64 > PEM_FILE_BYTES_MAX {
        return Err(CertError::FileTooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(text)
}

fn create_dir(dir: &Path) -> Result<(), CertError> {
    fs::create_dir_all(dir).map_err(|source| CertError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// Writes through a temporary file and a rename, so a reader never sees half a key, and the key
/// file has its final mode from its first byte.
fn write_file(
    path: &Path,
    contents: &str,
    mode: u32,
    overwrite: Overwrite,
) -> Result<(), CertError> {
    let io_err = |source| CertError::Io {
        path: path.to_path_buf(),
        source,
    };
    if overwrite == Overwrite::Refuse && fs::symlink_metadata(path).is_ok() {
        return Err(CertError::AlreadyExists(path.to_path_buf()));
    }
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err)?;
    // The umask may have cleared bits; set exactly what we mean.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_err)?;
    file.write_all(contents.as_bytes()).map_err(io_err)?;
    file.sync_all().map_err(io_err)?;
    drop(file);
    if overwrite == Overwrite::Refuse {
        // hard_link fails if the target appeared meanwhile; rename would silently replace it.
        fs::hard_link(&tmp, path).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                CertError::AlreadyExists(path.to_path_buf())
            } else {
                io_err(e)
            }
        })?;
        fs::remove_file(&tmp).map_err(io_err)
    } else {
        fs::rename(&tmp, path).map_err(io_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_parse_strictly() {
        assert_eq!(parse_node_dns_name("node-1.ringraft"), Some(1));
        assert_eq!(
            parse_node_dns_name(&node_dns_name(u64::MAX)),
            Some(u64::MAX)
        );
        for bad in [
            "node-0.ringraft",
            "node-01.ringraft",
            "node-.ringraft",
            "node-+1.ringraft",
            "node--1.ringraft",
            "node-1.ringraft.",
            "Node-1.ringraft",
            "node-1.RINGRAFT",
            "xnode-1.ringraft",
            "node-1x.ringraft",
            "node-18446744073709551616.ringraft",
            "node-1.ringraft.evil",
        ] {
            assert_eq!(parse_node_dns_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn issued_certificate_names_its_node() {
        let ca = CertificateAuthority::generate("test CA").expect("ca");
        let node = ca
            .issue_node(42, &["db1.example".into(), "10.1.2.3".into()])
            .expect("issue");
        let material =
            TlsMaterial::from_pem(&ca.cert_pem, &node.cert_pem, &node.key_pem).expect("pem");
        assert_eq!(material.node_id().expect("id"), 42);
        assert!(matches!(ca.issue_node(0, &[]), Err(CertError::ZeroNodeId)));
        assert!(ca.issue_node(3, &["node-4.ringraft".into()]).is_err());
    }

    #[test]
    fn certificate_with_two_node_names_is_refused() {
        let key = KeyPair::generate().expect("key");
        let params = CertificateParams::new(vec![node_dns_name(1), node_dns_name(2)]).expect("p");
        let cert = params.self_signed(&key).expect("cert");
        assert!(matches!(
            node_id_from_certificate(cert.der()),
            Err(CertError::SeveralNodeNames(_))
        ));
        let plain = CertificateParams::new(vec!["example.org".to_string()])
            .expect("p")
            .self_signed(&key)
            .expect("cert");
        assert!(matches!(
            node_id_from_certificate(plain.der()),
            Err(CertError::NoNodeName)
        ));
        assert!(node_id_from_certificate(b"\x30\x03garbage").is_err());
    }

    #[test]
    fn certs_command_writes_files_with_private_keys_0600() {
        let tmp = tempfile::tempdir().expect("tmp");
        let ca_dir = tmp.path().join("ca");
        let node_dir = tmp.path().join("n7");
        let create = |out: &Path| CertsArgs {
            command: CertsCommand::CreateCa {
                out: out.to_path_buf(),
                common_name: "test".into(),
            },
        };
        run_certs_command(create(&ca_dir)).expect("create-ca");
        let again = run_certs_command(create(&ca_dir));
        assert!(again.expect_err("must refuse").contains("already exists"));
        let issue = CertsArgs {
            command: CertsCommand::Issue {
                ca: ca_dir.clone(),
                id: 7,
                out: node_dir.clone(),
                names: vec!["host7.example".into()],
            },
        };
        run_certs_command(issue).expect("issue");
        let mode = |p: PathBuf| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(ca_dir.join(CA_KEY_FILE)), 0o600);
        assert_eq!(mode(node_dir.join(NODE_KEY_FILE)), 0o600);
        let material = TlsMaterial::load(&TlsFiles::in_dir(&node_dir)).expect("load");
        assert_eq!(material.node_id().expect("id"), 7);
        assert_eq!(
            fs::read(ca_dir.join(CA_CERT_FILE)).expect("ca"),
            fs::read(node_dir.join(CA_CERT_FILE)).expect("ca copy")
        );
    }

    #[test]
    fn dev_certs_issue_one_certificate_per_node() {
        let tmp = tempfile::tempdir().expect("tmp");
        let files = dev_certs(tmp.path(), &[1, 2, 3]).expect("dev certs");
        let ids: Vec<NodeId> = files
            .iter()
            .map(|(_, f)| TlsMaterial::load(f).expect("load").node_id().expect("id"))
            .collect();
        assert_eq!(ids, vec![1, 2, 3]);
        // A second run replaces the files rather than failing.
        dev_certs(tmp.path(), &[1]).expect("again");
    }
}
