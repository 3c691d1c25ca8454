//! `colloquy serve`: an Arrow Flight SQL server over colloquy sessions.
//!
//! One [`service::ColloquyFlightSql`] answers every Flight SQL call; each client session (a bearer token
//! from the handshake, else the client's connection) gets its own DataFusion context built by the
//! [`ContextFactory`], so settings and temporary tables stay private. Errors map to gRPC codes in one
//! place ([`error`]); results stream batch by batch and every schema goes through one normalisation
//! ([`schema`]), because drivers compare the announced schema with the streamed one.

pub mod audit;
pub mod auth;
pub mod error;
pub mod gate;
pub mod grants;
pub mod grpc;
pub mod limits;
pub mod metrics;
pub mod params;
pub mod query_pool;
pub mod redact;
pub mod schema;
pub mod service;
pub mod session_options;

use std::future::Future;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};

pub use audit::AuditLog;
pub use auth::{Authenticator, Principal, TokenLimits, hash_password};
pub use error::{Error, Result};
pub use gate::Gate;
pub use grants::GovernanceSlot;
pub use limits::Limits;
pub use schema::Normalizer;
pub use service::{ColloquyFlightSql, ContextFactory, LiveSink, RuleStatements, ServiceOptions};

/// Largest message a client may send (bulk ingest batches): the default 4 MiB is too small for ADBC.
const MAX_DECODING: usize = 256 << 20;

/// TLS certificate and key, PEM.
pub struct Tls {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

/// Serves until `shutdown` completes, then stops accepting calls and lets running streams finish.
pub async fn serve(
    options: ServiceOptions,
    listener: TcpListener,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let auth = options.auth.clone();
    let idle = options.session_idle;
    let service = Arc::new(ColloquyFlightSql::new(options)?);
    let sweeper = {
        let service = service.clone();
        let every = (idle / 4).clamp(
            std::time::Duration::from_millis(50),
            std::time::Duration::from_secs(60),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                service.sweep(idle).await;
            }
        })
    };
    let svc = FlightServiceServer::new(grpc::Routed(service))
        .max_decoding_message_size(MAX_DECODING)
        .max_encoding_message_size(usize::MAX);
    let interceptor =
        move |mut req: tonic::Request<()>| -> Result<tonic::Request<()>, tonic::Status> {
            let header = req
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok());
            let principal = auth.check(header)?;
            req.extensions_mut().insert(principal);
            Ok(req)
        };
    let svc = tonic::service::interceptor::InterceptedService::new(svc, interceptor);
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let mut builder = Server::builder();
    if let Some(tls) = tls {
        builder = builder
            .tls_config(ServerTlsConfig::new().identity(Identity::from_pem(tls.cert, tls.key)))
            .map_err(|e| Error::invalid(format!("TLS certificate or key: {e}")))?;
    }
    let served = builder
        .add_service(svc)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| Error::Internal(format!("server: {e}")));
    sweeper.abort();
    served
}

/// A factory from a closure returning a future of a session context.
pub fn factory<F, Fut>(f: F) -> ContextFactory
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<datafusion::prelude::SessionContext>> + Send + 'static,
{
    Arc::new(move || Box::pin(f()))
}
