//! Exchanges one message with typed-ws in both roles, with rustls settings built by this
//! crate's own rustls: the types must be the ones typed-ws takes.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use typed_ws::prelude::*;
use typed_ws::{Client, Config, MsgPackConverter, Server};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Reading {
    sensor: String,
    value: f64,
}

#[tokio::main]
async fn main() -> Result<(), typed_ws::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let config = Config::new()
        .converter(MsgPackConverter::new())
        .tls_client(Arc::new(tls));

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = Server::new(config.clone());
    tokio::spawn(async move {
        server
            .serve(listener, |session| async move {
                let (mut tx, mut rx) = session.split();
                if let Some(Ok(frame)) = rx.next().await {
                    let _ = tx.send(frame).await;
                }
            })
            .await
    });

    let sent = Reading {
        sensor: "t1".into(),
        value: 21.5,
    };
    let client = Client::new(config);
    let exchange = client.web_socket(format!("ws://{addr}/"), async |mut session| {
        session.send_serialized(&sent).await?;
        session
            .incoming_deserialized::<Reading>()
            .next()
            .await
            .expect("an echo")
    });
    let echoed = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("the echo within 10 s")?;
    assert_eq!(echoed, sent);
    println!("typed-ws works with this build's tokio, serde and rustls: {echoed:?}");
    Ok(())
}
