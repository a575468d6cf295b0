//! The policies as a mailbox applies them, and the order the writer gets frames in.

use super::*;

fn rule(topic: u64, queue: usize, mode: Mode) -> Rule {
    Rule { topic, queue, mode }
}

fn text(s: &str) -> Frame {
    Frame::text(s.to_owned())
}

/// Everything the writer would write next, as text, with the topics.
fn drain(mailbox: &Mailbox) -> Vec<(u64, String)> {
    let mut batch = Batch::default();
    let mut out = Vec::new();
    if let Next::Write = mailbox.take(&mut batch) {
        while let Some((topic, delivery)) = batch.pop() {
            out.push((
                topic,
                delivery.frame.as_text().unwrap_or("<close>").to_owned(),
            ));
            batch.count(topic);
        }
    }
    mailbox.written(&mut batch);
    out
}

#[test]
fn drop_oldest_keeps_the_newest_frames_of_its_topic_only() {
    let mailbox = Mailbox::new(1);
    let prices = rule(1, 2, Mode::DropOldest);
    let news = rule(2, 2, Mode::DropOldest);
    assert_eq!(
        mailbox.offer(&news, None, text("n1").into()),
        Offered::Queued
    );
    for (i, expected) in [Offered::Queued, Offered::Queued, Offered::Displaced]
        .into_iter()
        .enumerate()
    {
        assert_eq!(
            mailbox.offer(&prices, None, text(&format!("p{i}")).into()),
            expected
        );
    }
    let drained = drain(&mailbox);
    assert_eq!(
        drained,
        [(2, "n1".into()), (1, "p1".into()), (1, "p2".into())]
    );
    // The batch taken no longer counts against the bound.
    assert_eq!(
        mailbox.offer(&prices, None, text("p3").into()),
        Offered::Queued
    );
}

#[test]
fn conflation_keeps_the_latest_value_in_the_place_of_the_first() {
    let mailbox = Mailbox::new(1);
    let ticks = rule(1, 3, Mode::Conflate);
    for (key, value, expected) in [
        (7, "a1", Offered::Queued),
        (8, "b1", Offered::Queued),
        (7, "a2", Offered::Conflated),
        (7, "a3", Offered::Conflated),
        (9, "c1", Offered::Queued),
        // A fourth key passes the bound of 3: the oldest key's value goes.
        (10, "d1", Offered::Displaced),
    ] {
        assert_eq!(
            mailbox.offer(&ticks, Some(key), text(value).into()),
            expected
        );
    }
    let values: Vec<_> = drain(&mailbox).into_iter().map(|(_, v)| v).collect();
    assert_eq!(values, ["b1", "c1", "d1"]);
    // After the batch is taken, a key starts a new entry.
    assert_eq!(
        mailbox.offer(&ticks, Some(8), text("b2").into()),
        Offered::Queued
    );
    assert_eq!(drain(&mailbox), [(1, "b2".into())]);
}

#[test]
fn a_full_queue_under_disconnect_kicks_frees_the_queue_and_takes_nothing_more() {
    let mailbox = Mailbox::new(1);
    let reason = CloseReason::new(CloseCode::PolicyViolation, "slow");
    let strict = rule(1, 2, Mode::Disconnect(reason.clone()));
    let lenient = rule(2, 2, Mode::DropOldest);
    assert_eq!(
        mailbox.offer(&strict, None, text("1").into()),
        Offered::Queued
    );
    assert_eq!(
        mailbox.offer(&strict, None, text("2").into()),
        Offered::Queued
    );
    assert_eq!(
        mailbox.offer(&strict, None, text("3").into()),
        Offered::Kicked
    );
    assert_eq!(
        mailbox.offer(&lenient, None, text("x").into()),
        Offered::Gone
    );
    assert!(mailbox.is_kicked());
    assert!(matches!(mailbox.take(&mut Batch::default()), Next::Kick(r) if r == reason));
    assert_eq!(mailbox.offer_app(text("app"), 8), Err(reason.clone()));
    assert_eq!(mailbox.close_reason(), Some(reason));
}

#[test]
fn application_frames_wait_for_room_and_keep_their_order_with_topics() {
    let mailbox = Mailbox::new(1);
    let topic = rule(1, 4, Mode::DropOldest);
    assert_eq!(mailbox.offer_app(text("a1"), 2), Ok(None));
    mailbox.offer(&topic, None, text("t1").into());
    assert_eq!(mailbox.offer_app(text("a2"), 2), Ok(None));
    assert_eq!(mailbox.offer_app(text("a3"), 2), Ok(Some(text("a3"))));
    let order: Vec<_> = drain(&mailbox).into_iter().map(|(_, v)| v).collect();
    assert_eq!(order, ["a1", "t1", "a2"]);
    assert_eq!(mailbox.offer_app(text("a3"), 2), Ok(None));
}

#[test]
fn sealing_with_a_reason_queues_the_close_frame_last_then_the_writer_is_done() {
    let mailbox = Mailbox::new(1);
    let topic = rule(1, 4, Mode::DropOldest);
    mailbox.offer(&topic, None, text("t1").into());
    let reason = CloseReason::new(CloseCode::Normal, "bye");
    mailbox.seal(Some(reason.clone()));
    assert_eq!(
        mailbox.offer(&topic, None, text("t2").into()),
        Offered::Gone
    );
    assert_eq!(drain(&mailbox), [(1, "t1".into()), (APP, "<close>".into())]);
    assert!(matches!(mailbox.take(&mut Batch::default()), Next::Done));
    assert_eq!(mailbox.close_reason(), Some(reason));
}
