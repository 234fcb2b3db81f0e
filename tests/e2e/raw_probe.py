"""Runs inside a sandbox: sends raw byte sequences to the session proxy, one connection each.

stdin: JSON {"cases": {name: payload}}; in a payload, TOKEN becomes the Basic credentials of the
session token. stdout: JSON {name: {"status": int|None, "reason": str, "echo": str, "closed": bool}}.
"""

import base64
import json
import socket
import sys

with open("/run/sandgate/token") as f:
    token = f.read().strip()
creds = base64.b64encode(f"sandgate:{token}".encode()).decode()


def complete_responses(data):
    """How many whole responses (headers and Content-Length body) `data` holds."""
    count, rest = 0, data
    while b"\r\n\r\n" in rest:
        head, rest = rest.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if len(rest) < length:
            break
        rest = rest[length:]
        count += 1
    return count


def probe(payload):
    sock = socket.create_connection(("127.0.0.1", 3128), timeout=5)
    sock.sendall(payload.replace("TOKEN", creds).encode("latin-1"))
    expected = payload.count(" HTTP/1.1\r\n")  # one answer per request line sent
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if complete_responses(data) >= expected:
                break
    except OSError:
        pass
    sock.close()
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1]) if lines[0].startswith("HTTP/") else None
    reason = next((ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith("x-sandgate-deny-reason")), "")
    return {
        "status": status,
        "reason": reason,
        "reached_upstream": b"sandgate-test-upstream" in data,
        "body": data.split(b"\r\n\r\n", 1)[-1][:2000].decode("latin-1"),
    }


cases = json.load(sys.stdin)["cases"]
print(json.dumps({name: probe(payload) for name, payload in cases.items()}))
