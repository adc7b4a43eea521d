//! What a CSCF asks the HSS over Cx, as an async trait: [`LocalHss`] answers from an in-process
//! [`Hss`] (tests, single-binary deployments); a Diameter client implements the same trait over
//! the wire.

use crate::hss::{
    AuthItem, AuthScheme, CxResult, Hss, LiaDecision, MarRequest, SaaDecision,
    ServerAssignmentType, UaaDecision, UserAuthorizationType,
};
use std::future::Future;
use std::sync::{Arc, Mutex};

/// Why a Cx exchange gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CxFailure {
    /// The HSS answered with an error result.
    #[error("HSS answered {0:?}")]
    Result(CxResult),
    /// No answer (peer down, timeout): the CSCF answers 504 (TS 24.229 §5.4.1.2.1) or 500.
    #[error("HSS unreachable: {0}")]
    Unreachable(String),
}

/// An MAR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarQuery {
    /// IMPI.
    pub impi: String,
    /// IMPU.
    pub impu: String,
    /// Requested scheme.
    pub scheme: AuthScheme,
    /// The asking S-CSCF.
    pub server_name: String,
    /// RAND ‖ AUTS after a synchronisation failure.
    pub resync: Option<Vec<u8>>,
}

/// An MAA that succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaaAnswer {
    /// The scheme the HSS chose.
    pub scheme: AuthScheme,
    /// The items.
    pub items: Vec<AuthItem>,
}

/// An SAR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SarQuery {
    /// IMPI, when known.
    pub impi: Option<String>,
    /// IMPU.
    pub impu: String,
    /// The S-CSCF.
    pub server_name: String,
    /// Server-Assignment-Type.
    pub assignment: ServerAssignmentType,
    /// User-Data-Already-Available.
    pub user_data_available: bool,
}

/// The Cx procedures a CSCF uses.
pub trait CxClient: Send + Sync + 'static {
    /// User-Authorization-Request.
    fn uar(
        &self,
        impi: &str,
        impu: &str,
        auth_type: UserAuthorizationType,
    ) -> impl Future<Output = Result<UaaDecision, CxFailure>> + Send;
    /// Multimedia-Auth-Request.
    fn mar(&self, q: MarQuery) -> impl Future<Output = Result<MaaAnswer, CxFailure>> + Send;
    /// Server-Assignment-Request.
    fn sar(&self, q: SarQuery) -> impl Future<Output = Result<SaaDecision, CxFailure>> + Send;
    /// Location-Info-Request.
    fn lir(&self, impu: &str) -> impl Future<Output = Result<LiaDecision, CxFailure>> + Send;
}

/// An in-process HSS behind a lock, with a RAND source.
#[derive(Clone)]
pub struct LocalHss {
    hss: Arc<Mutex<Hss>>,
    realm: String,
    random: Arc<Mutex<dyn FnMut() -> [u8; 16] + Send>>,
}

impl std::fmt::Debug for LocalHss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalHss")
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

impl LocalHss {
    /// Wraps `hss`; `realm` is the digest realm; `random` yields RANDs (use a CSPRNG in
    /// production).
    pub fn new(
        hss: Arc<Mutex<Hss>>,
        realm: impl Into<String>,
        random: impl FnMut() -> [u8; 16] + Send + 'static,
    ) -> LocalHss {
        LocalHss {
            hss,
            realm: realm.into(),
            random: Arc::new(Mutex::new(random)),
        }
    }

    /// The shared HSS.
    pub fn hss(&self) -> &Arc<Mutex<Hss>> {
        &self.hss
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Hss> {
        self.hss.lock().expect("HSS lock is never poisoned")
    }
}

fn ok_or_fail<T>(result: CxResult, v: T) -> Result<T, CxFailure> {
    if result.is_success() {
        Ok(v)
    } else {
        Err(CxFailure::Result(result))
    }
}

impl CxClient for LocalHss {
    async fn uar(
        &self,
        impi: &str,
        impu: &str,
        auth_type: UserAuthorizationType,
    ) -> Result<UaaDecision, CxFailure> {
        let d = self.lock().user_authorization(impi, impu, auth_type);
        ok_or_fail(d.result, d)
    }

    async fn mar(&self, q: MarQuery) -> Result<MaaAnswer, CxFailure> {
        let mut rnd = self.random.lock().expect("RAND lock is never poisoned");
        let req = MarRequest {
            impi: &q.impi,
            impu: &q.impu,
            scheme: q.scheme,
            count: 1,
            server_name: &q.server_name,
            resync: q.resync.as_deref(),
            realm: &self.realm,
        };
        let (scheme, items) = self
            .lock()
            .multimedia_auth(&req, &mut *rnd)
            .map_err(CxFailure::Result)?;
        Ok(MaaAnswer { scheme, items })
    }

    async fn sar(&self, q: SarQuery) -> Result<SaaDecision, CxFailure> {
        let d = self.lock().server_assignment(
            q.impi.as_deref(),
            &q.impu,
            &q.server_name,
            q.assignment,
            q.user_data_available,
        );
        ok_or_fail(d.result, d)
    }

    async fn lir(&self, impu: &str) -> Result<LiaDecision, CxFailure> {
        let d = self.lock().location_info(impu);
        ok_or_fail(d.result, d)
    }
}
