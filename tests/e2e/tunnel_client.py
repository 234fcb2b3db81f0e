"""CONNECT tunnels through a session's proxy; stdlib only. Runs inside a sandbox (through the forwarder on
127.0.0.1:3128, with the token from /run/sandgate/token) or on the host (straight to the session's unix
socket, with "unix" and "token" given).

stdin: JSON {"mode": "many" | "rate" | "half_close" | "download" | "quiet", "target": "host:port", ...};
stdout: JSON, one object, described with each mode.
"""

import base64
import hashlib
import json
import os
import select
import socket
import sys
import time

config = json.load(sys.stdin)
if config.get("token"):
    token = config["token"]
else:
    with open("/run/sandgate/token") as f:
        token = f.read().strip()
CREDENTIALS = base64.b64encode(f"sandgate:{token}".encode()).decode()


def connect(target=None):
    """A socket to the session proxy, with the CONNECT request sent (its answer not yet read)."""
    if config.get("unix"):
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(30)
        sock.connect(config["unix"])
    else:
        sock = socket.create_connection(("127.0.0.1", 3128), timeout=30)
    target = target or config["target"]
    request = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: Basic {CREDENTIALS}\r\n\r\n"
    sock.sendall(request.encode())
    return sock


def read_head(sock):
    """The status of the CONNECT answer; the tunnel's bytes follow it."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            return None
        head += chunk
    return int(head.split()[1])


def recv_until_eof(sock):
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        chunks.append(b"<reset>")
    return b"".join(chunks)


def many():
    """{"count", "batch"?, "targets"?}: opens count tunnels from this one thread, batch at a time (default
    all: every CONNECT of a batch is sent before any answer is read), to the targets in turn (default the
    target), then echoes a distinct message through each while all are open.
    -> {"opened", "echoed", "errors", "open_seconds"} (until every answer was read)"""
    start = time.monotonic()
    socks, errors, opened, echoed = [], [], 0, 0
    batch = config.get("batch") or config["count"]
    targets = config.get("targets") or [config["target"]]
    for first in range(0, config["count"], batch):
        new = []
        for i in range(first, min(first + batch, config["count"])):
            try:
                new.append(connect(targets[i % len(targets)]))
            except OSError as exc:
                errors.append(f"connect: {exc}")
        for sock in new:
            try:
                status = read_head(sock)
                opened += status == 200
                if status != 200:
                    errors.append(f"status {status}")
            except OSError as exc:
                errors.append(f"head: {exc}")
        socks += new
        print(f"{len(socks)} tunnels", file=sys.stderr, flush=True)  # output: a long run is not a quiet one
    open_seconds = time.monotonic() - start
    for i, sock in enumerate(socks):
        message = f"tunnel {i} says hello\n".encode() * 8
        try:
            sock.sendall(message)
            got = b""
            while len(got) < len(message) and (chunk := sock.recv(len(message) - len(got))):
                got += chunk
            echoed += got == message
        except OSError as exc:
            errors.append(f"echo: {exc}")
    for sock in socks:
        sock.close()
    return {"opened": opened, "echoed": echoed, "errors": errors[:5], "open_seconds": open_seconds}


def rate():
    """{"seconds"}: new tunnels one after another for that long: connect, CONNECT, answer, one byte echoed,
    close. -> {"tunnels", "per_second", "p50_ms", "p99_ms", "failures"}"""
    times, failures, end = [], 0, time.monotonic() + config["seconds"]
    while time.monotonic() < end:
        start = time.monotonic()
        try:
            with connect() as sock:
                ok = read_head(sock) == 200
                sock.sendall(b"x")
                ok = ok and sock.recv(1) == b"x"
        except OSError:
            ok = False
        failures += not ok
        times.append(time.monotonic() - start)
    times.sort()
    return {"tunnels": len(times), "per_second": len(times) / config["seconds"], "failures": failures,
            "p50_ms": times[len(times) // 2] * 1e3, "p99_ms": times[int(len(times) * 0.99)] * 1e3}  # fmt: skip


def half_close():
    """{"size"}: sends size bytes, shuts the write side, reads to EOF.
    -> {"status", "reply", "expected"} (the digest server's reply to those bytes)"""
    payload = os.urandom(config["size"])
    with connect() as sock:
        status = read_head(sock)
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        reply = recv_until_eof(sock)
    expected = f"{len(payload)} {hashlib.sha256(payload).hexdigest()}\n"
    return {"status": status, "reply": reply.decode(errors="replace"), "expected": expected}


def download():
    """{"size"}: asks the download server for size bytes, which it sends and then shuts its write side.
    -> {"status", "received", "intact", "reset", "seconds"} (from the request to EOF)"""
    with connect() as sock:
        status = read_head(sock)
        start = time.monotonic()
        sock.sendall(f"{config['size']}\n".encode())
        data = recv_until_eof(sock)
        seconds = time.monotonic() - start
    expected = b"".join(download_block(i) for i in range(-(-config["size"] // 4096)))[: config["size"]]
    return {"status": status, "received": len(data), "intact": data == expected, "reset": data.endswith(b"<reset>"),
            "seconds": seconds}  # fmt: skip


def download_block(i):
    """4 KiB of the download server's stream (tests/support/stream_servers.py makes the same)."""
    return hashlib.sha256(str(i).encode()).digest() * 128


def quiet():
    """{"max_seconds", "after_close_seconds"}: tunnel A echoes once then stays silent; tunnel B echoes
    once a second. Runs until A is closed and B has gone on for after_close_seconds more (or max_seconds).
    -> {"a_closed_after", "b_started", "b_last_echo", "b_echoes", "b_failures"} (seconds from the start)"""
    start = time.monotonic()
    a, b = connect(), connect()
    statuses = [read_head(a), read_head(b)]
    a.sendall(b"a")
    a_ok = a.recv(1) == b"a"
    a_closed_after, b_echoes, b_failures, b_last = None, 0, 0, None
    deadline = start + config["max_seconds"]
    next_ping = time.monotonic()
    while time.monotonic() < deadline:
        if a_closed_after is not None and time.monotonic() - start > a_closed_after + config["after_close_seconds"]:
            break
        if time.monotonic() >= next_ping:
            try:
                b.sendall(b"ping")
                got = b""
                while len(got) < 4 and (chunk := b.recv(4 - len(got))):
                    got += chunk
                b_echoes += got == b"ping"
                b_failures += got != b"ping"
                b_last = time.monotonic() - start
            except OSError:
                b_failures += 1
            next_ping += 1
        if a_closed_after is None and select.select([a], [], [], 0.05)[0]:
            try:
                closed = a.recv(1) == b""
            except ConnectionResetError:
                closed = True
            if closed:
                a_closed_after = time.monotonic() - start
        time.sleep(0.05)
    a.close()
    b.close()
    return {"statuses": statuses, "a_echoed": a_ok, "a_closed_after": a_closed_after, "b_echoes": b_echoes,
            "b_failures": b_failures, "b_last_echo": b_last}  # fmt: skip


MODES = {"many": many, "rate": rate, "half_close": half_close, "download": download, "quiet": quiet}
print(json.dumps(MODES[config["mode"]]()))
