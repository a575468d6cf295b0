//! The `tracing` feature: handshakes and sessions record spans and events that tell sessions
//! apart and say how each ended, and nothing a peer sent goes into them beyond a short prefix.
//! Each test records into its own subscriber, on a current-thread runtime, so that the
//! sessions' tasks record into it too.
#![cfg(all(feature = "tracing", feature = "json"))]

use crate::common;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use common::raw::{self, RawPeer, client_frame};
use common::*;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_core::span::Current;
use typed_ws::http::StatusCode;
use typed_ws::*;

/// A span as recorded: its name, its parent's index, its fields as text.
#[derive(Debug, Clone)]
struct SpanRecord {
    name: &'static str,
    metadata: &'static Metadata<'static>,
    parent: Option<usize>,
    fields: BTreeMap<String, String>,
}

/// An event as recorded; `message` is its text, `span` the index of its span.
#[derive(Debug, Clone)]
struct EventRecord {
    level: Level,
    span: Option<usize>,
    fields: BTreeMap<String, String>,
}

impl EventRecord {
    fn message(&self) -> &str {
        self.fields.get("message").map_or("", String::as_str)
    }

    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

#[derive(Debug, Default)]
struct Log {
    spans: Vec<SpanRecord>,
    events: Vec<EventRecord>,
    /// The spans entered, innermost last; one thread records into this subscriber.
    entered: Vec<usize>,
}

impl Log {
    fn events(&self, message: &str) -> Vec<&EventRecord> {
        self.events
            .iter()
            .filter(|e| e.message() == message)
            .collect()
    }

    fn span_of(&self, event: &EventRecord) -> &SpanRecord {
        &self.spans[event.span.expect("the event is in a span")]
    }

    /// Every field of every span and event, as `(name, value)`.
    fn all_fields(&self) -> impl Iterator<Item = (&String, &String)> {
        let spans = self.spans.iter().flat_map(|s| &s.fields);
        spans.chain(self.events.iter().flat_map(|e| &e.fields))
    }
}

/// A subscriber that keeps everything, at every level.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Log>>);

impl Recorder {
    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

fn index(id: &Id) -> usize {
    usize::try_from(id.into_u64()).expect("span ids fit usize") - 1
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attributes: &Attributes<'_>) -> Id {
        let mut log = self.log();
        let parent = match attributes.parent() {
            Some(id) => Some(index(id)),
            None if attributes.is_contextual() => log.entered.last().copied(),
            None => None,
        };
        let mut fields = BTreeMap::new();
        attributes.record(&mut Fields(&mut fields));
        log.spans.push(SpanRecord {
            name: attributes.metadata().name(),
            metadata: attributes.metadata(),
            parent,
            fields,
        });
        Id::from_u64(log.spans.len() as u64)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        values.record(&mut Fields(&mut self.log().spans[index(span)].fields));
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut log = self.log();
        let span = match event.parent() {
            Some(id) => Some(index(id)),
            None if event.is_contextual() => log.entered.last().copied(),
            None => None,
        };
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        log.events.push(EventRecord {
            level: *event.metadata().level(),
            span,
            fields,
        });
    }

    /// What `Span::current` answers.
    fn current_span(&self) -> Current {
        let log = self.log();
        match log.entered.last() {
            Some(&at) => Current::new(Id::from_u64(at as u64 + 1), log.spans[at].metadata),
            None => Current::none(),
        }
    }

    fn enter(&self, span: &Id) {
        self.log().entered.push(index(span));
    }

    fn exit(&self, span: &Id) {
        let mut log = self.log();
        if let Some(at) = log.entered.iter().rposition(|&s| s == index(span)) {
            log.entered.remove(at);
        }
    }
}

/// Runs `test` on a current-thread runtime with a recorder as the subscriber, and gives what
/// it recorded.
fn traced<F: Future<Output = ()>>(test: impl FnOnce() -> F) -> Recorder {
    let recorder = Recorder::default();
    tracing::subscriber::with_default(recorder.clone(), || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(test());
    });
    recorder
}

fn json() -> Config<JsonConverter> {
    Config::new().converter(JsonConverter)
}

#[test]
fn a_clean_close_gives_session_spans_and_an_end_event_with_1000() {
    let recorder = traced(|| async {
        let addr = serve(Server::new(json()), echo).await;
        let client = Client::new(json());
        let url = format!("ws://{addr}/traced?token=secret");
        let mut session = within("connect", client.web_socket_session(url))
            .await
            .expect("handshake");
        within("send", session.send_text("hi")).await.expect("send");
        let echoed = within("echo", session.receive()).await.expect("echo");
        assert_eq!(echoed, Frame::text("hi"));
        within(
            "close",
            session.close(CloseReason::new(CloseCode::Normal, "")),
        )
        .await
        .expect("close");
    });
    let log = recorder.log();

    let sessions: Vec<_> = log.spans.iter().filter(|s| s.name == "session").collect();
    assert_eq!(
        sessions.len(),
        2,
        "a client and a server session: {sessions:?}"
    );
    for session in &sessions {
        assert_eq!(session.fields["path"], "/traced");
        assert_eq!(session.fields["converter"], "json");
        let handshake = &log.spans[session.parent.expect("inside the handshake span")];
        assert_eq!(handshake.name, "handshake");
    }
    assert_ne!(sessions[0].fields["id"], sessions[1].fields["id"]);
    let server_handshake = log
        .spans
        .iter()
        .find(|s| s.name == "handshake" && s.fields["side"] == "server")
        .expect("a server handshake span");
    assert!(server_handshake.fields["peer"].starts_with("127.0.0.1:"));
    assert_eq!(server_handshake.fields["path"], "/traced");
    assert!(
        log.all_fields().all(|(_, value)| !value.contains("secret")),
        "the query string stays out of the records"
    );

    assert_eq!(log.events("handshake succeeded").len(), 2);
    let closed = log.events("session closed");
    assert_eq!(closed.len(), 2, "one end per session: {closed:?}");
    for event in &closed {
        assert_eq!(event.field("code"), Some("1000"));
        assert_eq!(event.level, Level::DEBUG);
        assert_eq!(log.span_of(event).name, "session");
    }
    let by: Vec<_> = closed.iter().filter_map(|e| e.field("by")).collect();
    assert!(by.contains(&"local") && by.contains(&"peer"), "{by:?}");
    assert!(
        log.events("session dropped without a close frame")
            .is_empty(),
        "both sessions were closed before they were dropped"
    );
    assert!(
        log.events
            .iter()
            .all(|e| matches!(e.level, Level::DEBUG | Level::TRACE)),
        "nothing at info or above"
    );
}

#[test]
fn a_refused_handshake_gives_a_failure_event_naming_the_reason() {
    let recorder = traced(|| async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = Server::new(json());
        tokio::spawn(async move {
            server
                .serve_with(listener, |_| Err(StatusCode::BAD_REQUEST), echo)
                .await
        });
        let client = Client::new(json());
        let refused = within(
            "refused",
            client.web_socket_session(format!("ws://{addr}/no")),
        )
        .await
        .expect_err("the server refuses");
        assert_eq!(refused.status(), Some(StatusCode::BAD_REQUEST));
    });
    let log = recorder.log();
    let failed = log.events("handshake failed");
    assert_eq!(failed.len(), 2, "client and server: {failed:?}");
    for event in &failed {
        assert_eq!(event.level, Level::DEBUG);
        let error = event.field("error").expect("the error");
        assert!(error.contains("400"), "{error}");
        let span = log.span_of(event);
        assert_eq!(
            (span.name, span.fields["path"].as_str()),
            ("handshake", "/no")
        );
    }
    assert!(log.spans.iter().all(|s| s.name != "session"));
}

#[test]
fn a_silent_peer_gives_a_timeout_event() {
    let recorder = traced(|| async {
        let config = json().timeout(Duration::from_millis(200));
        let addr = serve(Server::new(config), echo).await;
        let mut peer = within("connect", RawPeer::connect(addr, "/silent")).await;
        let close = within("the timeout", peer.expect_skipping_pings()).await;
        assert_eq!(close.close_code(), Some(1011));
    });
    let log = recorder.log();
    let timed_out = log.events("session timed out");
    assert_eq!(timed_out.len(), 1, "{:?}", log.events);
    assert_eq!(timed_out[0].level, Level::DEBUG);
    assert_eq!(log.span_of(timed_out[0]).fields["path"], "/silent");
    let closed = log.events("session closed");
    assert_eq!(closed[0].field("code"), Some("1011"));
}

#[test]
fn a_protocol_violation_ends_the_session_with_1002() {
    let recorder = traced(|| async {
        let addr = serve(Server::new(json()), echo).await;
        let mut peer = within("connect", RawPeer::connect(addr, "/rsv")).await;
        let frame = client_frame(0x80 | 0x40 | raw::TEXT, b"hello");
        within("write", peer.write_raw(&frame))
            .await
            .expect("write");
        let close = within("the close", peer.expect_skipping_pings()).await;
        assert_eq!(close.close_code(), Some(1002));
    });
    let log = recorder.log();
    let closed = log.events("session closed");
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert_eq!(closed[0].field("code"), Some("1002"));
    assert_eq!(closed[0].field("by"), Some("local"));
    let failed = log.events("session failed");
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]
            .field("error")
            .is_some_and(|e| e.contains("protocol"))
    );
}

#[test]
fn a_huge_payload_that_does_not_decode_is_quoted_only_in_part() {
    let recorder = traced(|| async {
        let handler = |mut session: Session<JsonConverter>| async move {
            if let Err(error) = session.receive_deserialized::<ChatMessage>().await {
                let code = error.close_code().unwrap_or(CloseCode::Normal);
                let _ = session
                    .close(CloseReason::new(code, error.to_string()))
                    .await;
            }
        };
        let addr = serve(Server::new(json()), handler).await;
        let mut peer = within("connect", RawPeer::connect(addr, "/huge")).await;
        let huge = format!("\"{}\"", "x".repeat(100_000));
        within("write", peer.write_frame(true, raw::TEXT, huge.as_bytes()))
            .await
            .expect("write");
        let close = within("the close", peer.expect_skipping_pings()).await;
        assert_eq!(close.close_code(), Some(1007));
        within("close back", peer.write_close(1000, ""))
            .await
            .expect("close");
    });
    let log = recorder.log();
    let undecoded = log.events("message did not decode");
    assert_eq!(undecoded.len(), 1);
    assert_eq!(undecoded[0].level, Level::TRACE);
    assert!(
        undecoded[0]
            .field("error")
            .is_some_and(|e| e.contains("xxxx") && e.contains("bytes in all"))
    );
    assert_eq!(log.events("session closed")[0].field("code"), Some("1007"));
    for (name, value) in log.all_fields() {
        assert!(value.len() <= 400, "{name} has {} bytes", value.len());
    }
}

#[test]
fn a_session_dropped_without_a_close_frame_says_so() {
    let recorder = traced(|| async {
        let addr = serve(Server::new(json()), echo).await;
        let url = format!("ws://{addr}/dropped");
        let session = within("connect", Client::new(json()).web_socket_session(url))
            .await
            .expect("handshake");
        drop(session);
    });
    let log = recorder.log();
    let dropped = log.events("session dropped without a close frame");
    // The client's, and the server's too if the runtime ends before it sees the connection go.
    assert!(!dropped.is_empty());
    for event in dropped {
        assert_eq!(event.level, Level::DEBUG);
        assert_eq!(log.span_of(event).name, "session");
    }
}

#[test]
fn a_raw_session_records_that_it_has_no_converter() {
    let recorder = traced(|| async {
        let addr = serve(Server::new(Config::new()), echo).await;
        let url = format!("ws://{addr}/raw");
        let mut session = within(
            "connect",
            Client::new(Config::new()).web_socket_session(url),
        )
        .await
        .expect("handshake");
        within(
            "close",
            session.close(CloseReason::new(CloseCode::Normal, "")),
        )
        .await
        .expect("close");
    });
    let log = recorder.log();
    let sessions: Vec<_> = log.spans.iter().filter(|s| s.name == "session").collect();
    assert!(!sessions.is_empty());
    for session in sessions {
        assert_eq!(session.fields["converter"], "none");
    }
}
