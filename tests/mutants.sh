#!/usr/bin/env bash
# CI's share of the mutation testing (tests/mutants.md has the whole cargo-mutants run): the
# one-line breaks of the library that issue 12 named, and those that cargo mutants found
# surviving before a test was written for them. Each break is applied alone; the library and
# the named test must still build, and the test must then fail. Every file is restored.
#
#   bash tests/mutants.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

survived=0

# break FILE FROM TO TEST NAME: FROM must occur exactly once in FILE. TEST `lib` names the
# library's unit tests.
break_and_test() {
    local file=$1 from=$2 to=$3 test=$4 name=$5
    local target=(--test "$test")
    if [ "$test" = lib ]; then
        target=(--lib)
    fi
    local backup
    backup="$(mktemp)"
    cp "$file" "$backup"
    # shellcheck disable=SC2064
    trap "cp '$backup' '$file'" EXIT
    python3 - "$file" "$from" "$to" <<'EOF'
import sys
path, old, new = sys.argv[1:]
text = open(path).read()
if text.count(old) != 1:
    sys.exit(f"{path}: expected the text to break exactly once, found it {text.count(old)} times: {old!r}")
open(path, "w").write(text.replace(old, new))
EOF
    echo "==> $file: $from  ->  $to"
    local log
    log="$(mktemp)"
    if ! cargo test --quiet --all-features "${target[@]}" --no-run >"$log" 2>&1; then
        cat "$log"
        echo "the break does not build: fix the break, not the library"
        exit 1
    fi
    rm -f "$log"
    if cargo test --quiet --all-features "${target[@]}" -- --exact "$name" >/dev/null 2>&1; then
        echo "SURVIVED: $test::$name passes with the break"
        survived=$((survived + 1))
    else
        echo "killed by $test::$name"
    fi
    cp "$backup" "$file"
    rm -f "$backup"
    trap - EXIT
}

break_and_test src/session/link/receive.rs \
    'st.pending.push_back(item);' 'drop(item);' \
    session keepalive::data_read_ahead_while_nobody_receives_comes_out_of_later_receives_in_order
break_and_test src/session/link/receive.rs \
    'if st.pending.len() >= MAX_PENDING_FRAMES
                ||' 'if st.pending.len() >= MAX_PENDING_FRAMES
                &&' \
    session keepalive::read_ahead_keeps_at_most_1024_frames
break_and_test src/config.rs \
    'pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 << 20;' \
    'pub const DEFAULT_MAX_MESSAGE_SIZE: usize = usize::MAX;' \
    session limits::default_message_limit_takes_64_mib_and_refuses_one_byte_more_with_1009
break_and_test src/converter/mod.rs \
    'const MAX_NESTING: usize = 128;' 'const MAX_NESTING: usize = 512;' \
    hostile codecs::the_deepest_nesting_decodes_and_one_level_more_is_refused_in_every_codec
break_and_test src/session/watchdog.rs \
    'Some(link) if !link.has_ended() =>' 'Some(link) if true =>' \
    session keepalive::the_keepalive_task_ends_with_its_session_while_the_session_is_held
break_and_test src/session/link/mod.rs \
    'if trace::ENABLED && self.close_reason.get().is_none()' \
    'if trace::ENABLED || self.close_reason.get().is_none()' \
    integrations tracing::a_clean_close_gives_session_spans_and_an_end_event_with_1000
break_and_test src/session/link/mod.rs \
    '// The watchdog may be asleep until its next tick; it has nothing left to watch.
        self.watchdog.notify_one();' \
    '// The watchdog may be asleep until its next tick; it has nothing left to watch.' \
    session keepalive::dropping_a_session_ends_its_keepalive_task_at_once
break_and_test src/session/link/receive.rs \
    'st.pending_bytes -= frame.payload().len();' 'st.pending_bytes += frame.payload().len();' \
    session keepalive::a_drained_read_ahead_buffer_no_longer_keeps_a_silent_peer_alive
break_and_test src/session/link/receive.rs \
    'st.pending_bytes -= frame.payload().len();' 'st.pending_bytes /= frame.payload().len();' \
    session keepalive::read_ahead_refills_only_what_the_user_took
break_and_test src/session/link/send.rs \
    'Some(size) if text.len() > size =>' 'Some(size) if text.len() < size =>' \
    session limits::fragment_size_splits_outgoing_messages_on_the_wire
break_and_test src/session/link/send.rs \
    'if data.len() > 125 =>' 'if data.len() >= 125 =>' \
    session frames::invalid_outgoing_frames_are_refused_and_the_session_stays_usable
break_and_test src/config.rs \
    'pub const DEFAULT_READ_BUFFER_SIZE: usize = 4 << 10;' \
    'pub const DEFAULT_READ_BUFFER_SIZE: usize = 4 >> 10;' \
    docs the_config_defaults_table_shows_the_constants
break_and_test src/config.rs \
    'self.ping_interval.is_some() || self.timeout.is_some() || self.send_timeout.is_some()' \
    'true' \
    session keepalive::a_session_with_nothing_to_watch_runs_no_keepalive_task
break_and_test src/config.rs \
    'self.ping_interval.is_some() || self.timeout.is_some()' \
    'self.ping_interval.is_some() && self.timeout.is_some()' \
    session keepalive::pings_alone_are_sent

# Write coalescing (issue 13): a send that never puts its flush off, a receive that does not
# flush what was put off before it waits, received messages that do not count against
# tokio's task budget, and a stream that never counts arriving messages.
break_and_test src/session/link/send.rs \
    'if st.pending.is_empty() && arrivals.count() <= st.taken {' 'if true {' \
    session coalescing::replies_to_a_pipelined_burst_go_out_together_complete_and_in_order
break_and_test src/session/link/receive.rs \
    'if st.owed_since.is_some() {' 'if false {' \
    session coalescing::the_receive_that_would_wait_flushes_the_replies_put_off_in_one_write
break_and_test src/session/link/receive.rs \
    'coop.made_progress();
        let item = self.on_read(st, item);' 'let item = self.on_read(st, item);' \
    session coalescing::a_session_working_through_a_long_burst_lets_other_sessions_in
break_and_test src/wire/arrivals.rs \
    'self.counting.store(true, Ordering::Relaxed);' '' \
    session coalescing::replies_to_a_pipelined_burst_go_out_together_complete_and_in_order
# The watchdog's flush delay, shortened to nothing (cargo mutants: both survived).
break_and_test src/session/link/send.rs \
    'let due = since + FLUSH_DELAY;' 'let due = since - FLUSH_DELAY;' \
    session coalescing::the_watchdog_flushes_a_reply_put_off_at_the_flush_delay_and_not_before
break_and_test src/session/link/send.rs \
    'if Instant::now() < due {' 'if Instant::now() == due {' \
    session coalescing::the_watchdog_flushes_a_reply_put_off_at_the_flush_delay_and_not_before
# Survivors of the whole run over link.rs and read_buffer.rs (now wire/elastic.rs): the session's `Sink::poll_ready`
# that never waits for room, a waker slot that keeps the first task's waker, a head handed
# over in pieces whose rest is dropped, a shutdown that never reaches the socket, a send
# deadline that has always passed.
break_and_test src/session/link/send.rs \
    'let ready = Pin::new(&mut *st.ws).poll_ready(cx);
        Poll::Ready(' 'let ready = Poll::Ready(Ok(()));
        Poll::Ready(' \
    hostile slow_readers::feeding_the_session_as_a_sink_to_a_peer_that_never_reads_waits_after_a_bounded_amount
break_and_test src/session/link/transport.rs \
    'Some(known) if known.will_wake(waker) => {}' 'Some(_) => {}' \
    session keepalive::the_timeout_wakes_a_receive_that_moved_to_another_task
break_and_test src/wire/elastic.rs \
    'if self.buf.is_empty() && !self.bulk {' 'if self.buf.is_empty() || !self.bulk {' \
    lib wire::elastic::tests::a_head_larger_than_a_read_is_handed_over_whole_leaving_headroom_in_large_reads
break_and_test src/wire/elastic.rs \
    'Pin::new(&mut self.get_mut().io).poll_shutdown(cx)' 'Poll::Ready(Ok(()))' \
    lib wire::elastic::tests::flush_and_shutdown_reach_the_stream_underneath
break_and_test src/session/link/deadlines.rs \
    'Some(st.blocked_since? + self.settings.send_timeout?)' 'Some(st.blocked_since? - self.settings.send_timeout?)' \
    hostile hardening::by_default_a_peer_that_does_not_read_is_dropped_at_the_send_deadline
# A raw session's span would name no converter.
break_and_test src/converter/mod.rs \
    '"none"' '""' \
    integrations tracing::a_raw_session_records_that_it_has_no_converter
# Survivors of src/session/mod.rs: a Debug that prints nothing, a flush that writes nothing, a
# feed that queues nothing.
break_and_test src/session/mod.rs \
    'let mut debug = f.debug_struct("Session");' 'let mut debug = f.debug_struct("Session");
        if true {
            return Ok(());
        }' \
    session halves::a_session_and_its_halves_show_their_state_in_debug_output
break_and_test src/session/mod.rs \
    '        self.tx.flush().await' '        Ok(())' \
    session halves::fed_messages_go_out_with_flush_from_a_session_and_from_its_sending_half
break_and_test src/session/halves.rs \
    '        let frame = self.converter.serialize(value)?;
        self.feed(frame).await' '        Ok(())' \
    session halves::fed_messages_go_out_with_flush_from_a_session_and_from_its_sending_half
# Survivors of src/server.rs: a server's Debug and a failure report's text that print nothing.
break_and_test src/server.rs \
    'f.debug_struct("Server")' 'return Ok(());
        f.debug_struct("Server")' \
    hostile hardening::a_failed_session_is_reported_with_the_peer_and_a_short_reason
break_and_test src/server.rs \
    'write!(f, "{}: {stage}: {}", self.peer, Chain(&self.error))' 'Ok(())' \
    hostile hardening::a_failed_session_is_reported_with_the_peer_and_a_short_reason

# permessage-deflate: the inflated size limit, the marker put back, context takeover, the
# empty message, a negotiation rule.
break_and_test src/wire/deflate/inflate/mod.rs \
    'if message.size > self.limit {' 'if message.size > usize::MAX - 1 {' \
    session compression::an_inflation_bomb_is_refused_with_1009_while_inflating
break_and_test src/wire/deflate/inflate/mod.rs \
    'while !message.stream_ended && message.tail_fed < TAIL.len() {' 'while false {' \
    lib wire::deflate::inflate::tests::compressed_messages_come_out_as_plain_frames_however_the_input_is_split
break_and_test src/wire/deflate/inflate/mod.rs \
    'if self.output.agreed.receive_no_context_takeover || message.stream_ended {' 'if true {' \
    lib wire::deflate::inflate::tests::context_is_kept_between_messages_unless_the_peer_takes_none_over
break_and_test src/wire/deflate/compress.rs \
    'out.push(0x00);' '' \
    lib wire::deflate::compress::tests::messages_inflate_back_in_order_with_the_context_kept_or_dropped_after_each
break_and_test src/wire/frames.rs \
    'frame.header_mut().rsv1 = compressed && from == 0;' 'frame.header_mut().rsv1 = compressed;' \
    session compression::both_ends_compress_every_size_and_kind_whole_and_fragmented_with_and_without_context_takeover

# Hardening 2: the axum path's header deadline, the budget for unfinished messages (plain
# and inflated), and large messages charged to the task's budget.
break_and_test src/axum/serve.rs \
    '.header_read_timeout(settings.handshake_timeout)' '.header_read_timeout(None)' \
    integrations axum_serve::a_silent_connection_is_dropped_at_the_handshake_deadline
break_and_test src/wire/arrivals.rs \
    'share.take(held.saturating_sub(share.held()))?;' '' \
    session budget::parked_fragments_hold_the_budget_and_the_session_past_it_gets_1013
break_and_test src/wire/deflate/inflate/mod.rs \
    '.take(message.size.saturating_sub(self.share.held()))' '.take(0)' \
    session budget::a_compressed_fragment_holds_what_it_inflates_to
break_and_test src/session/link/receive.rs \
    'for _ in 0..frame.payload().len() / BYTES_PER_UNIT {' 'for _ in 0..0 {' \
    session compression::messages_that_inflate_to_megabytes_are_read_one_per_turn_of_the_task

# Graceful shutdown: the close sent as soon as the shutdown begins, ahead of the replies that
# handlers are still working on; and hyper's graceful shutdown of HTTP connections left out.
break_and_test src/session/link/shutdown.rs \
    'st.shutdown = Some(ShutdownClose::Due(reason));
        if let' 'st.shutdown = Some(ShutdownClose::Due(reason));
        self.send_shutdown_close(&mut st);
        if let' \
    session shutdown::serve_closes_a_busy_crowd_with_1001_after_answering_what_it_received
break_and_test src/axum/serve.rs \
    'connection.as_mut().graceful_shutdown();' '' \
    session shutdown::axum_serve_does_the_same_and_closes_idle_http_connections

# History on the broker (Redis): what a node had already, ignored; the past read before a value
# that arrives ahead; a node's own numbered publications, delivered when they come back; a hole
# past what the stream keeps, told; the stream trimmed to the history's count.
break_and_test src/topics/history/mod.rs \
    '} else if at.seq <= self.last {' '} else if at.seq < self.last {' \
    lib topics::history::tests::a_log_following_the_broker_takes_the_next_ignores_what_it_had_and_is_behind_otherwise
break_and_test src/topics/remote.rs \
    'if step == Some(Step::Behind) && !caught_up {' 'if step == Some(Step::Behind) && false {' \
    integrations bus_history::a_node_that_hears_a_topic_first_takes_its_past_from_the_stream_and_serves_a_resume_from_it
break_and_test src/bus/route.rs \
    'if own && envelope.at.is_none() {' 'if own {' \
    integrations bus_history::positions_are_the_brokers_so_a_subscriber_cut_at_500_resumes_on_any_node_and_gets_1_to_1000_once
break_and_test src/topics/topic/heard.rs \
    'if let Some(notice) = state.log.jump(at.epoch, at.seq - 1) {' 'if let Some(notice) = state.log.jump(at.epoch, at.seq - 1).filter(|_| false) {' \
    integrations bus_history::a_node_cut_for_longer_than_the_stream_keeps_tells_its_subscribers_of_the_hole
break_and_test src/bus/streams.rs \
    "'MAXLEN', ARGV[4], " '' \
    integrations bus_history::a_position_older_than_the_stream_keeps_is_reset_and_one_it_keeps_is_recovered

if [ "$survived" -ne 0 ]; then
    echo "$survived mutant(s) survived"
    exit 1
fi
echo "every mutant was killed"
