"""Accepts TCP connections and writes a banner; run inside the outside-host namespace."""

import socket
import sys

server = socket.create_server((sys.argv[1], int(sys.argv[2])))
while True:
    conn, _ = server.accept()
    conn.sendall(b"outside-host-reached\n")
    conn.close()
