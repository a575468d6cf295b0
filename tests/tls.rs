//! wss:// with rustls: a TLS server from `Config::tls_server`, clients trusting a custom root
//! store, and wrong certificates refused with a clear error. Certificates are made at test
//! time with rcgen.
#![cfg(all(feature = "tls", feature = "json"))]

mod common;

use std::sync::Arc;

use common::*;
use tokio::net::TcpListener;
use typed_ws::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use typed_ws::rustls::{ClientConfig, RootCertStore, ServerConfig};
use typed_ws::*;

/// A self-signed certificate for `names` and the server config that presents it.
fn server_for(names: &[&str]) -> (CertificateDer<'static>, Arc<ServerConfig>) {
    let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
    let certified = rcgen::generate_simple_self_signed(names).expect("certificate");
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("server config");
    (cert, Arc::new(config))
}

fn trusting(cert: CertificateDer<'static>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(cert).expect("root");
    Arc::new(
        ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

async fn typed_echo(mut session: Session<JsonConverter>) {
    while let Ok(message) = session.receive_deserialized::<ChatMessage>().await {
        if session.send_serialized(&message).await.is_err() {
            break;
        }
    }
}

/// A TLS echo server on a free loopback port; its URL names the host `localhost`.
async fn tls_server(config: Arc<ServerConfig>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = Server::new(Config::new().converter(JsonConverter).tls_server(config));
    tokio::spawn(async move { server.serve(listener, typed_echo).await });
    format!("wss://localhost:{port}/secure")
}

#[tokio::test]
async fn a_client_trusting_the_certificate_exchanges_typed_messages() {
    let (cert, server) = server_for(&["localhost"]);
    let url = tls_server(server).await;
    let client = Client::new(
        Config::new()
            .converter(JsonConverter)
            .tls_client(trusting(cert)),
    );
    let mut session = within("connect", client.web_socket_session(url))
        .await
        .unwrap();
    assert_eq!(session.path(), Some("/secure"));
    for id in 0..3 {
        within("send", session.send_serialized(&chat(id)))
            .await
            .unwrap();
        assert_eq!(
            within("echo", session.receive_deserialized::<ChatMessage>())
                .await
                .unwrap(),
            chat(id)
        );
    }
    within(
        "close",
        session.close(CloseReason::new(CloseCode::Normal, "")),
    )
    .await
    .unwrap();
    assert_eq!(session.close_reason().unwrap().code, CloseCode::Normal);
}

/// The error a client gets from `url`, which must be a refused TLS handshake.
async fn refused(client: Client<JsonConverter>, url: String) -> String {
    let err = within("connect", client.web_socket_session(url))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Handshake { status: None, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("TLS handshake failed"), "{text}");
    text
}

#[tokio::test]
async fn an_unknown_issuer_is_refused_with_the_default_roots() {
    let (_, server) = server_for(&["localhost"]);
    let url = tls_server(server).await;
    let text = refused(Client::new(Config::new().converter(JsonConverter)), url).await;
    assert!(text.contains("UnknownIssuer"), "{text}");
}

#[tokio::test]
async fn a_certificate_from_another_root_is_refused() {
    let (_, server) = server_for(&["localhost"]);
    let (other, _) = server_for(&["localhost"]);
    let url = tls_server(server).await;
    let client = Client::new(
        Config::new()
            .converter(JsonConverter)
            .tls_client(trusting(other)),
    );
    let text = refused(client, url).await;
    assert!(text.contains("invalid peer certificate"), "{text}");
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let (cert, server) = server_for(&["example.com"]);
    let url = tls_server(server).await;
    let client = Client::new(
        Config::new()
            .converter(JsonConverter)
            .tls_client(trusting(cert)),
    );
    let text = refused(client, url).await;
    assert!(text.contains("not valid for name"), "{text}");
}

#[tokio::test]
async fn a_plain_client_cannot_talk_to_a_tls_server_and_the_server_keeps_serving() {
    let (cert, server) = server_for(&["localhost"]);
    let url = tls_server(server).await;
    let plain = url.replacen("wss://", "ws://", 1);
    let client = Client::new(Config::new().converter(JsonConverter));
    assert!(
        within("plain connect", client.web_socket_session(plain))
            .await
            .is_err()
    );

    let client = Client::new(
        Config::new()
            .converter(JsonConverter)
            .tls_client(trusting(cert)),
    );
    let mut session = within("connect", client.web_socket_session(url))
        .await
        .unwrap();
    within("send", session.send_serialized(&chat(9)))
        .await
        .unwrap();
    assert_eq!(
        within("echo", session.receive_deserialized::<ChatMessage>())
            .await
            .unwrap(),
        chat(9)
    );
}
