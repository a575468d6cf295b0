//! wss:// with rustls: a TLS server from `Config::tls_server`, clients trusting a custom root
//! store, and wrong certificates refused with a clear error. The certificates are in
//! tests/common/certificates/.
#![cfg(all(feature = "tls", feature = "json"))]

use crate::common;

use std::sync::Arc;

use common::tls::{certificate, trusting};
use common::*;
use tokio::net::TcpListener;
use typed_ws::rustls;
use typed_ws::rustls::ServerConfig;
use typed_ws::*;

/// A TLS echo server on a free loopback port; its URL names the host `localhost`.
async fn tls_server(config: Arc<ServerConfig>) -> String {
    tls_server_with(Config::new().converter(JsonConverter).tls_server(config)).await
}

/// A TLS echo server with `config`, which has its TLS settings.
async fn tls_server_with(config: Config<JsonConverter>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = Server::new(config);
    tokio::spawn(async move { server.serve(listener, typed_echo).await });
    format!("wss://localhost:{port}/secure")
}

#[tokio::test]
async fn a_client_trusting_the_certificate_exchanges_typed_messages() {
    let certificate = certificate("localhost");
    let (cert, server) = (certificate.der, certificate.server);
    let url = tls_server(server).await;
    let client = trusting_client(cert);
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

#[tokio::test]
async fn compressed_messages_go_over_tls_both_ways() {
    let certificate = certificate("localhost");
    let compressing = Config::new()
        .converter(JsonConverter)
        .compression(Compression::new());
    let url = tls_server_with(compressing.clone().tls_server(certificate.server)).await;
    let client = Client::new(compressing.tls_client(trusting(certificate.der)));
    let mut session = within("connect", client.web_socket_session(url))
        .await
        .unwrap();
    assert!(session.compression().is_some(), "no compression over TLS");
    for id in 0..3 {
        let long = ChatMessage {
            text: "over TLS and compressed ".repeat(50),
            ..chat(id)
        };
        within("send", session.send_serialized(&long))
            .await
            .unwrap();
        let back: ChatMessage = within("echo", session.receive_deserialized())
            .await
            .unwrap();
        assert_eq!(back, long);
    }
}

/// A JSON client that trusts exactly `cert`.
fn trusting_client(
    cert: typed_ws::rustls::pki_types::CertificateDer<'static>,
) -> Client<JsonConverter> {
    Client::new(
        Config::new()
            .converter(JsonConverter)
            .tls_client(trusting(cert)),
    )
}

/// The rustls error a client gets from `url`, which must be a refused TLS handshake: the
/// source of an `Error::Handshake`, typed, and named once in the printed chain.
async fn refused(client: Client<JsonConverter>, url: String) -> rustls::Error {
    let err = within("connect", client.web_socket_session(url))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Handshake { status: None, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("TLS handshake failed"), "{err}");
    let chain = err.report().to_string();
    let source = std::error::Error::source(&err).expect("a source");
    let tls = source
        .downcast_ref::<rustls::Error>()
        .unwrap_or_else(|| panic!("not a rustls error: {source:?}"))
        .clone();
    assert_eq!(chain.matches(&tls.to_string()).count(), 1, "{chain}");
    tls
}

#[tokio::test]
async fn an_unknown_issuer_is_refused_with_the_default_roots() {
    let server = certificate("localhost").server;
    let url = tls_server(server).await;
    let tls = refused(Client::new(Config::new().converter(JsonConverter)), url).await;
    assert_eq!(
        tls,
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
    );
}

#[tokio::test]
async fn a_certificate_from_another_root_is_refused() {
    let server = certificate("localhost").server;
    let other = certificate("localhost-other").der;
    let tls = refused(trusting_client(other), tls_server(server).await).await;
    assert!(
        matches!(tls, rustls::Error::InvalidCertificate(_)),
        "{tls:?}"
    );
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let certificate = certificate("example.com");
    let url = tls_server(certificate.server).await;
    let tls = refused(trusting_client(certificate.der), url).await;
    assert!(
        matches!(
            tls,
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. }
            ) | rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName)
        ),
        "{tls:?}"
    );
}

#[tokio::test]
async fn a_plain_client_cannot_talk_to_a_tls_server_and_the_server_keeps_serving() {
    let certificate = certificate("localhost");
    let (cert, server) = (certificate.der, certificate.server);
    let url = tls_server(server).await;
    let plain = url.replacen("wss://", "ws://", 1);
    let client = Client::new(Config::new().converter(JsonConverter));
    assert!(
        within("plain connect", client.web_socket_session(plain))
            .await
            .is_err()
    );

    let client = trusting_client(cert);
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

/// A client whose negotiation has a fallback runs typed-ws's own opening handshake, so that it
/// can accept a server that answers with no subprotocol: over TLS too.
#[cfg(feature = "cbor")]
#[tokio::test]
async fn a_client_with_a_fallback_talks_to_a_plain_server_over_tls() {
    let certificate = certificate("localhost");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    let plain = Server::new(
        Config::new()
            .converter(CborConverter)
            .tls_server(certificate.server),
    );
    tokio::spawn(async move { plain.serve(listener, echo).await });

    let falls_back =
        Negotiation::prefer(AnyConverter::from(CborConverter)).fallback(CborConverter.into());
    let config = Config::new()
        .negotiate(falls_back)
        .tls_client(trusting(certificate.der));
    let url = format!("wss://localhost:{port}/");
    let mut session = within("connect", Client::new(config).web_socket_session(url))
        .await
        .expect("connect");
    assert_eq!(session.subprotocol(), None);
    assert_eq!(session.converter().name(), "cbor");
    within("send", session.send_serialized(&("over", 1)))
        .await
        .expect("send");
    let echoed: (String, u8) = within("echo", session.receive_deserialized())
        .await
        .expect("echo");
    assert_eq!(echoed, ("over".to_owned(), 1));
}

/// Counts the TLS records of application data in what a peer sends: each write of the peer's
/// WebSocket buffer goes out as records of its own, so the count tells how many writes.
#[derive(Default)]
struct Records {
    /// Bytes of the current record's header seen, or of its body still to come.
    header: Vec<u8>,
    body_left: usize,
    application: usize,
}

impl Records {
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let skip = self.body_left.min(bytes.len());
                self.body_left -= skip;
                bytes = &bytes[skip..];
                continue;
            }
            let take = (5 - self.header.len()).min(bytes.len());
            self.header.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.header.len() == 5 {
                // Content type 23: application data (in TLS 1.3, every encrypted record).
                self.application += usize::from(self.header[0] == 23);
                self.body_left = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                self.header.clear();
            }
        }
    }
}

/// A TCP stream whose reads go through a [`Records`] count.
struct Counted {
    tcp: tokio::net::TcpStream,
    records: Arc<std::sync::Mutex<Records>>,
}

impl tokio::io::AsyncRead for Counted {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = std::pin::Pin::new(&mut this.tcp).poll_read(cx, buf);
        this.records.lock().unwrap().feed(&buf.filled()[before..]);
        read
    }
}

impl tokio::io::AsyncWrite for Counted {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// The client's twin of `coalescing::replies_to_a_pipelined_burst_go_out_together_complete_and_in_order`,
/// over TLS: a raw TLS server sends 64 requests at once, and the client's replies come back
/// in a few records, not one per reply.
#[tokio::test]
async fn a_wss_client_coalesces_its_replies_to_a_pipelined_burst() {
    use common::raw::{TEXT, encode_frame};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use typed_ws::tokio_tungstenite::tungstenite::handshake::derive_accept_key;

    let certificate = certificate("localhost");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let client = trusting_client(certificate.der);
    let echo = tokio::spawn(async move {
        let url = format!("wss://localhost:{port}/burst");
        let mut session = client.web_socket_session(url).await.expect("connect");
        while let Ok(frame) = session.receive().await {
            if frame.is_data() && session.send(frame).await.is_err() {
                break;
            }
        }
    });
    let (tcp, _) = within("accept", listener.accept()).await.expect("accept");
    let records = Arc::new(std::sync::Mutex::new(Records::default()));
    let counted = Counted {
        tcp,
        records: records.clone(),
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(certificate.server);
    let mut tls = within("TLS", acceptor.accept(counted)).await.expect("TLS");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        within("request", tls.read_exact(&mut byte))
            .await
            .expect("request");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).expect("a text head");
    let key = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim())
        })
        .expect("a key");
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    tls.write_all(answer.as_bytes()).await.expect("answer");
    // Nothing comes from the client until it has requests to answer.
    records.lock().unwrap().application = 0;
    let burst: Vec<u8> = (0..64)
        .flat_map(|i| encode_frame(true, TEXT, format!("m{i}").as_bytes(), false))
        .collect();
    tls.write_all(&burst).await.expect("burst");
    tls.flush().await.expect("flush");
    // Each reply is a masked frame: 6 header bytes and the text.
    let expected: usize = (0..64).map(|i| format!("m{i}").len() + 6).sum();
    let mut replies = vec![0; expected];
    within("replies", tls.read_exact(&mut replies))
        .await
        .expect("replies");
    let sent = records.lock().unwrap().application;
    assert!(sent <= 8, "64 pipelined replies took {sent} TLS records");
    drop(tls);
    within("client", echo).await.expect("client task");
}
