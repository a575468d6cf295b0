use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::error::UrlError;
use tokio_tungstenite::tungstenite::http::Uri;

use super::connect::{address, connect_tcp};
use super::*;

/// Bounds every await that could reach the network, so that a regression fails fast.
const LIMIT: Duration = Duration::from_secs(10);

async fn connect(url: &str) -> Result<TcpStream, WsError> {
    let uri: Uri = url.parse().expect("a URI");
    tokio::time::timeout(LIMIT, connect_tcp(&uri))
        .await
        .expect("connect_tcp within the limit")
}

fn address_of(url: &str) -> Result<(String, u16), WsError> {
    let uri: Uri = url.parse().expect("a URI");
    address(&uri).map(|(host, port)| (host.to_owned(), port))
}

#[test]
fn the_address_is_the_url_s_host_and_port_or_the_scheme_s_port() {
    let ok = |host: &str, port| Ok::<_, ()>((host.to_owned(), port));
    let address = |url| address_of(url).map_err(|_| ());
    assert_eq!(address("ws://example.com/chat"), ok("example.com", 80));
    assert_eq!(address("ws://example.com:/chat"), ok("example.com", 80));
    assert_eq!(address("ws://example.com:8080"), ok("example.com", 8080));
    assert_eq!(address("ws://user@example.com:0/"), ok("example.com", 0));
    assert_eq!(address("ws://[::1]/"), ok("::1", 80));
    assert_eq!(address("ws://[::1]:65535/"), ok("::1", 65535));
    if cfg!(feature = "tls") {
        assert_eq!(address("wss://example.com/"), ok("example.com", 443));
    }
}

#[test]
fn a_port_out_of_range_or_an_empty_host_is_refused() {
    for url in [
        "ws://127.0.0.1:99999/",
        "ws://[::1]:65536/",
        "ws://host:8o/",
    ] {
        match address_of(url) {
            Err(WsError::Url(UrlError::UnableToConnect(why))) => {
                assert!(why.contains("not a number from 0 to 65535"), "{why}");
            }
            other => panic!("{url}: expected a bad port, got {other:?}"),
        }
    }
    match address_of("ws://:80/x") {
        Err(WsError::Url(UrlError::EmptyHostName)) => {}
        other => panic!("expected EmptyHostName, got {other:?}"),
    }
}

#[test]
fn an_endpoint_from_parts_is_a_ws_url() {
    let url = |host, port, path| Endpoint::from((host, port, path)).0;
    assert_eq!(
        url("example.com", 8080, "/chat"),
        "ws://example.com:8080/chat"
    );
    assert_eq!(
        url("example.com", 80, "chat?room=1"),
        "ws://example.com:80/chat?room=1"
    );
    assert_eq!(url("127.0.0.1", 9000, ""), "ws://127.0.0.1:9000/");
    // Without brackets the port would read as part of the address.
    assert_eq!(
        url("2001:db8::7", 443, "/feed"),
        "ws://[2001:db8::7]:443/feed"
    );
    assert_eq!(url("[::1]", 443, "/feed"), "ws://[::1]:443/feed");
}

/// Port 1 on loopback refuses at once: a regression that connected anyway would show as
/// a different error, not a hang.
#[tokio::test]
async fn schemes_other_than_ws_and_wss_are_refused_before_connecting() {
    for url in ["http://127.0.0.1:1/", "https://127.0.0.1:1/", "127.0.0.1:1"] {
        match connect(url).await {
            Err(WsError::Url(UrlError::UnsupportedUrlScheme)) => {}
            other => panic!("{url}: expected UnsupportedUrlScheme, got {other:?}"),
        }
    }
}

#[cfg(not(feature = "tls"))]
#[tokio::test]
async fn wss_without_the_tls_feature_is_refused_before_connecting() {
    match connect("wss://127.0.0.1:1/").await {
        Err(WsError::Url(UrlError::TlsFeatureNotEnabled)) => {}
        other => panic!("expected TlsFeatureNotEnabled, got {other:?}"),
    }
}

#[tokio::test]
async fn a_bad_scheme_or_a_missing_host_is_an_invalid_url_naming_it() {
    let client = Client::new(Config::new());
    for url in ["http://127.0.0.1:1/", "ws:///chat", "ws://"] {
        let error = tokio::time::timeout(LIMIT, client.web_socket_session(url))
            .await
            .expect("refused within the limit")
            .expect_err(url);
        match error {
            Error::InvalidUrl { url: given, .. } => assert_eq!(given, url),
            other => panic!("{url}: expected InvalidUrl, got {other:?}"),
        }
    }
}

/// Connects to `url`, which names `listener`, and checks that the connection is the one
/// `listener` accepted.
async fn connect_to(listener: &TcpListener, url: &str) -> TcpStream {
    let (tcp, accepted) = tokio::join!(connect(url), async {
        tokio::time::timeout(LIMIT, listener.accept()).await
    });
    let tcp = tcp.unwrap_or_else(|e| panic!("{url}: {e}"));
    let (_, from) = accepted.expect("accept within the limit").expect("accept");
    assert_eq!(tcp.local_addr().expect("local addr"), from, "{url}");
    tcp
}

#[tokio::test]
async fn an_explicit_port_is_used_with_either_scheme() {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let schemes: &[&str] = if cfg!(feature = "tls") {
        &["ws", "wss"]
    } else {
        &["ws"]
    };
    for scheme in schemes {
        let tcp = connect_to(&listener, &format!("{scheme}://{addr}/chat")).await;
        assert!(
            tcp.nodelay().expect("nodelay"),
            "{scheme}: TCP_NODELAY is set"
        );
    }
}

#[tokio::test]
async fn an_ipv6_literal_is_connected_to_without_its_brackets() {
    let listener = TcpListener::bind("[::1]:0")
        .await
        .expect("bind IPv6 loopback");
    let port = listener.local_addr().expect("local addr").port();
    let endpoint = Endpoint::from(("::1", port, "/v6"));
    assert_eq!(endpoint.as_str(), format!("ws://[::1]:{port}/v6"));
    connect_to(&listener, endpoint.as_str()).await;
}
