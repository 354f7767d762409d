#!/usr/bin/env python3
"""A small HTTP/1.1 server for spec/core_http_spec.lua: the wire cases the fake
API (leadpipe.mock) does not cover: 1xx responses, connection resets, truncated
and oversized bodies, a server that never answers, repeated headers.

Listens on 127.0.0.1 only, on a free port, and prints "PORT PID" on its first
line. It exits on SIGTERM, and by itself after LIFETIME seconds in any case.

Paths:
  /echo          200, JSON of the request: method, path, headers (lower case), body
  /headers       200 with a repeated and a mixed-case header
  /status/<n>    status n, small JSON body
  /gzip          200, a gzip-encoded JSON body (Content-Encoding: gzip)
  /big?n=N       200, N bytes with Content-Length
  /chunked?n=N   200, N bytes, chunked (no length known in advance)
  /continue      100 Continue and 103 Early Hints, then 200
  /reset         reads the request, then resets the connection (RST)
  /partial       promises 1000 bytes, sends 10, closes
  /silent        reads the request, never answers (until the client leaves)
  /barrier?key=K&n=N  200 once N requests with key K wait at once (so only a
                 client that has them in flight together gets an answer); 504
                 after BARRIER_MAX seconds otherwise
  /stats         200, {"connections": <connections accepted so far>}
"""
import gzip
import json
import os
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

LIFETIME = 120  # seconds
SILENT_MAX = 30  # seconds /silent waits at most
BARRIER_MAX = 10  # seconds /barrier waits at most

connections = 0
lock = threading.Lock()
barrier_cond = threading.Condition(lock)
barrier_counts = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        global connections
        with lock:
            connections += 1
        super().setup()

    def log_message(self, *args):
        pass

    def reply(self, status, body, ctype="application/json", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def route(self):
        body = self.read_body()
        url = urlparse(self.path)
        query = parse_qs(url.query)
        path = url.path
        if path == "/echo":
            data = {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
            }
            self.reply(200, json.dumps(data).encode())
        elif path == "/headers":
            self.reply(200, b"{}", extra=[("X-Dup", "one"), ("X-Dup", "two"),
                                          ("X-Mixed-CASE", "Value Kept")])
        elif path.startswith("/status/"):
            code = int(path.split("/")[2])
            self.reply(code, json.dumps({"status": code}).encode())
        elif path == "/gzip":
            raw = json.dumps({"rows": list(range(200)), "gzip": True}).encode()
            self.reply(200, gzip.compress(raw), extra=[("Content-Encoding", "gzip")])
        elif path == "/big":
            n = int(query.get("n", ["0"])[0])
            self.reply(200, b"x" * n, ctype="text/plain")
        elif path == "/chunked":
            n = int(query.get("n", ["0"])[0])
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            left = n
            try:
                while left > 0:
                    k = min(left, 16384)
                    self.wfile.write(b"%x\r\n" % k + b"y" * k + b"\r\n")
                    left -= k
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                self.close_connection = True
        elif path == "/continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\nX-Interim: 100\r\n\r\n")
            self.wfile.write(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n")
            self.reply(200, b'{"final":true}', extra=[("X-Final", "yes")])
        elif path == "/reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
        elif path == "/partial":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.close_connection = True
        elif path == "/silent":
            self.connection.settimeout(0.1)
            deadline = time.monotonic() + SILENT_MAX
            while time.monotonic() < deadline:
                try:
                    if self.connection.recv(1) == b"":
                        break  # the client left
                except socket.timeout:
                    continue
                except OSError:
                    break
            self.close_connection = True
        elif path == "/barrier":
            key = query.get("key", [""])[0]
            n = int(query.get("n", ["1"])[0])
            with barrier_cond:
                barrier_counts[key] = barrier_counts.get(key, 0) + 1
                barrier_cond.notify_all()
                met = barrier_cond.wait_for(lambda: barrier_counts[key] >= n, BARRIER_MAX)
            if met:
                self.reply(200, json.dumps({"key": key, "n": n}).encode())
            else:
                self.reply(504, b'{"error":"barrier timeout"}')
        elif path == "/stats":
            with lock:
                n = connections
            self.reply(200, json.dumps({"connections": n}).encode())
        else:
            self.reply(404, b'{"error":"not found"}')

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = route


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that leave mid-request are part of the tests


def main():
    server = Server(("127.0.0.1", 0), Handler)
    threading.Timer(LIFETIME, os._exit, [0]).start()
    sys.stdout.write("%d %d\n" % (server.server_address[1], os.getpid()))
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
