//! TLS for the SIP, MSRP and Diameter transports (feature `tls`): rustls with the `ring`
//! provider, TLS 1.2 and 1.3.
//!
//! One [`TlsConfig`] holds both sides of a node: the server side (our [`Identity`], and whether a
//! client certificate is asked for) and the client side (how the peer's certificate is checked,
//! and our identity presented when the server asks). The peer is trusted in one of two ways
//! ([`Trust`]):
//! - [`Trust::Roots`]: the certificate chains to one of the given CA certificates and names the
//!   peer (WebPKI path validation; the name is the SIP domain / Diameter identity, or the IP
//!   address connected to);
//! - [`Trust::Fingerprints`]: the end-entity certificate's SHA-256 fingerprint is one of a list,
//!   whoever signed it: the `a=fingerprint` of SDP (RFC 8122, RFC 4572) that RFC 4975 §14.1 uses for
//!   self-signed MSRP certificates.
//!
//! Uses: [`crate::sip::EndpointConfig::tls`] (SIP over TLS, RFC 3261 §26.2, `sips:` and
//! `transport=tls`), [`crate::msrp::MsrpConnection::connect_tls`] (MSRP over TLS, `msrps:`),
//! [`crate::diameter::Node::listen_tls`] / [`crate::diameter::Node::add_peer_tls`] (Diameter over
//! TLS on a dedicated port, RFC 6733 §13).
//!
//! ```
//! use ims_net::tls::Fingerprint;
//! // the SDP form of RFC 8122 §5
//! let f = Fingerprint::parse(
//!     "SHA-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:3C:97:1D:C9:C3:BE:9B:D6:0A:B5:2E:6C",
//! )?;
//! assert_eq!(f.as_bytes()[0], 0x4a);
//! assert_eq!(f.to_string().len(), "SHA-256 ".len() + 32 * 3 - 1);
//! # Ok::<(), ims_net::tls::TlsError>(())
//! ```

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore};
use rustls::{ServerConfig, SignatureScheme};
use sha2::{Digest, Sha256};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpStream;

pub use rustls;
pub use tokio_rustls::TlsStream;

/// What went wrong setting up TLS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file or buffer could not be read.
    #[error("PEM: {0}")]
    Pem(String),
    /// The certificate PEM held no certificate.
    #[error("no certificate in the PEM input")]
    NoCertificate,
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// rustls refused the configuration (key does not match, unsupported key type, ...).
    #[error("rustls: {0}")]
    Rustls(#[from] rustls::Error),
    /// A client verifier could not be built from the roots.
    #[error("client verifier: {0}")]
    Verifier(String),
    /// A fingerprint is not `SHA-256 XX:XX:...` with 32 bytes.
    #[error("bad fingerprint {0:?} (want SHA-256 with 32 colon-separated hex bytes)")]
    Fingerprint(String),
    /// Accepting connections needs our certificate.
    #[error("a TLS server needs an identity (certificate and key)")]
    NoIdentity,
    /// The name to check the server certificate against is not a DNS name or IP address.
    #[error("bad server name {0:?}")]
    ServerName(String),
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::File {
        path: path.display().to_string(),
        source,
    })
}

/// Our certificate chain (end-entity first) and its private key.
#[derive(Debug)]
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Identity {
    /// From PEM: the certificate chain (end-entity first) and the private key (PKCS#8, PKCS#1
    /// or SEC1).
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Identity, TlsError> {
        let chain = CertificateDer::pem_slice_iter(chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Pem(e.to_string()))?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate);
        }
        let key =
            PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Pem(e.to_string()))?;
        Ok(Identity { chain, key })
    }

    /// From PEM files.
    pub fn from_pem_files(
        chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Identity, TlsError> {
        Identity::from_pem(&read_file(chain.as_ref())?, &read_file(key.as_ref())?)
    }

    /// The end-entity certificate (DER).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// The SHA-256 fingerprint of our certificate, for SDP `a=fingerprint` (RFC 4975 §14.1).
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(self.certificate())
    }
}

/// A SHA-256 certificate fingerprint (RFC 8122 §5, RFC 4572 §5: the hash of the DER
/// certificate).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of(cert_der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(cert_der).into())
    }

    /// From 32 bytes.
    pub fn from_bytes(b: [u8; 32]) -> Fingerprint {
        Fingerprint(b)
    }

    /// Reads the SDP attribute value `SHA-256 XX:XX:...` (hash name case-insensitive, RFC 8122
    /// §5) or the bare hex pairs. Other hash functions are refused: only SHA-256 is supported.
    pub fn parse(s: &str) -> Result<Fingerprint, TlsError> {
        let bad = || TlsError::Fingerprint(s.to_owned());
        let s = s.trim();
        let hex = match s.split_once(char::is_whitespace) {
            Some((hash, rest)) if hash.eq_ignore_ascii_case("sha-256") => rest.trim(),
            Some(_) => return Err(bad()),
            None => s,
        };
        let mut out = [0u8; 32];
        let mut n = 0;
        for part in hex.split(':') {
            if n == 32 || part.len() != 2 {
                return Err(bad());
            }
            out[n] = u8::from_str_radix(part, 16).map_err(|_| bad())?;
            n += 1;
        }
        if n != 32 {
            return Err(bad());
        }
        Ok(Fingerprint(out))
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    /// The SDP form: `SHA-256 ` and upper-case hex pairs separated by colons.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SHA-256 ")?;
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = TlsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fingerprint::parse(s)
    }
}

/// How the peer's certificate is checked.
#[derive(Debug, Clone)]
pub enum Trust {
    /// It chains to one of these CA certificates and names the peer (WebPKI).
    Roots(Arc<RootCertStore>),
    /// Its SHA-256 fingerprint is one of these (self-signed certificates allowed; no name
    /// check): RFC 4975 §14.1 with the fingerprint from SDP `a=fingerprint`.
    Fingerprints(Vec<Fingerprint>),
}

impl Trust {
    /// CA certificates from PEM.
    pub fn ca_pem(pem: &[u8]) -> Result<Trust, TlsError> {
        let mut roots = RootCertStore::empty();
        let mut n = 0;
        for c in CertificateDer::pem_slice_iter(pem) {
            let c = c.map_err(|e| TlsError::Pem(e.to_string()))?;
            roots.add(c)?;
            n += 1;
        }
        if n == 0 {
            return Err(TlsError::NoCertificate);
        }
        Ok(Trust::Roots(Arc::new(roots)))
    }

    /// CA certificates from a PEM file.
    pub fn ca_pem_file(path: impl AsRef<Path>) -> Result<Trust, TlsError> {
        Trust::ca_pem(&read_file(path.as_ref())?)
    }

    /// Certificates pinned by fingerprint.
    pub fn fingerprints(f: impl IntoIterator<Item = Fingerprint>) -> Trust {
        Trust::Fingerprints(f.into_iter().collect())
    }
}

/// Whether the server side asks the client for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for (a SIP server facing user agents, RFC 3261 §26.3.1).
    None,
    /// Asked for; when one is sent it must pass [`Trust`].
    Optional,
    /// Required and checked (Diameter, RFC 6733 §13.1 mutual authentication; MSRP, RFC 4975
    /// §14.1).
    Required,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts a certificate whose fingerprint is listed; signatures are checked as usual.
#[derive(Debug)]
struct Pinned {
    fingerprints: Vec<Fingerprint>,
    provider: Arc<CryptoProvider>,
    mandatory: bool,
}

impl Pinned {
    fn check(&self, end_entity: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        if self.fingerprints.contains(&Fingerprint::of(end_entity)) {
            Ok(())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }
    fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls12(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}

impl ClientCertVerifier for Pinned {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls12(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}

/// Both sides of TLS for one node: see the [module documentation](self). Cheap to clone.
#[derive(Clone)]
pub struct TlsConfig {
    server: Option<Arc<ServerConfig>>,
    client: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
    /// Peers are trusted by name (CA trust), not by pinned fingerprint.
    by_name: bool,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("server", &self.server.is_some())
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl TlsConfig {
    /// Builds both sides. `identity` is needed to accept connections and is presented as the
    /// client certificate when a server asks; `trust` checks the peer's certificate on both
    /// sides; `client_auth` says whether our server side asks for one. TLS 1.2 and 1.3; the
    /// server sends no TLS 1.3 session tickets (use [`TlsConfig::from_rustls`] for other
    /// settings).
    pub fn new(
        identity: Option<Identity>,
        trust: Trust,
        client_auth: ClientAuth,
    ) -> Result<TlsConfig, TlsError> {
        let p = provider();
        // client side
        let b = ClientConfig::builder_with_provider(p.clone())
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)?;
        let b = match &trust {
            Trust::Roots(r) => b.with_root_certificates(r.clone()),
            Trust::Fingerprints(f) => {
                b.dangerous()
                    .with_custom_certificate_verifier(Arc::new(Pinned {
                        fingerprints: f.clone(),
                        provider: p.clone(),
                        mandatory: false,
                    }))
            }
        };
        let client = match &identity {
            Some(id) => b.with_client_auth_cert(id.chain.clone(), id.key.clone_key())?,
            None => b.with_no_client_auth(),
        };
        // server side
        let server = match identity {
            None => None,
            Some(id) => {
                let b = ServerConfig::builder_with_provider(p.clone())
                    .with_protocol_versions(rustls::DEFAULT_VERSIONS)?;
                let b = match (client_auth, &trust) {
                    (ClientAuth::None, _) => b.with_no_client_auth(),
                    (_, Trust::Fingerprints(f)) => b.with_client_cert_verifier(Arc::new(Pinned {
                        fingerprints: f.clone(),
                        provider: p.clone(),
                        mandatory: client_auth == ClientAuth::Required,
                    })),
                    (_, Trust::Roots(r)) => {
                        let v = WebPkiClientVerifier::builder_with_provider(r.clone(), p.clone());
                        let v = if client_auth == ClientAuth::Optional {
                            v.allow_unauthenticated()
                        } else {
                            v
                        };
                        b.with_client_cert_verifier(
                            v.build().map_err(|e| TlsError::Verifier(e.to_string()))?,
                        )
                    }
                };
                let mut sc = b.with_single_cert(id.chain, id.key)?;
                // no TLS 1.3 session tickets after the handshake: SIP, Diameter and MSRP flows
                // are long-lived, and some clients read the ticket record as the answer to
                // their first request and give up (sipsak 0.9.8.1 with GnuTLS does)
                sc.send_tls13_tickets = 0;
                Some(Arc::new(sc))
            }
        };
        Ok(TlsConfig {
            server,
            client: Arc::new(client),
            server_name: None,
            by_name: matches!(trust, Trust::Roots(_)),
        })
    }

    /// From rustls configurations built by the application. Peers are then also checked by
    /// name where ims-net does so beyond rustls (the Diameter client certificate against the
    /// CER's Origin-Host).
    pub fn from_rustls(server: Option<Arc<ServerConfig>>, client: Arc<ClientConfig>) -> TlsConfig {
        TlsConfig {
            server,
            client,
            server_name: None,
            by_name: true,
        }
    }

    /// The name every server certificate is checked against (a SIP domain, RFC 5922 §4.1)
    /// instead of the IP address connected to. The SIP endpoint checks against the domain of the
    /// request's next-hop URI instead when it has one.
    pub fn with_server_name(mut self, name: &str) -> Result<TlsConfig, TlsError> {
        self.server_name = Some(
            ServerName::try_from(name.to_owned())
                .map_err(|_| TlsError::ServerName(name.to_owned()))?,
        );
        Ok(self)
    }

    /// The server side (`None` without an identity).
    pub fn server_config(&self) -> Option<&Arc<ServerConfig>> {
        self.server.as_ref()
    }

    /// The client side.
    pub fn client_config(&self) -> &Arc<ClientConfig> {
        &self.client
    }

    /// Runs the client handshake on a connected stream. The server certificate is checked
    /// against `name` when given, else the configured server name, else the peer's IP address.
    pub async fn connect(
        &self,
        tcp: TcpStream,
        name: Option<&str>,
    ) -> io::Result<TlsStream<TcpStream>> {
        let peer = tcp.peer_addr()?;
        let sn = match name {
            Some(n) => ServerName::try_from(n.to_owned())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "bad server name"))?,
            None => self.name_for(peer),
        };
        let c = tokio_rustls::TlsConnector::from(self.client.clone());
        Ok(TlsStream::Client(c.connect(sn, tcp).await?))
    }

    /// Runs the server handshake on an accepted stream.
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        let Some(s) = &self.server else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                TlsError::NoIdentity,
            ));
        };
        let a = tokio_rustls::TlsAcceptor::from(s.clone());
        Ok(TlsStream::Server(a.accept(tcp).await?))
    }

    fn name_for(&self, peer: SocketAddr) -> ServerName<'static> {
        self.server_name
            .clone()
            .unwrap_or_else(|| ServerName::IpAddress(peer.ip().into()))
    }

    pub(crate) fn has_server(&self) -> bool {
        self.server.is_some()
    }

    pub(crate) fn has_server_name(&self) -> bool {
        self.server_name.is_some()
    }

    pub(crate) fn trusts_by_name(&self) -> bool {
        self.by_name
    }
}

/// Writes the TLS secrets of every handshake to a file in the NSS key log format
/// (`<label> <client random hex> <secret hex>` a line: `CLIENT_RANDOM` for TLS 1.2,
/// `CLIENT_HANDSHAKE_TRAFFIC_SECRET`, `SERVER_TRAFFIC_SECRET_0`, … for TLS 1.3), which Wireshark
/// and tshark read to decrypt a capture (`-o tls.keylog_file:FILE`).
///
/// **Anyone holding the file can read the traffic**: for debugging and tests only, never on by
/// default. Attach it with [`TlsConfig::with_key_log`]; unlike rustls' own `KeyLogFile` it is
/// told its file (no `SSLKEYLOGFILE` environment variable). Lines are appended; a failed write is
/// ignored (TLS goes on).
pub struct KeyLogFile {
    path: std::path::PathBuf,
    file: std::sync::Mutex<std::fs::File>,
}

impl fmt::Debug for KeyLogFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyLogFile")
            .field("path", &self.path)
            .finish()
    }
}

impl KeyLogFile {
    /// Opens `path` for appending (created with mode 0600 on Unix when missing).
    pub fn create(path: impl AsRef<Path>) -> Result<Arc<KeyLogFile>, TlsError> {
        let path = path.as_ref();
        let mut o = std::fs::OpenOptions::new();
        o.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let file = o.open(path).map_err(|source| TlsError::File {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Arc::new(KeyLogFile {
            path: path.to_owned(),
            file: std::sync::Mutex::new(file),
        }))
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl rustls::KeyLog for KeyLogFile {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        use std::io::Write;
        let mut line =
            String::with_capacity(label.len() + 2 + 2 * (client_random.len() + secret.len()) + 1);
        line.push_str(label);
        line.push(' ');
        for b in client_random {
            line.push_str(&format!("{b:02x}"));
        }
        line.push(' ');
        for b in secret {
            line.push_str(&format!("{b:02x}"));
        }
        line.push('\n');
        if let Ok(mut f) = self.file.lock() {
            // one write per line so lines of concurrent handshakes do not interleave
            let _ = f.write_all(line.as_bytes()).and_then(|_| f.flush());
        }
    }

    fn will_log(&self, _label: &str) -> bool {
        true
    }
}

impl TlsConfig {
    /// The same configuration with both sides writing their TLS secrets to `log` (e.g. a
    /// [`KeyLogFile`]) so a capture can be decrypted. Opt-in, for debugging and tests: see
    /// [`KeyLogFile`].
    pub fn with_key_log(mut self, log: Arc<dyn rustls::KeyLog>) -> TlsConfig {
        if let Some(s) = &self.server {
            let mut s = ServerConfig::clone(s);
            s.key_log = log.clone();
            self.server = Some(Arc::new(s));
        }
        let mut c = ClientConfig::clone(&self.client);
        c.key_log = log;
        self.client = Arc::new(c);
        self
    }
}

/// True when the DER certificate names `host` (a DNS subjectAltName, wildcards as WebPKI allows).
pub(crate) fn names_host(cert_der: &[u8], host: &str) -> bool {
    let Ok(name) = ServerName::try_from(host) else {
        return false;
    };
    let der = CertificateDer::from(cert_der);
    webpki::EndEntityCert::try_from(&der)
        .and_then(|c| c.verify_is_valid_for_subject_name(&name))
        .is_ok()
}

/// The end-entity certificate the peer presented on this connection.
pub(crate) fn peer_certificate<S>(stream: &TlsStream<S>) -> Option<Vec<u8>> {
    let certs = match stream {
        TlsStream::Client(c) => c.get_ref().1.peer_certificates(),
        TlsStream::Server(s) => s.get_ref().1.peer_certificates(),
    }?;
    certs.first().map(|c| c.as_ref().to_vec())
}

/// The SHA-256 fingerprint of the certificate the peer presented on this connection (the
/// server's, or the client's when it sent one).
pub fn peer_fingerprint<S>(stream: &TlsStream<S>) -> Option<Fingerprint> {
    let certs = match stream {
        TlsStream::Client(c) => c.get_ref().1.peer_certificates(),
        TlsStream::Server(s) => s.get_ref().1.peer_certificates(),
    }?;
    certs.first().map(|c| Fingerprint::of(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_log_lines_are_nss_format_in_a_private_file() {
        use rustls::KeyLog;
        let path = std::env::temp_dir().join(format!("ims-keylog-{}.txt", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let log = KeyLogFile::create(&path).unwrap();
        assert!(log.will_log("CLIENT_RANDOM"));
        log.log("CLIENT_RANDOM", &[0x01, 0xab], &[0x00, 0xff, 0x10]);
        log.log("SERVER_TRAFFIC_SECRET_0", &[0x02], &[0x03]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "CLIENT_RANDOM 01ab 00ff10\nSERVER_TRAFFIC_SECRET_0 02 03\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn fingerprint_forms() {
        let text = "SHA-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:3C:97:1D:C9:C3:BE:9B:D6:0A:B5:2E:6C";
        let f = Fingerprint::parse(text).unwrap();
        assert_eq!(f.to_string(), text);
        assert_eq!(Fingerprint::parse(&text.to_lowercase()).unwrap(), f);
        assert_eq!(Fingerprint::parse(&text[8..]).unwrap(), f);
        assert!(Fingerprint::parse("SHA-1 4A:AD").is_err());
        assert!(Fingerprint::parse(&text[..text.len() - 3]).is_err());
        assert!(Fingerprint::parse(&format!("{text}:00")).is_err());
        assert!(Fingerprint::parse("SHA-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:3C:97:1D:C9:C3:BE:9B:D6:0A:B5:2E:6G").is_err());
        // the hash of the bytes given
        assert_eq!(
            Fingerprint::of(b"abc").to_string(),
            "SHA-256 BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
    }

    #[test]
    fn pem_errors() {
        assert!(matches!(
            Identity::from_pem(b"", b""),
            Err(TlsError::NoCertificate)
        ));
        assert!(matches!(
            Trust::ca_pem(b"junk"),
            Err(TlsError::NoCertificate)
        ));
    }
}
