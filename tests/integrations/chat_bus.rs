//! `examples/chat` on two nodes sharing a bus (NATS, then Redis): one room across them.
#![cfg(all(
    feature = "nats",
    feature = "redis",
    feature = "axum",
    feature = "json",
    feature = "msgpack"
))]

use crate::common;

use common::brokers::{BOTH, Broker};
use common::examples::Running;
use common::*;
use serde_json::{Value, json};
use typed_ws::{AnyConverter, Client, Session};

async fn join(node: &Running, name: &str) -> Session<AnyConverter> {
    let url = format!("{}ws?name={name}", node.url.replacen("http", "ws", 1));
    within(
        "join",
        Client::new(negotiating("json")).web_socket_session(url),
    )
    .await
    .expect("join")
}

async fn next(session: &mut Session<AnyConverter>) -> Value {
    // The welcome, then the room's numbered stream: its outcome, skipped here, then events.
    loop {
        let frame: Value = within("an event", session.receive_deserialized())
            .await
            .expect("an event");
        if frame.get("outcome").is_some() {
            continue;
        }
        return match frame.get("data") {
            Some(event) => event.clone(),
            None => frame,
        };
    }
}

#[tokio::test]
async fn two_chat_servers_on_one_bus_are_one_room() {
    for broker in BOTH.map(Broker::start) {
        let kind = broker.kind;
        let url = broker.url();
        let args = ["--addr", "127.0.0.1:0", "--bus", &url];
        let nodes = [
            Running::start("chat", &args).await,
            Running::start("chat", &args).await,
        ];
        let mut alice = join(&nodes[0], "alice").await;
        assert_eq!(
            next(&mut alice).await["online"],
            json!(["alice"]),
            "{kind:?}"
        );
        let mut bob = join(&nodes[1], "bob").await;
        // Alice's `joined` crosses the broker while bob joins: bob's node lists her if it had
        // heard it by then, and bob gets the event itself otherwise.
        let online = next(&mut bob).await["online"].clone();
        if online == json!(["bob"]) {
            assert_eq!(
                next(&mut bob).await,
                json!({"type": "joined", "name": "alice"})
            );
        } else {
            assert_eq!(online, json!(["bob", "alice"]), "{kind:?}");
        }
        assert_eq!(
            next(&mut alice).await,
            json!({"type": "joined", "name": "bob"})
        );

        within(
            "say",
            alice.send_serialized(&json!({"text": "hello, other node"})),
        )
        .await
        .unwrap();
        let message =
            json!({"type": "message", "id": 0, "author": "alice", "text": "hello, other node"});
        assert_eq!(next(&mut alice).await, message, "{kind:?}");
        assert_eq!(next(&mut bob).await, message, "{kind:?}");

        drop(bob);
        assert_eq!(
            next(&mut alice).await,
            json!({"type": "left", "name": "bob"}),
            "{kind:?}"
        );
        let mut carol = join(&nodes[1], "carol").await;
        assert_eq!(
            next(&mut carol).await["online"],
            json!(["carol", "alice"]),
            "{kind:?}: bob is gone from every list"
        );
    }
}
