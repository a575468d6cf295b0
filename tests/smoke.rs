mod common;

use common::*;
use typed_ws::*;

#[tokio::test]
async fn typed_round_trip_each_codec() {
    for converter in ["json", "cbor", "msgpack"] {
        let config = Config::new().converter(AnyConverter::from_name(converter).unwrap());
        let addr = serve(Server::new(config.clone()), echo).await;
        let client = Client::new(config);
        let mut session = within(
            "connect",
            client.web_socket_session(format!("ws://{addr}/echo")),
        )
        .await
        .unwrap();
        assert_eq!(session.path(), Some("/echo"));
        for id in 0..3 {
            within("send", session.send_serialized(&chat(id)))
                .await
                .unwrap();
            let back: ChatMessage = within("receive", session.receive_deserialized())
                .await
                .unwrap();
            assert_eq!(back, chat(id));
        }
        within(
            "close",
            session.close(CloseReason::new(CloseCode::Normal, "done")),
        )
        .await
        .unwrap();
        assert_eq!(session.close_reason().unwrap().code, CloseCode::Normal);
    }
}
