#!/usr/bin/env python3
"""Drives examples/chat in headless Chromium over the DevTools protocol, with nothing but
Python's standard library, and prints what the pages showed as one JSON object on stdout.

    python3 tests/peers/chromium.py --chat target/debug/examples/chat --screenshots DIR

It starts the chat server (port 0), then two pages: alice speaks MessagePack, bob JSON. Both
send messages; alice's network drops (a proxy between her page and the server cuts her
connection and refuses new ones) while bob speaks, and her page must show what she missed once
it is back; bob's page closes, the server restarts on the same port and alice's page must
reconnect and be heard. Each step waits for what the pages show, with a deadline; on a missed
deadline it prints what they showed last to stderr and exits 1. The caller (tests/interop/browser.rs)
asserts on the report.

Chromium runs with --remote-debugging-pipe: commands go in on its fd 3 and answers come out on
its fd 4, each a JSON text ending in a NUL byte.
"""

import argparse
import base64
import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

DEADLINE = 20.0


class Failed(Exception):
    pass


class Browser:
    def __init__(self, executable, profile):
        commands_read, commands_write = os.pipe()
        answers_read, answers_write = os.pipe()
        # Above 2 so that moving them to 3 and 4 in the child never overwrites one with the
        # other; dup2 also clears close-on-exec on the copies the child keeps.
        child_in = fcntl.fcntl(commands_read, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(answers_write, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(commands_read)
        os.close(answers_write)

        def give_fds():
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        self.process = subprocess.Popen(
            [
                executable,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows",
                "--window-size=900,600",
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
            preexec_fn=give_fds,
        )
        os.close(child_in)
        os.close(child_out)
        self.commands = commands_write
        self.answers = answers_read
        self.pending = b""
        self.next_id = 0

    def call(self, method, session=None, **params):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        while True:
            answer = self.read()
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise Failed(f"{method}: {answer['error']}")
                return answer["result"]

    def read(self):
        deadline = time.monotonic() + DEADLINE
        while b"\0" not in self.pending:
            if time.monotonic() > deadline:
                raise Failed("Chromium did not answer")
            chunk = os.read(self.answers, 1 << 16)
            if not chunk:
                raise Failed("Chromium closed the DevTools pipe")
            self.pending += chunk
        message, self.pending = self.pending.split(b"\0", 1)
        return json.loads(message)

    def open(self, url):
        target = self.call("Target.createTarget", url=url)["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        return Page(self, target, session)

    def close(self):
        try:
            self.call("Browser.close")
        except Failed:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# What a page shows, read from its DOM: what its user sees.
SNAPSHOT = """JSON.stringify({
  me: document.getElementById("me").textContent,
  status: document.getElementById("status").dataset.state,
  protocol: document.getElementById("protocol").textContent,
  extensions: document.getElementById("extensions").textContent,
  online: [...document.querySelectorAll("#online li")].map((li) => li.textContent),
  log: [...document.querySelectorAll("#log li")].map((li) => li.textContent),
  messages: [...document.querySelectorAll("#log li.message")].map((li) => li.textContent),
})"""


class Page:
    def __init__(self, browser, target, session):
        self.browser = browser
        self.target = target
        self.session = session

    def evaluate(self, expression):
        result = self.browser.call(
            "Runtime.evaluate", self.session, expression=expression, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise Failed(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def snapshot(self):
        try:
            return json.loads(self.evaluate(SNAPSHOT))
        except (Failed, TypeError, json.JSONDecodeError):
            # The page is still loading.
            return None

    def wait(self, what, condition):
        deadline = time.monotonic() + DEADLINE
        while True:
            shown = self.snapshot()
            if shown is not None and condition(shown):
                return shown
            if time.monotonic() > deadline:
                raise Failed(f"waited {DEADLINE} s for {what}; the page shows {shown}")
            time.sleep(0.05)

    def say(self, text):
        # Through the form, as a user would: the page's submit handler sends it.
        self.evaluate(
            f'document.getElementById("text").value = {json.dumps(text)};'
            'document.getElementById("compose").requestSubmit();'
        )

    def screenshot(self, path):
        data = self.browser.call("Page.captureScreenshot", self.session, format="png")["data"]
        with open(path, "wb") as file:
            file.write(base64.b64decode(data))

    def close(self):
        self.browser.call("Target.closeTarget", targetId=self.target)


class Proxy:
    """A TCP proxy on a free loopback port to `port`, whose network can be cut: `down()`
    resets every connection through it and refuses new ones until `up()`."""

    def __init__(self, port):
        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = "http://127.0.0.1:%d/" % self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.open = []
        self.cut = False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                if self.cut:
                    reset(client)
                    continue
                try:
                    server = socket.create_connection(self.target)
                except OSError:
                    reset(client)
                    continue
                self.open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    @staticmethod
    def pump(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def down(self):
        with self.lock:
            self.cut = True
            for end in self.open:
                reset(end)
            self.open = []

    def up(self):
        with self.lock:
            self.cut = False


def reset(end):
    """Ends a connection at once, without the WebSocket closing handshake, as a network that
    drops does. shutdown() also wakes the thread blocked reading it."""
    try:
        end.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    end.close()


class Chat:
    """The example's server, in a child process."""

    def __init__(self, executable, addr):
        self.process = subprocess.Popen(
            [executable, "--addr", addr], stdout=subprocess.PIPE, text=True
        )
        line = self.process.stdout.readline().strip()
        prefix = "listening on "
        if not line.startswith(prefix):
            self.stop()
            raise Failed(f"the chat server printed {line!r} instead of {prefix}http://ADDR/")
        self.url = line[len(prefix):]

    def stop(self):
        self.process.kill()
        self.process.wait()


def run(args, browser):
    report = {}
    chat = Chat(args.chat, "127.0.0.1:0")
    try:
        port = int(chat.url.split(":")[-1].strip("/"))
        proxy = Proxy(port)
        alice = browser.open(proxy.url + "?name=alice&codec=msgpack")
        shown = alice.wait("alice connected", lambda s: s["status"] == "connected" and s["me"])
        report["alice_joined"] = shown
        bob = browser.open(chat.url + "?name=bob&codec=json")
        report["bob_joined"] = bob.wait(
            "bob connected, alice online", lambda s: s["status"] == "connected" and s["me"]
        )
        report["alice_sees_bob"] = alice.wait("bob online", lambda s: "bob" in s["online"])

        sent = {
            "alice": ["hello from alice", "second from alice", "third from alice"],
            "bob": ["hi alice, bob here", "ünïcödé ✓ from bob", "third from bob"],
        }
        for a, b in zip(sent["alice"], sent["bob"]):
            alice.say(a)
            bob.say(b)
        report["sent"] = sent
        everything = sum(len(texts) for texts in sent.values())
        report["alice_after_messages"] = alice.wait(
            "every message", lambda s: len(s["messages"]) == everything
        )
        report["bob_after_messages"] = bob.wait(
            "every message", lambda s: len(s["messages"]) == everything
        )
        alice.screenshot(os.path.join(args.screenshots, "chat-alice.png"))
        bob.screenshot(os.path.join(args.screenshots, "chat-bob.png"))

        # Alice's network drops while bob speaks; once it is back, her page shows what she
        # missed.
        proxy.down()
        report["alice_cut"] = alice.wait(
            "alice's page noticing", lambda s: s["status"] == "reconnecting"
        )
        missed = ["while alice was away", "still away, alice?"]
        for text in missed:
            bob.say(text)
        bob.wait("bob's messages", lambda s: s["messages"][-2:] == ["bob: " + t for t in missed])
        proxy.up()
        report["missed"] = missed
        report["alice_back"] = alice.wait(
            "alice's page showing what she missed",
            lambda s: s["status"] == "connected"
            and s["messages"][-2:] == ["bob: " + t for t in missed],
        )

        bob.close()
        report["alice_after_bob_left"] = alice.wait(
            "bob left", lambda s: s["log"][-1] == "bob left"
        )

        # The server restarts on the same port; the page reconnects on its own.
        chat.stop()
        report["alice_server_gone"] = alice.wait(
            "the page noticing", lambda s: s["status"] == "reconnecting"
        )
        chat = Chat(args.chat, f"127.0.0.1:{port}")
        alice.wait("alice reconnected", lambda s: s["status"] == "connected")
        alice.say("back after the restart")
        report["alice_after_restart"] = alice.wait(
            "the message after the restart",
            lambda s: s["messages"][-1:] == ["alice: back after the restart"],
        )
        alice.screenshot(os.path.join(args.screenshots, "chat-alice-after-restart.png"))
    finally:
        chat.stop()
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chat", required=True, help="the examples/chat binary")
    parser.add_argument("--screenshots", required=True, help="where the PNGs go")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args()
    os.makedirs(args.screenshots, exist_ok=True)

    profile = tempfile.mkdtemp(prefix="typed-ws-chromium-")
    browser = Browser(args.chromium, profile)
    try:
        report = run(args, browser)
    except Failed as failure:
        print(f"chromium.py: {failure}", file=sys.stderr)
        sys.exit(1)
    finally:
        browser.close()
        shutil.rmtree(profile, ignore_errors=True)
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
