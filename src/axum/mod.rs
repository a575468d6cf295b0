//! typed-ws sessions in axum routers: the [`WebSocketUpgrade`] extractor, and [`serve`] to
//! serve the router with the handshake deadline and connection limit of
//! [`Server::serve`](crate::Server::serve).

mod serve;

pub use serve::{Serve, serve};

use std::future::Future;
use std::mem;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::response::Response;
use hyper::upgrade::OnUpgrade;
use tokio_tungstenite::tungstenite::http::request::Parts;
use tokio_tungstenite::tungstenite::http::{Request, StatusCode};

use crate::config::Config;
use crate::converter::Converter;
use crate::http_upgrade::{Opening, Refusal};
use crate::session::Session;
use crate::shutdown::Shutdown;

/// A WebSocket upgrade request, extracted in an axum handler: answer it with
/// [`WebSocketUpgrade::on_upgrade`], which runs your handler on the typed [`Session`]. A
/// request that is no valid upgrade never reaches the handler: it is answered with 405 (a
/// method other than GET), 426 (another WebSocket version) or 400, and a reason.
///
/// Other extractors (`State`, `Path`, headers) work beside it, so the route can take its
/// [`Config`] from the state and check credentials before answering. Upgrades are HTTP/1.1's
/// (RFC 6455). Serve the router with [`serve`]: it gives the connections the handshake
/// deadline, connection limit and `TCP_NODELAY` of [`Server::serve`](crate::Server::serve),
/// which `axum::serve` does not (see [`serve`] for what is lost without it).
///
/// ```no_run
/// use axum::Router;
/// use axum::extract::{Path, State};
/// use axum::response::Response;
/// use axum::routing::get;
/// use typed_ws::axum::WebSocketUpgrade;
/// use typed_ws::{Config, JsonConverter};
///
/// async fn room(
///     upgrade: WebSocketUpgrade,
///     Path(room): Path<String>,
///     State(config): State<Config<JsonConverter>>,
/// ) -> Response {
///     upgrade.on_upgrade(&config, move |mut session| async move {
///         let _ = session.send_text(format!("welcome to {room}")).await;
///     })
/// }
///
/// # async fn run() -> std::io::Result<()> {
/// let config = Config::new().converter(JsonConverter);
/// let app = Router::new()
///     .route("/rooms/{room}", get(room))
///     .with_state(config.clone());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// typed_ws::axum::serve(listener, app, &config).await
/// # }
/// ```
pub struct WebSocketUpgrade {
    opening: Opening,
    on_upgrade: OnUpgrade,
    /// The graceful shutdown of the [`serve`] the request came through, if it did.
    shutdown: Option<Shutdown>,
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        // The check reads a whole request: the headers move into one and back, uncopied.
        let mut request = Request::new(());
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = parts.uri.clone();
        *request.version_mut() = parts.version;
        *request.headers_mut() = mem::take(&mut parts.headers);
        let opening = Opening::read(&request);
        parts.headers = mem::take(request.headers_mut());
        let opening = opening.map_err(refused)?;
        // hyper leaves this handle only on HTTP/1.1 connections it can hand over.
        let on_upgrade = parts.extensions.remove::<OnUpgrade>().ok_or_else(|| {
            refused(Refusal::new(
                StatusCode::UPGRADE_REQUIRED,
                "this connection cannot be upgraded".to_owned(),
            ))
        })?;
        Ok(WebSocketUpgrade {
            opening,
            on_upgrade,
            shutdown: parts.extensions.get::<Shutdown>().cloned(),
        })
    }
}

impl WebSocketUpgrade {
    /// Answers the upgrade (101, or 400 when no converter is common) and runs `handler` on
    /// the session.
    ///
    /// The converter is negotiated as [`Server`](crate::Server) does, and the session has
    /// every setting of `config`: limits, keep-alive, timeouts, fragment size. `handler` runs
    /// in a task of its own once hyper has switched protocols; if that never happens (the
    /// client leaves, or [`Config::handshake_timeout`] passes first), it does not run.
    ///
    /// Served by [`serve`], the session and its task follow serve's graceful shutdown as
    /// those of [`Server::serve`](crate::Server::serve) do: see
    /// [`Serve::with_graceful_shutdown`].
    pub fn on_upgrade<C, F, Fut>(self, config: &Config<C>, handler: F) -> Response
    where
        C: Converter,
        F: FnOnce(Session<C>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let shutdown = self.shutdown;
        match self
            .opening
            .answer(config, self.on_upgrade, shutdown.as_ref())
        {
            Ok((response, upgrading)) => {
                let closing = shutdown.clone();
                let task = async move {
                    let Ok(session) = upgrading.await else {
                        return;
                    };
                    let link = session.link();
                    handler(session).await;
                    if let Some(shutdown) = closing {
                        shutdown.close_session(&link).await;
                    }
                };
                match shutdown {
                    Some(shutdown) => tokio::spawn(shutdown.track(task)),
                    None => tokio::spawn(task),
                };
                response.map(Body::from)
            }
            Err(refusal) => refused(refusal),
        }
    }
}

/// axum's form of a refusal.
fn refused(refusal: Refusal) -> Response {
    refusal.into_response().map(Body::from)
}
