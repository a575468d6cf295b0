//! Many concurrent sessions through one typed echo server: nothing lost, nothing reordered.
#![cfg(all(feature = "json", feature = "cbor", feature = "msgpack"))]

use crate::common;

use common::*;
use typed_ws::{Client, CloseCode, CloseReason, Config, MsgPackConverter, Server};

const SESSIONS: u64 = 200;
const MESSAGES: u64 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_sessions_lose_and_reorder_nothing() {
    let config = Config::new().converter(MsgPackConverter::new());
    let addr = serve(Server::new(config.clone()), typed_echo).await;
    let client = Client::new(config);

    let mut sessions = Vec::new();
    for n in 0..SESSIONS {
        let client = client.clone();
        sessions.push(tokio::spawn(async move {
            let session = client
                .web_socket_session(format!("ws://{addr}/echo"))
                .await?;
            let (mut tx, mut rx) = session.split();
            // Sending and receiving run at once, so up to all 100 messages are in flight.
            let sender = tokio::spawn(async move {
                for id in 0..MESSAGES {
                    tx.send_serialized(&chat(n * MESSAGES + id)).await?;
                }
                Ok::<_, typed_ws::Error>(tx)
            });
            for id in 0..MESSAGES {
                let echo: ChatMessage = rx.receive_deserialized().await?;
                assert_eq!(
                    echo,
                    chat(n * MESSAGES + id),
                    "session {n}: message {id} lost or out of order"
                );
            }
            let mut tx = sender.await.expect("sender task")?;
            tx.close(CloseReason::new(CloseCode::Normal, "done"))
                .await?;
            Ok::<_, typed_ws::Error>(MESSAGES)
        }));
    }
    let mut received = 0;
    for session in sessions {
        received += within("a session's 100 echoes", session)
            .await
            .expect("no panic")
            .expect("no error");
    }
    assert_eq!(received, SESSIONS * MESSAGES);
}
