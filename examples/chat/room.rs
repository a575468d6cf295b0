//! The room of `examples/chat`: who is in it, under which names, and the one order of events
//! they all see.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;
use typed_ws::prelude::*;
use typed_ws::{AnyConverter, Frame};

use crate::Event;
use crate::common::log;

/// The longest name asked for, in characters.
const MAX_NAME: usize = 24;

struct Member {
    name: String,
    converter: AnyConverter,
    outbox: mpsc::Sender<Frame>,
}

/// Everyone in the room. One lock orders every event, so all participants see one history.
pub struct Room {
    state: Mutex<RoomState>,
}

struct RoomState {
    max_members: usize,
    next_member: u64,
    next_message: u64,
    /// Ordered by arrival, which is the order of the online list.
    members: BTreeMap<u64, Member>,
    names: Names,
}

impl Room {
    /// An empty room that lets in at most `max_members` at once.
    pub fn new(max_members: usize) -> Room {
        Room {
            state: Mutex::new(RoomState {
                max_members,
                next_member: 0,
                next_message: 0,
                members: BTreeMap::new(),
                names: Names::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, RoomState> {
        // A panic elsewhere cannot leave the room half-updated: every change is one call.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a participant under a name no one else in the room has, welcomes it and tells the
    /// others. Gives its id, or `None`, with the room untouched, when the room is full.
    pub fn join(
        &self,
        wanted: &str,
        converter: AnyConverter,
        outbox: mpsc::Sender<Frame>,
    ) -> Option<u64> {
        let mut state = self.lock();
        if state.members.len() >= state.max_members {
            return None;
        }
        let name = state.names.claim(wanted);
        let id = state.next_member;
        state.next_member += 1;
        state.broadcast(Event::Joined { name: name.clone() });
        let online = state
            .members
            .values()
            .map(|m| m.name.clone())
            .chain([name.clone()]);
        let welcome = Event::Welcome {
            name: name.clone(),
            online: online.collect(),
        };
        let member = Member {
            name,
            converter,
            outbox,
        };
        if let Some(frame) = encode(converter, &welcome) {
            // A fresh outbox has room for one event.
            let _ = member.outbox.try_send(frame);
        }
        state.members.insert(id, member);
        Some(id)
    }

    pub fn say(&self, id: u64, text: &str) {
        let text = text.trim();
        let mut state = self.lock();
        let Some(author) = state.members.get(&id).map(|m| m.name.clone()) else {
            return;
        };
        if text.is_empty() {
            return;
        }
        let message_id = state.next_message;
        state.next_message += 1;
        state.broadcast(Event::Message {
            id: message_id,
            author,
            text: text.to_owned(),
        });
    }

    pub fn leave(&self, id: u64) {
        let mut state = self.lock();
        if let Some(name) = state.remove(id) {
            state.broadcast(Event::Left { name });
        }
    }
}

impl RoomState {
    /// Queues `event` for every member. A member whose outbox is full (or whose writer has
    /// ended) leaves the room, and the others hear it: those `left` events wait in a queue
    /// here rather than being broadcast from within, so that however many members drop in a
    /// cascade, the stack stays flat.
    fn broadcast(&mut self, event: Event) {
        let mut events = VecDeque::from([event]);
        while let Some(event) = events.pop_front() {
            for id in self.deliver(&event) {
                if let Some(name) = self.remove(id) {
                    events.push_back(Event::Left { name });
                }
            }
        }
    }

    /// Queues `event` in every outbox, encoding it once per codec in use; gives the members
    /// it could not be queued for.
    fn deliver(&self, event: &Event) -> Vec<u64> {
        let mut encoded: Vec<(AnyConverter, Frame)> = Vec::new();
        let mut gone = Vec::new();
        for (&id, member) in &self.members {
            let frame = match encoded.iter().find(|(c, _)| *c == member.converter) {
                Some((_, frame)) => frame.clone(),
                None => {
                    let Some(frame) = encode(member.converter, event) else {
                        continue;
                    };
                    encoded.push((member.converter, frame.clone()));
                    frame
                }
            };
            if member.outbox.try_send(frame).is_err() {
                gone.push(id);
            }
        }
        gone
    }

    /// Takes a member out of the room and frees its name; gives the name, for the `left`
    /// event, or `None` if it had already gone.
    fn remove(&mut self, id: u64) -> Option<String> {
        let member = self.members.remove(&id)?;
        self.names.release(&member.name);
        Some(member.name)
    }
}

fn encode(converter: AnyConverter, event: &Event) -> Option<Frame> {
    converter
        .serialize(event)
        .inspect_err(|e| log(format!("cannot encode an event: {e}")))
        .ok()
}

/// The names in use. However many ask for one name, a join finds a free one in O(1)
/// amortized: every stem (a name without its ` (n)` suffix) keeps the next suffix to try, so
/// the suffixes given out are not tried again.
#[derive(Default)]
struct Names {
    taken: HashSet<String>,
    stems: HashMap<String, Stem>,
    /// Lookups in `taken`, so that the tests check the search's cost without timing it.
    #[cfg(test)]
    lookups: usize,
}

struct Stem {
    /// Names in use with this stem. The entry goes with the last of them, so that there are
    /// never more stems than members, however many names have come and gone.
    in_use: usize,
    /// The next suffix to try. It only grows while the entry lives, and the entry is made
    /// when no name with this stem is in use: a suffix is passed over only for a name taken
    /// since, each at most once, so that all searches together make at most three lookups
    /// per join.
    next_suffix: u64,
}

impl Names {
    /// Takes a name for someone who asked for `wanted`: `wanted` cut to [`MAX_NAME`]
    /// characters (`guest` when blank) if it is free, else `NAME (n)` with the first `n`
    /// from its stem's counter on that is free.
    fn claim(&mut self, wanted: &str) -> String {
        let wanted: String = wanted.trim().chars().take(MAX_NAME).collect();
        let wanted = if wanted.is_empty() {
            "guest".to_owned()
        } else {
            wanted
        };
        let name = if self.is_free(&wanted) {
            wanted
        } else {
            let mut n = self.stems.get(&wanted).map_or(2, |stem| stem.next_suffix);
            let name = loop {
                let candidate = format!("{wanted} ({n})");
                n += 1;
                if self.is_free(&candidate) {
                    break candidate;
                }
            };
            // The name's stem is `wanted`: the entry counted below.
            self.stems
                .entry(wanted)
                .or_insert_with(Stem::new)
                .next_suffix = n;
            name
        };
        let stem = stem_of(&name).to_owned();
        self.stems.entry(stem).or_insert_with(Stem::new).in_use += 1;
        self.taken.insert(name.clone());
        name
    }

    fn is_free(&mut self, name: &str) -> bool {
        #[cfg(test)]
        {
            self.lookups += 1;
        }
        !self.taken.contains(name)
    }

    fn release(&mut self, name: &str) {
        self.taken.remove(name);
        let stem = stem_of(name);
        if let Some(entry) = self.stems.get_mut(stem) {
            entry.in_use -= 1;
            if entry.in_use == 0 {
                self.stems.remove(stem);
            }
        }
    }
}

impl Stem {
    fn new() -> Stem {
        Stem {
            in_use: 0,
            next_suffix: 2,
        }
    }
}

/// `name` without a ` (n)` suffix as [`Names::claim`] writes them, or all of it. A name asked
/// for in that form counts under its stem too, so that its holder cannot make the stem's
/// search pass over it again and again.
fn stem_of(name: &str) -> &str {
    let split = name
        .strip_suffix(')')
        .and_then(|rest| rest.rsplit_once(" ("));
    match split {
        Some((stem, n)) if n.parse::<u64>().is_ok_and(|v| v >= 2 && v.to_string() == n) => stem,
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use typed_ws::JsonConverter;

    use super::*;

    fn json() -> AnyConverter {
        AnyConverter::from(JsonConverter)
    }

    /// What the room queued in `outbox` so far, decoded.
    fn events(outbox: &mut mpsc::Receiver<Frame>) -> Vec<Value> {
        let mut events = Vec::new();
        while let Ok(frame) = outbox.try_recv() {
            events.push(json().deserialize(&frame).expect("an event in JSON"));
        }
        events
    }

    fn welcome(name: &str, online: &[&str]) -> Value {
        json!({"type": "welcome", "name": name, "online": online})
    }

    fn joined(name: &str) -> Value {
        json!({"type": "joined", "name": name})
    }

    fn left(name: &str) -> Value {
        json!({"type": "left", "name": name})
    }

    fn message(id: u64, author: &str, text: &str) -> Value {
        json!({"type": "message", "id": id, "author": author, "text": text})
    }

    #[test]
    fn a_crowd_asking_for_one_name_gets_distinct_names_for_a_few_lookups_each() {
        let mut names = Names::default();
        let mut given = HashSet::new();
        for _ in 0..5_000 {
            assert!(given.insert(names.claim("bob")), "a name given twice");
        }
        assert!(given.contains("bob") && given.contains("bob (5000)"));
        // Searching from `bob (2)` each time, as the room once did, takes 5,001 lookups here.
        let before = names.lookups;
        assert_eq!(names.claim(" bob "), "bob (5001)");
        assert_eq!(names.lookups - before, 2, "`bob`, then `bob (5001)`");
        assert!(names.lookups <= 3 * 5_001, "{} lookups", names.lookups);
    }

    #[test]
    fn names_held_in_the_suffix_form_are_passed_over_once() {
        let mut names = Names::default();
        for n in 2..=1_001 {
            assert_eq!(names.claim(&format!("bob ({n})")), format!("bob ({n})"));
        }
        assert_eq!(names.claim("bob"), "bob");
        assert_eq!(names.claim("bob"), "bob (1002)");
        // With the 1,000 held, `bob` and the last `bob (n)` leave and come back, again and
        // again: a search that forgot its place once no `bob` was left would pass over all
        // 1,000 every round.
        let before = names.lookups;
        for round in 0..1_000 {
            names.release("bob");
            names.release(&format!("bob ({})", 1_002 + round));
            assert_eq!(names.claim("bob"), "bob");
            assert_eq!(names.claim("bob"), format!("bob ({})", 1_003 + round));
        }
        assert_eq!(names.lookups - before, 3 * 1_000);
    }

    #[test]
    fn names_are_cut_and_defaulted_and_leave_nothing_behind() {
        let mut names = Names::default();
        let long = "é".repeat(30);
        let claimed = [
            ("", "guest"),
            ("   ", "guest (2)"),
            (&long, &long[..2 * MAX_NAME]),
            (&long, &format!("{} (2)", &long[..2 * MAX_NAME])),
            ("bob (2)", "bob (2)"),
            ("bob", "bob"),
            ("bob", "bob (3)"),
            ("bob (3)", "bob (3) (2)"),
            ("bob (02)", "bob (02)"),
        ];
        for (wanted, given) in claimed {
            assert_eq!(names.claim(wanted), given, "for {wanted:?}");
        }
        for (_, given) in claimed {
            names.release(given);
        }
        assert!(names.taken.is_empty() && names.stems.is_empty());
        assert_eq!(names.claim("bob"), "bob");
        assert_eq!(names.claim("bob"), "bob (2)", "the count starts afresh");
    }

    #[test]
    fn a_full_room_refuses_a_join_and_leaves_its_members_be() {
        let room = Room::new(2);
        let (to_alice, mut alice) = mpsc::channel(16);
        let (to_bob, mut bob) = mpsc::channel(16);
        let alice_id = room
            .join("alice", json(), to_alice)
            .expect("room for alice");
        let bob_id = room.join("bob", json(), to_bob).expect("room for bob");
        let (to_carol, mut carol) = mpsc::channel(16);
        assert_eq!(room.join("carol", json(), to_carol), None);
        assert_eq!(events(&mut carol), [] as [Value; 0]);

        room.say(alice_id, "still here");
        assert_eq!(
            events(&mut alice),
            [
                welcome("alice", &["alice"]),
                joined("bob"),
                message(0, "alice", "still here")
            ]
        );
        assert_eq!(
            events(&mut bob),
            [
                welcome("bob", &["alice", "bob"]),
                message(0, "alice", "still here")
            ]
        );

        room.leave(bob_id);
        let (to_carol, mut carol) = mpsc::channel(16);
        assert!(room.join("carol", json(), to_carol).is_some(), "room again");
        assert_eq!(events(&mut carol), [welcome("carol", &["alice", "carol"])]);
        assert_eq!(events(&mut alice), [left("bob"), joined("carol")]);
    }

    /// Members that drop out together, each `left` event finding the next one full. A removal
    /// that recursed once per member needed some 400 bytes a level (debug build): 500 levels
    /// overflow the 64 KiB stack the room runs on here, of which a flat one needs under half.
    const CASCADE: usize = 500;

    #[test]
    fn a_cascade_of_slow_members_leaves_in_order_on_a_flat_stack() {
        let cascade = std::thread::Builder::new()
            .stack_size(64 << 10)
            .spawn(slow_members_drop_out_together)
            .expect("a thread");
        cascade.join().expect("the cascade's thread");
    }

    fn slow_members_drop_out_together() {
        let room = Room::new(CASCADE + 1);
        let (to_observer, mut observer) = mpsc::channel(2 * CASCADE + 2);
        let observer_id = room.join("observer", json(), to_observer).expect("room");
        // Each outbox is full once everyone has joined: the welcome and every later join.
        let mut slow = Vec::new();
        for i in 0..CASCADE {
            let (outbox, queued) = mpsc::channel(CASCADE - i);
            room.join("slow", json(), outbox).expect("room");
            slow.push(queued);
        }
        room.say(observer_id, "who is still here?");

        let names: Vec<String> = (0..CASCADE)
            .map(|i| match i {
                0 => "slow".to_owned(),
                i => format!("slow ({})", i + 1),
            })
            .collect();
        let seen = events(&mut observer);
        let (joins, rest) = seen.split_at(1 + CASCADE);
        assert_eq!(joins[0], welcome("observer", &["observer"]));
        let each = |event: fn(&str) -> Value| names.iter().map(|n| event(n)).collect::<Vec<_>>();
        assert_eq!(joins[1..], each(joined));
        assert_eq!(rest[0], message(0, "observer", "who is still here?"));
        assert_eq!(rest[1..], each(left));
        for (i, queued) in slow.iter_mut().enumerate() {
            assert_eq!(events(queued).len(), CASCADE - i, "member {i}");
            assert!(queued.is_closed(), "member {i} is let go");
        }

        let (outbox, mut queued) = mpsc::channel(16);
        room.join("slow", json(), outbox).expect("room");
        assert_eq!(
            events(&mut queued),
            [welcome("slow", &["observer", "slow"])]
        );
    }
}
