use super::*;

fn log(count: usize) -> Log<u32> {
    Log::new(History::last(count))
}

fn at(log: &Log<u32>, seq: u64) -> Option<Position> {
    Some(Position {
        epoch: log.next().epoch,
        seq,
    })
}

#[test]
fn a_position_still_in_history_recovers_exactly_what_follows_it() {
    let mut log = log(3);
    for v in 1..=5 {
        log.record(&(v * 10));
    }
    // Kept: 3, 4, 5.
    let (resumed, missed) = log.since(at(&log, 2));
    assert_eq!(
        (resumed.outcome, resumed.count, resumed.seq),
        (Outcome::Recovered, 3, 5)
    );
    assert_eq!(missed, [(3, &30), (4, &40), (5, &50)]);
    let (resumed, missed) = log.since(at(&log, 5));
    assert_eq!((resumed.outcome, resumed.count), (Outcome::Recovered, 0));
    assert!(missed.is_empty());
}

#[test]
fn a_position_history_no_longer_reaches_or_of_another_epoch_is_reset() {
    let mut log = log(3);
    for v in 1..=5 {
        log.record(&v);
    }
    for since in [
        at(&log, 1),
        at(&log, 6),
        Some(Position {
            epoch: log.next().epoch + 1,
            seq: 4,
        }),
    ] {
        let (resumed, missed) = log.since(since);
        assert_eq!(
            (resumed.outcome, resumed.seq),
            (Outcome::Reset, 5),
            "{since:?}"
        );
        assert!(missed.is_empty());
    }
    assert_eq!(log.since(None).0.outcome, Outcome::Live);
    assert!(log.next().epoch < 1 << 53);
}

#[test]
fn without_history_only_a_subscriber_that_missed_nothing_recovers() {
    let mut log = Log::<u32>::new(History::none());
    log.record(&1);
    log.record(&2);
    assert_eq!(log.since(at(&log, 2)).0.outcome, Outcome::Recovered);
    assert_eq!(log.since(at(&log, 1)).0.outcome, Outcome::Reset);
}

#[cfg(feature = "redis")]
#[test]
fn a_log_following_the_broker_takes_the_next_ignores_what_it_had_and_is_behind_otherwise() {
    let mut log = log(10);
    let at = |epoch, seq| Position { epoch, seq };
    assert_eq!(log.step(at(7, 1)), Step::Behind, "not following yet");
    assert_eq!(log.jump(7, 4), None, "the first jump is silent");
    assert_eq!(log.step(at(7, 5)), Step::Next);
    log.record_at(5, Duration::ZERO, &50);
    for (position, step) in [
        (at(7, 5), Step::Had),
        (at(7, 1), Step::Had),
        (at(7, 6), Step::Next),
        (at(7, 7), Step::Behind),
        (at(8, 6), Step::Behind),
    ] {
        assert_eq!(log.step(position), step, "{position:?}");
    }
    let notice = log.jump(8, 2).expect("a notice once followed");
    assert_eq!(
        (notice.outcome, notice.seq, notice.epoch),
        (Outcome::Reset, 2, 8)
    );
    assert_eq!(log.since(Some(at(7, 4))).0.outcome, Outcome::Reset);

    // A topic never published follows epoch 0; its first epoch skips nothing that
    // anyone was numbered, and the first numbers it skips are told.
    let mut never = Log::<u32>::new(History::last(10));
    assert_eq!(never.jump(0, 0), None);
    assert_eq!(never.jump(9, 0), None, "from nothing to the first numbers");
    let mut never = Log::<u32>::new(History::last(10));
    never.jump(0, 0);
    assert_eq!(never.jump(9, 3).map(|n| (n.seq, n.epoch)), Some((3, 9)));
    assert_eq!(
        log.jump(0, 0).map(|n| n.epoch),
        Some(0),
        "a real epoch lost"
    );
}

#[test]
fn the_position_before_anything_recovers_everything_kept_from_the_first() {
    let mut log = log(3);
    let start = Some(Position { epoch: 0, seq: 0 });
    log.record(&1);
    log.record(&2);
    let (resumed, missed) = log.since(start);
    assert_eq!((resumed.outcome, missed.len()), (Outcome::Recovered, 2));
    for v in 3..=5 {
        log.record(&v);
    }
    assert_eq!(log.since(start).0.outcome, Outcome::Reset, "1 is forgotten");
}

#[test]
fn publications_older_than_the_age_are_forgotten() {
    let mut log = Log::new(History::last(10).max_age(Duration::ZERO));
    log.record(&1u32);
    std::thread::sleep(Duration::from_millis(2));
    assert_eq!(log.since(at(&log, 0)).0.outcome, Outcome::Reset);
}
