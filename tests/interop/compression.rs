//! permessage-deflate (RFC 7692) with independent implementations: our client against a Python
//! `websockets` server and a Node `ws` server, their clients against our server, in each codec,
//! with context takeover and without it on both sides.
//!
//! Each test runs the exchange of tests/interop/exchange.rs (tests/common/interop.rs) over sessions
//! that agreed on compression, with every message compressed on both sides (our threshold 0, the
//! peers' `--compress on|no-context`): the peer's values whole and in 7-byte fragments, then ours
//! whole and, over a second connection, in 16-byte fragments. Before that, five values each way in
//! a row, since context takeover only shows from a connection's second message: each one refers
//! back to the one before, which only a receiver that kept its window reads right. Both ends must
//! report the same agreement: our [`Session::compression`] and the `Sec-WebSocket-Extensions` the
//! peer prints.
//!
//! Agreeing is not compressing, so the tests at the end put a byte-counting TCP relay between
//! the two ends and check that a 64 KiB message of repeated JSON, sent each way, takes a small
//! fraction of that on the wire; and, without compression, all of it. Two more check that
//! each end keeps within the window it agreed to, smaller than DEFLATE's 32 KiB, which no
//! exchange above would show.
//!
//! The peers come from `bash tests/peers/install.sh`. A test whose peer is not installed
//! fails and says so: a test that did not run never counts as passed.
#![cfg(all(feature = "json", feature = "cbor", feature = "msgpack"))]

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::interop::{
    ask, canonical, config, exchange, fragments_and_our_close, peer_closes, verdict,
};
use common::peers::{Lang, Peer, require};
use common::{accept_one, within};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use typed_ws::*;

/// Context takeover on both sides, or on neither.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Context {
    Takeover,
    NoTakeover,
}

impl Context {
    /// The peers' `--compress` option.
    fn flag(self) -> &'static str {
        match self {
            Context::Takeover => "on",
            Context::NoTakeover => "no-context",
        }
    }

    /// Ours. Threshold 0, as the peers are set: a message left uncompressed would leave its
    /// part of the stream untested.
    fn compression(self) -> Compression {
        let compression = Compression::new().threshold(0);
        match self {
            Context::Takeover => compression,
            Context::NoTakeover => compression.no_context_takeover().peer_no_context_takeover(),
        }
    }
}

fn compressing(codec: &str, context: Context) -> Config<AnyConverter> {
    config(codec).compression(context.compression())
}

/// The `Sec-WebSocket-Extensions` of the handshake response, as the peer reports it when a
/// connection opens.
async fn peer_extensions(peer: &mut Peer) -> String {
    #[derive(Deserialize)]
    struct Extensions {
        event: String,
        value: String,
    }
    let line = peer.line("the peer reporting its extensions").await;
    let report: Extensions =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("the peer said {line:?}: {e}"));
    assert_eq!(report.event, "extensions", "{line}");
    report.value
}

/// Both ends agreed on permessage-deflate, and on `context`, each as it sees it.
async fn assert_agreed(peer: &mut Peer, session: &Session<AnyConverter>, context: Context) {
    let ours = session
        .compression()
        .expect("our end agreed on no compression");
    let no_takeover = context == Context::NoTakeover;
    assert_eq!(
        (
            ours.send_no_context_takeover(),
            ours.receive_no_context_takeover()
        ),
        (no_takeover, no_takeover),
        "{ours:?}"
    );

    let theirs = peer_extensions(peer).await;
    eprintln!("agreed: {ours:?}; the peer's extensions: {theirs:?}");
    let params: Vec<&str> = theirs.split(';').map(str::trim).collect();
    assert_eq!(
        params[0], "permessage-deflate",
        "the peer's extensions: {theirs:?}"
    );
    for param in ["server_no_context_takeover", "client_no_context_takeover"] {
        assert_eq!(
            params.contains(&param),
            no_takeover,
            "{param} in the peer's extensions: {theirs:?}"
        );
    }
}

/// Five of our values back to back, then five of the peer's, whole and fragmented in turn.
async fn in_a_row(session: &mut Session<AnyConverter>, codec: &str) {
    const TIMES: usize = 5;
    for i in 1..=TIMES {
        let what = format!("send our value, {i} of {TIMES} in a row");
        within(&what, session.send_serialized(&canonical()))
            .await
            .unwrap();
    }
    for i in 1..=TIMES {
        let what = format!("the peer decoding our value, {i} of {TIMES} in a row");
        verdict(session, &what).await;
    }
    for i in 0..TIMES {
        ask(session, codec, "canonical", i % 2 == 1).await;
    }
}

/// The raw DEFLATE size of our value in `codec`: what a compressed message of it carries, near
/// enough.
fn deflated_len(codec: &str) -> usize {
    let converter = AnyConverter::from_name(codec).unwrap();
    let frame = converter.serialize(&canonical()).unwrap();
    let mut out = Vec::with_capacity(frame.payload().len() + 64);
    flate2::Compress::new(flate2::Compression::default(), false)
        .compress_vec(frame.payload(), &mut out, flate2::FlushCompress::Finish)
        .unwrap();
    out.len()
}

/// The second connection sends our value in 16-byte fragments; compressed, it must still take
/// several, or the fragmented case would go untested.
fn assert_compressed_value_fragments(codec: &str) {
    let len = deflated_len(codec);
    assert!(
        len > 5 * 16,
        "{len} compressed bytes make too few fragments"
    );
}

/// Our client against the peer's server.
async fn our_client(lang: Lang, codec: &str, context: Context) {
    require(lang);
    assert_compressed_value_fragments(codec);
    let args = ["server", "--codec", codec, "--compress", context.flag()];
    let mut peer = Peer::start(lang, &args);
    let url = format!("{}/interop", peer.listening().await);

    let client = Client::new(compressing(codec, context));
    let mut session = within(
        "connect to the peer",
        client.web_socket_session(url.as_str()),
    )
    .await
    .unwrap();
    assert_agreed(&mut peer, &session, context).await;
    in_a_row(&mut session, codec).await;
    exchange(lang, codec, session).await;
    assert_eq!(peer.closed().await, (4001, "bye ✓".to_owned()));

    let client = Client::new(compressing(codec, context).fragment_size(16));
    let mut session = within("connect again", client.web_socket_session(url.as_str()))
        .await
        .unwrap();
    assert_agreed(&mut peer, &session, context).await;
    in_a_row(&mut session, codec).await;
    fragments_and_our_close(&mut peer, session).await;
}

/// The peer's client against our server.
async fn our_server(lang: Lang, codec: &str, context: Context) {
    require(lang);
    assert_compressed_value_fragments(codec);
    for fragment_size in [0, 16] {
        let (addr, accepted) =
            accept_one(compressing(codec, context).fragment_size(fragment_size)).await;
        let url = format!("ws://{addr}/interop");
        let args = [
            "client",
            "--url",
            &url,
            "--codec",
            codec,
            "--compress",
            context.flag(),
        ];
        let mut peer = Peer::start(lang, &args);
        let mut session = within("the peer connecting", accepted)
            .await
            .unwrap()
            .unwrap();
        assert_agreed(&mut peer, &session, context).await;
        in_a_row(&mut session, codec).await;
        if fragment_size == 0 {
            exchange(lang, codec, session).await;
            assert_eq!(peer.closed().await, (4001, "bye ✓".to_owned()));
        } else {
            fragments_and_our_close(&mut peer, session).await;
        }
    }
}

#[tokio::test]
async fn our_client_and_a_python_server_compress_json_with_context_takeover() {
    our_client(Lang::Python, "json", Context::Takeover).await;
}

#[tokio::test]
async fn our_client_and_a_python_server_compress_json_without_context_takeover() {
    our_client(Lang::Python, "json", Context::NoTakeover).await;
}

#[tokio::test]
async fn our_client_and_a_python_server_compress_cbor_with_context_takeover() {
    our_client(Lang::Python, "cbor", Context::Takeover).await;
}

#[tokio::test]
async fn our_client_and_a_python_server_compress_cbor_without_context_takeover() {
    our_client(Lang::Python, "cbor", Context::NoTakeover).await;
}

#[tokio::test]
async fn our_client_and_a_python_server_compress_msgpack_with_context_takeover() {
    our_client(Lang::Python, "msgpack", Context::Takeover).await;
}

#[tokio::test]
async fn our_client_and_a_python_server_compress_msgpack_without_context_takeover() {
    our_client(Lang::Python, "msgpack", Context::NoTakeover).await;
}

#[tokio::test]
async fn a_python_client_and_our_server_compress_json_with_context_takeover() {
    our_server(Lang::Python, "json", Context::Takeover).await;
}

#[tokio::test]
async fn a_python_client_and_our_server_compress_json_without_context_takeover() {
    our_server(Lang::Python, "json", Context::NoTakeover).await;
}

#[tokio::test]
async fn a_python_client_and_our_server_compress_cbor_with_context_takeover() {
    our_server(Lang::Python, "cbor", Context::Takeover).await;
}

#[tokio::test]
async fn a_python_client_and_our_server_compress_cbor_without_context_takeover() {
    our_server(Lang::Python, "cbor", Context::NoTakeover).await;
}

#[tokio::test]
async fn a_python_client_and_our_server_compress_msgpack_with_context_takeover() {
    our_server(Lang::Python, "msgpack", Context::Takeover).await;
}

#[tokio::test]
async fn a_python_client_and_our_server_compress_msgpack_without_context_takeover() {
    our_server(Lang::Python, "msgpack", Context::NoTakeover).await;
}

#[tokio::test]
async fn our_client_and_a_node_server_compress_json_with_context_takeover() {
    our_client(Lang::Node, "json", Context::Takeover).await;
}

#[tokio::test]
async fn our_client_and_a_node_server_compress_json_without_context_takeover() {
    our_client(Lang::Node, "json", Context::NoTakeover).await;
}

#[tokio::test]
async fn our_client_and_a_node_server_compress_cbor_with_context_takeover() {
    our_client(Lang::Node, "cbor", Context::Takeover).await;
}

#[tokio::test]
async fn our_client_and_a_node_server_compress_cbor_without_context_takeover() {
    our_client(Lang::Node, "cbor", Context::NoTakeover).await;
}

#[tokio::test]
async fn our_client_and_a_node_server_compress_msgpack_with_context_takeover() {
    our_client(Lang::Node, "msgpack", Context::Takeover).await;
}

#[tokio::test]
async fn our_client_and_a_node_server_compress_msgpack_without_context_takeover() {
    our_client(Lang::Node, "msgpack", Context::NoTakeover).await;
}

#[tokio::test]
async fn a_node_client_and_our_server_compress_json_with_context_takeover() {
    our_server(Lang::Node, "json", Context::Takeover).await;
}

#[tokio::test]
async fn a_node_client_and_our_server_compress_json_without_context_takeover() {
    our_server(Lang::Node, "json", Context::NoTakeover).await;
}

#[tokio::test]
async fn a_node_client_and_our_server_compress_cbor_with_context_takeover() {
    our_server(Lang::Node, "cbor", Context::Takeover).await;
}

#[tokio::test]
async fn a_node_client_and_our_server_compress_cbor_without_context_takeover() {
    our_server(Lang::Node, "cbor", Context::NoTakeover).await;
}

#[tokio::test]
async fn a_node_client_and_our_server_compress_msgpack_with_context_takeover() {
    our_server(Lang::Node, "msgpack", Context::Takeover).await;
}

#[tokio::test]
async fn a_node_client_and_our_server_compress_msgpack_without_context_takeover() {
    our_server(Lang::Node, "msgpack", Context::NoTakeover).await;
}

/// Bytes through a [`relay`], each way; its upstream is the server, whichever end that is.
#[derive(Clone, Default)]
struct Counts {
    to_server: Arc<AtomicU64>,
    from_server: Arc<AtomicU64>,
}

impl Counts {
    fn get(&self) -> (u64, u64) {
        (
            self.to_server.load(Ordering::SeqCst),
            self.from_server.load(Ordering::SeqCst),
        )
    }
}

/// A TCP relay on a free loopback port that passes one connection on to the server at
/// `upstream`, counting what goes through. Counts are read while the connection is open, so that they cannot depend
/// on how either end tears it down.
async fn relay(upstream: SocketAddr) -> (SocketAddr, Counts) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let counts = Counts::default();
    let task_counts = counts.clone();
    tokio::spawn(async move {
        let (inbound, _) = listener.accept().await.expect("accept");
        let outbound = TcpStream::connect(upstream)
            .await
            .expect("connect upstream");
        for stream in [&inbound, &outbound] {
            stream.set_nodelay(true).expect("nodelay");
        }
        let (in_read, in_write) = inbound.into_split();
        let (out_read, out_write) = outbound.into_split();
        tokio::join!(
            pump(in_read, out_write, task_counts.to_server),
            pump(out_read, in_write, task_counts.from_server),
        );
    });
    (addr, counts)
}

/// Copies until either side ends, then passes the end on.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, count: Arc<AtomicU64>) {
    let mut buffer = vec![0; 16 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buffer).await {
        count.fetch_add(n as u64, Ordering::SeqCst);
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Which end is ours.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Client,
    Server,
}

/// What went over a relay: the message's length, the agreement our end saw, and the bytes that
/// went to the server and from it, handshake included.
struct Traffic {
    len: usize,
    agreed: Option<PerMessageDeflate>,
    to_server: u64,
    from_server: u64,
}

/// Through a relay: the peer, with `--compress flag`, echoes `data`, which we send as the JSON
/// of an `echo` command, so that the bulk goes both ways; `times` times in a row.
async fn echo_through_a_relay(
    lang: Lang,
    role: Role,
    flag: &str,
    ours: Config<AnyConverter>,
    data: String,
    times: usize,
) -> Traffic {
    require(lang);
    let (mut peer, mut session, counts) = match role {
        Role::Server => {
            let (addr, accepted) = accept_one(ours).await;
            let (relay_addr, counts) = relay(addr).await;
            let url = format!("ws://{relay_addr}/interop");
            let args = [
                "client",
                "--url",
                &url,
                "--codec",
                "json",
                "--compress",
                flag,
            ];
            let peer = Peer::start(lang, &args);
            let session = within("the peer connecting", accepted)
                .await
                .unwrap()
                .unwrap();
            (peer, session, counts)
        }
        Role::Client => {
            let mut peer = Peer::start(lang, &["server", "--codec", "json", "--compress", flag]);
            let listening = peer.listening().await;
            let addr = listening
                .strip_prefix("ws://")
                .and_then(|addr| addr.parse().ok())
                .unwrap_or_else(|| panic!("the peer listens on {listening}"));
            let (relay_addr, counts) = relay(addr).await;
            let url = format!("ws://{relay_addr}/interop");
            let session = within(
                "connect to the peer",
                Client::new(ours).web_socket_session(url),
            )
            .await
            .unwrap();
            (peer, session, counts)
        }
    };
    let agreed = session.compression();
    let extensions = peer_extensions(&mut peer).await;
    assert_eq!(
        extensions.starts_with("permessage-deflate"),
        agreed.is_some(),
        "the peer's extensions: {extensions:?}; ours: {agreed:?}"
    );

    let command = serde_json::json!({"cmd": "echo", "data": data}).to_string();
    for i in 1..=times {
        let what = format!("echo {i} of {times}");
        within(&what, session.send_text(command.clone()))
            .await
            .unwrap();
        let frame = within(&what, session.receive())
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        match frame.as_text() {
            Some(text) => assert!(text == data, "{what} differs: {} bytes", text.len()),
            None => panic!("{what}: {frame:?} came instead"),
        }
    }
    let (to_server, from_server) = counts.get();

    peer_closes(session).await;
    assert_eq!(peer.closed().await, (4001, "bye ✓".to_owned()));
    Traffic {
        len: data.len(),
        agreed,
        to_server,
        from_server,
    }
}

/// 64 KiB or more of JSON that repeats itself, as real traffic does: our value over and over.
fn repetitive_json() -> String {
    let one = serde_json::to_string(&canonical()).unwrap();
    let copies = (64 << 10) / one.len() + 1;
    format!("[{}]", vec![one; copies].join(","))
}

/// Each way, the compressed bulk and the handshake together must take under an eighth of the
/// message: repeated JSON deflates to far less than that, and a session that only agreed to
/// compress sends all of it.
async fn assert_compressed_on_the_wire(lang: Lang, role: Role) {
    let ours = config("json").compression(Compression::new());
    let traffic = echo_through_a_relay(lang, role, "on", ours, repetitive_json(), 1).await;
    let Traffic {
        len,
        to_server,
        from_server,
        ..
    } = traffic;
    eprintln!("{len}-byte message: {to_server} bytes to the server, {from_server} from it");
    assert!(traffic.agreed.is_some(), "our end agreed on no compression");
    for (way, bytes) in [
        ("to the server", to_server),
        ("from the server", from_server),
    ] {
        assert!(
            bytes < len as u64 / 8,
            "{bytes} bytes went {way} for a {len}-byte message each way"
        );
    }
}

#[tokio::test]
async fn a_python_client_and_our_server_send_a_64_kib_message_each_way_in_a_fraction_of_its_size() {
    assert_compressed_on_the_wire(Lang::Python, Role::Server).await;
}

#[tokio::test]
async fn a_node_client_and_our_server_send_a_64_kib_message_each_way_in_a_fraction_of_its_size() {
    assert_compressed_on_the_wire(Lang::Node, Role::Server).await;
}

#[tokio::test]
async fn our_client_and_a_python_server_send_a_64_kib_message_each_way_in_a_fraction_of_its_size() {
    assert_compressed_on_the_wire(Lang::Python, Role::Client).await;
}

#[tokio::test]
async fn our_client_and_a_node_server_send_a_64_kib_message_each_way_in_a_fraction_of_its_size() {
    assert_compressed_on_the_wire(Lang::Node, Role::Client).await;
}

/// The relay's counts mean something: uncompressed, the whole message goes through each way.
#[tokio::test]
async fn without_compression_the_relay_counts_the_whole_message_each_way() {
    let traffic = echo_through_a_relay(
        Lang::Python,
        Role::Server,
        "off",
        config("json"),
        repetitive_json(),
        1,
    )
    .await;
    let Traffic {
        len,
        to_server,
        from_server,
        ..
    } = traffic;
    assert!(traffic.agreed.is_none(), "{:?}", traffic.agreed);
    for (way, bytes) in [
        ("to the server", to_server),
        ("from the server", from_server),
    ] {
        assert!(
            bytes >= len as u64,
            "only {bytes} bytes went {way} for a {len}-byte message each way"
        );
    }
}

/// 6000 bytes of text that does not repeat within itself, to be echoed twice in a row with
/// context takeover: the second time, a compressor whose window is larger than agreed refers
/// back to the first, and the peer, inflating with the window agreed, fails the connection
/// ("invalid distance too far back"). Within one message inflate would not notice, as zlib
/// reads back from its output as well as from its window.
fn beyond_the_window() -> String {
    common::rng::Rng::new(11)
        .bytes(3000)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A Python server asks for 12-bit windows both ways (its default): our client must compress
/// within 4 KiB.
#[tokio::test]
async fn our_client_compresses_within_the_12_bit_window_a_python_server_asks_for() {
    let ours = config("json").compression(Compression::new().threshold(0));
    let traffic = echo_through_a_relay(
        Lang::Python,
        Role::Client,
        "on",
        ours,
        beyond_the_window(),
        2,
    )
    .await;
    let agreed = traffic.agreed.expect("our end agreed on no compression");
    assert_eq!(
        (agreed.send_window_bits(), agreed.receive_window_bits()),
        (12, 12),
        "{agreed:?}"
    );
}

/// Our server with 10-bit windows both ways: it must compress within 1 KiB itself, and a Node
/// client must agree to do the same.
#[tokio::test]
async fn our_server_compresses_within_the_10_bit_window_it_agreed_with_a_node_client() {
    let compression = Compression::new()
        .threshold(0)
        .max_window_bits(10)
        .peer_max_window_bits(10);
    let ours = config("json").compression(compression);
    let traffic =
        echo_through_a_relay(Lang::Node, Role::Server, "on", ours, beyond_the_window(), 2).await;
    let agreed = traffic.agreed.expect("our end agreed on no compression");
    assert_eq!(
        (agreed.send_window_bits(), agreed.receive_window_bits()),
        (10, 10),
        "{agreed:?}"
    );
}
