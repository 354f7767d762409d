#!/usr/bin/env python3
"""A hostile Leadpipe API for spec/hostile_spec.lua and spec/keyleak_spec.lua: every
malformed shape a broken server or a meddling proxy may send.

Listens on 127.0.0.1 only, on a free port, and prints "PORT PID" on its first line. It
exits on SIGTERM, and by itself after LIFETIME seconds in any case.

Base URL of a scenario: http://127.0.0.1:PORT/s/<scenario>/<nonce>; the client appends
the API's paths to it. <nonce> keeps each test's counters apart. Rows are
{"hashedEmail": "h00042", "i": 42}; the run has TOTAL (250) rows unless the scenario
says otherwise. GET /count/<scenario>/<nonce> answers how many requests it saw.
The key-leak scenarios echo the request's x-api-key in every field they can.
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

LIFETIME = 300
TOTAL = 250
RUN = "8c4a1f52-3b9e-4d1a-9f0e-2b7c6d5e4f3a"

lock = threading.Lock()
counts = {}
bomb = None


def row(i):
    return {"hashedEmail": "h%05d" % i, "i": i}


def rows(offset, limit, total=TOTAL):
    return [row(i) for i in range(offset, min(offset + limit, total))]


def run_obj(status="completed", **extra):
    r = {"id": RUN, "status": status, "runType": "manual"}
    r.update(extra)
    return r


def page(offset, limit, total=TOTAL, **over):
    d = {"run": run_obj(), "results": rows(offset, limit, total), "total": total,
         "limit": limit, "offset": offset}
    d.update(over)
    return {"data": d, "meta": {"request_id": "req_%d" % offset}}


def gzip_bomb():
    global bomb
    with lock:
        if bomb is None:
            bomb = gzip.compress(b" " * (32 << 20), 9)
        return bomb


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, ctype="application/json", headers=()):
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def route(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        url = urlparse(self.path)
        parts = url.path.split("/")
        if len(parts) >= 4 and parts[1] == "count":
            with lock:
                c = counts.get(parts[2] + "/" + parts[3], 0)
            return self.send(200, {"count": c})
        if len(parts) < 4 or parts[1] != "s":
            return self.send(404, {"error": {"code": "NOT_FOUND", "message": "no scenario"}})
        scen, nonce = parts[2], parts[3]
        rest = "/" + "/".join(parts[4:])
        key = scen + "/" + nonce
        with lock:
            counts[key] = counts.get(key, 0) + 1
            seen = counts[key]
        q = parse_qs(url.query)
        limit = int(q.get("limit", ["100"])[0])
        offset = int(q.get("offset", ["0"])[0])
        api_key = self.headers.get("x-api-key") or ""
        fn = getattr(self, "s_" + scen.replace("-", "_"), None)
        if fn is None:
            return self.send(404, {"error": {"code": "NO_SCENARIO", "message": scen}})
        return fn(rest=rest, limit=limit, offset=offset, seen=seen, key=api_key,
                  base="/s/%s/%s" % (scen, nonce))

    do_GET = do_POST = do_DELETE = route

    # ===== well-formed, for reference =====
    def s_good(self, limit, offset, **_):
        self.send(200, page(offset, limit))

    # ===== malformed pages =====
    def s_data_object(self, **_):
        self.send(200, {"data": {}})

    def s_data_array(self, **_):
        self.send(200, {"data": [1, 2]})

    def s_no_data(self, **_):
        self.send(200, {"results": rows(0, 10)})

    def s_no_total(self, limit, offset, **_):
        p = page(offset, limit)
        del p["data"]["total"]
        self.send(200, p)

    def s_negative_total(self, limit, offset, **_):
        self.send(200, {"data": dict(page(offset, limit)["data"], total=-5)})

    def s_float_total(self, limit, offset, **_):
        self.send(200, {"data": dict(page(offset, limit)["data"], total=250.5)})

    def s_string_total(self, limit, offset, **_):
        self.send(200, {"data": dict(page(offset, limit)["data"], total="250")})

    def s_huge_total(self, limit, offset, **_):
        body = json.dumps(page(offset, limit)).replace('"total": 250', '"total": 1e400')
        self.send(200, body.encode())

    def s_bignum_total(self, limit, offset, **_):
        body = json.dumps(page(offset, limit)).replace('"total": 250',
                                                       '"total": 123456789012345678901234567890')
        self.send(200, body.encode())

    def s_results_object(self, **_):
        self.send(200, {"data": {"results": {}, "total": 0, "run": run_obj()}})

    def s_results_string(self, **_):
        self.send(200, {"data": {"results": "none", "total": 0, "run": run_obj()}})

    def s_mixed_rows(self, **_):
        self.send(200, {"data": {"results": [1, 2, "x", True], "total": 4, "offset": 0,
                                 "run": run_obj()}})

    def s_array_rows(self, **_):
        self.send(200, {"data": {"results": [[1], [2]], "total": 2, "run": run_obj()}})

    def s_null_row(self, limit, offset, **_):
        p = page(offset, limit)
        p["data"]["results"][3] = None
        self.send(200, p)

    def s_drop_query(self, **_):
        # a proxy that drops the query string: the server answers its defaults
        self.send(200, page(0, 100))

    def s_drop_query_silent(self, **_):
        # the same, with a server that does not echo offset and limit
        p = page(0, 100)
        del p["data"]["offset"]
        del p["data"]["limit"]
        self.send(200, p)

    def s_shrink(self, limit, offset, **_):
        self.send(200, page(offset, limit, total=TOTAL if offset == 0 else 150))

    def s_grow(self, limit, offset, **_):
        self.send(200, page(offset, limit, total=200 if offset == 0 else TOTAL))

    def s_empty_mid(self, limit, offset, **_):
        p = page(offset, limit)
        if offset > 0:
            p["data"]["results"] = []
        self.send(200, p)

    def s_short_mid(self, limit, offset, **_):
        p = page(offset, limit)
        if offset == 0:
            p["data"]["results"] = p["data"]["results"][:60]
        self.send(200, p)

    def s_short_all(self, limit, offset, **_):
        # legal: every page holds between 1 and limit - 1 rows (never none before total)
        p = page(offset, limit)
        n = len(p["data"]["results"])
        if n > 1:
            p["data"]["results"] = p["data"]["results"][:1 + (offset * 7 + limit) % (n - 1)]
        self.send(200, p)

    def s_repeat_in_page(self, limit, offset, **_):
        # h0, h1, h2, h0: a row repeated inside one page
        p = page(offset, limit)
        if offset == 0:
            p["data"]["results"][3] = row(0)
        self.send(200, p)

    def s_repeat_prev(self, limit, offset, **_):
        # the second page repeats the last row of the first one in its middle
        p = page(offset, limit)
        if offset > 0:
            p["data"]["results"][5] = row(offset - 1)
        self.send(200, p)

    def s_result_count(self, limit, offset, **_):
        # a run whose resultCount says another number than total
        p = page(offset, limit)
        p["data"]["run"]["resultCount"] = TOTAL + 1
        self.send(200, p)

    def s_bad_utf8(self, limit, offset, **_):
        # bytes that are not UTF-8 in a hashedEmail of the second page
        body = json.dumps(page(offset, limit)).encode()
        if offset > 0:
            body = body.replace(b"h%05d" % (offset + 3), b"h\xff\xfe0001")
        self.send(200, body)

    def s_lone_surrogate(self, limit, offset, **_):
        p = page(offset, limit)
        body = json.dumps(p)
        if offset > 0:
            body = body.replace('"h%05d"' % (offset + 2), '"h\\ud800%d"' % offset)
        self.send(200, body.encode())

    def s_too_many(self, limit, offset, **_):
        self.send(200, page(offset, limit + 1))

    def s_past_total(self, limit, offset, **_):
        p = page(offset, limit)
        p["data"]["total"] = 50
        self.send(200, p)

    def s_wrong_offset(self, limit, offset, **_):
        p = page(offset, limit)
        p["data"]["offset"] = offset + 1
        self.send(200, p)

    def s_running_200(self, limit, offset, **_):
        self.send(200, {"data": {"run": run_obj("running"), "state": "running", "results": [],
                                 "total": 0, "limit": limit, "offset": offset}})

    def s_run_status_200(self, limit, offset, **_):
        p = page(offset, limit)
        p["data"]["run"]["status"] = "queued"
        self.send(200, p)

    def s_accepted_completed(self, limit, offset, seen, **_):
        # a 202 that says completed, twice; then real pages
        if seen <= 2:
            self.send(202, {"data": {"run": run_obj("completed"), "state": "completed",
                                     "results": rows(0, 5), "total": 5, "limit": limit,
                                     "offset": offset}})
        else:
            self.send(200, page(offset, limit))

    def s_accepted_forever(self, limit, offset, **_):
        self.send(202, {"data": {"run": run_obj("completed"), "state": "completed",
                                 "results": rows(0, 5), "total": 5}})

    def s_dup_keys(self, limit, offset, **_):
        # duplicate keys: whichever copy wins, rows are never lost or repeated silently
        d = page(offset, limit)["data"]
        body = ('{"data":{"results":%s,"results":[],"total":%d,"total":%d,"offset":%d,'
                '"limit":%d,"run":%s}}' % (json.dumps(d["results"]), TOTAL, 3, offset, limit,
                                           json.dumps(d["run"])))
        self.send(200, body.encode())

    def s_bom(self, limit, offset, **_):
        self.send(200, b"\xef\xbb\xbf" + json.dumps(page(offset, limit)).encode())

    def s_html_200(self, **_):
        self.send(200, b"<html><body>Sign in to the portal</body></html>", ctype="text/html")

    def s_text_json(self, limit, offset, **_):
        self.send(200, json.dumps(page(offset, limit)).encode(), ctype="text/plain")

    def s_empty_200(self, **_):
        self.send(200, b"")

    def s_deep_json(self, **_):
        self.send(200, b"[" * 100000 + b"]" * 100000)

    def s_redirect_loop(self, rest, base, **_):
        self.send(302, b"", headers=[("Location", base + rest)])

    def s_header_flood(self, **_):
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        i = 0
        try:
            while i < 2000000:
                self.wfile.write(b"X-Flood-%d: %s\r\n" % (i, b"a" * 200))
                i += 1
        except OSError:
            pass
        self.close_connection = True

    def s_long_header(self, **_):
        self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Long: ")
        try:
            for _ in range(100000):
                self.wfile.write(b"b" * 1000)
        except OSError:
            pass
        self.close_connection = True

    def s_gzip_bomb(self, **_):
        self.send(200, gzip_bomb(), headers=[("Content-Encoding", "gzip")])

    def s_big_body(self, **_):
        body = b'{"data":{"results":[' + b'{"a":1},' * 300000 + b'{"a":1}],"total":1}}'
        self.send(200, body)

    def s_short_length(self, limit, offset, **_):
        # promises more than it sends, then closes
        body = json.dumps(page(offset, limit)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body) + 100))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def s_long_length(self, limit, offset, **_):
        # says less than it sends: the JSON is cut at Content-Length
        body = json.dumps(page(offset, limit)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body) // 2))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def s_reset(self, **_):
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def s_slow(self, limit, offset, **_):
        time.sleep(3)
        try:
            self.send(202, {"data": {"run": run_obj("running"), "state": "running",
                                     "results": [], "total": 0}})
        except OSError:
            pass

    def s_retry_after_long(self, **_):
        self.send(429, {"error": {"code": "RATE_LIMITED", "message": "slow down"}},
                  headers=[("Retry-After", "100000")])

    def s_error_html(self, **_):
        self.send(500, b"<html><h1>Bad gateway</h1>\n<p>upstream died</p></html>",
                  ctype="text/html")

    def s_error_run_string(self, **_):
        self.send(409, {"error": {"code": "RUN_FAILED", "message": "x", "run": "nope"}})

    def s_error_code_table(self, **_):
        self.send(400, {"error": {"code": {"nested": 1}, "message": ["a"]},
                        "meta": {"request_id": {"x": 1}}})

    def s_create_array(self, **_):
        self.send(201, {"data": [1, 2, 3]})

    # ===== key leaks: the key echoed in every field =====
    def leak_headers(self, key):
        return [("X-Request-Id", "req-" + key), ("X-Echo", key)]

    def s_leak_error(self, key, **_):
        self.send(409, {"error": {"code": key, "message": "bad key " + key + " (" + key + ")",
                                  "param": key,
                                  "run": {"id": key, "status": "failed", "errorCode": key,
                                          "errorMessage": "key=" + key, key: key}},
                        "meta": {"request_id": key}},
                  headers=self.leak_headers(key))

    def s_leak_401(self, key, **_):
        self.send(401, {"error": "invalid api key " + key}, headers=self.leak_headers(key))

    def s_leak_text(self, key, **_):
        self.send(502, ("upstream said: x-api-key: " + key + "\n").encode(), ctype="text/plain",
                  headers=self.leak_headers(key))

    def s_leak_429(self, key, seen, limit, offset, **_):
        if seen % 2 == 1:
            self.send(429, {"error": {"code": "RATE_" + key, "message": key}},
                      headers=self.leak_headers(key) + [("Retry-After", "0")])
        else:
            p = page(offset, limit)
            p["meta"]["request_id"] = key
            p["data"]["run"]["idempotencyKey"] = key
            p["data"]["run"]["errorMessage"] = "echo " + key
            self.send(200, p, headers=self.leak_headers(key))

    def s_leak_page(self, key, limit, offset, **_):
        p = page(offset, limit)
        p["meta"]["request_id"] = key
        p["data"]["run"]["idempotencyKey"] = key
        p["data"]["run"][key] = {"nested": key}
        self.send(200, p, headers=self.leak_headers(key))

    def s_leak_pending(self, key, **_):
        self.send(202, {"data": {"run": {"id": RUN, "status": "running", "note": key},
                                 "state": "running", "results": [], "total": 0},
                        "meta": {"request_id": key}}, headers=self.leak_headers(key))

    def s_leak_redirect(self, key, rest, base, seen, **_):
        if seen > 3:
            return self.send(404, {"error": {"code": "NOT_FOUND", "message": key}},
                             headers=self.leak_headers(key))
        self.send(302, b"", headers=[("Location", base + rest + "?k=" + key)] +
                  self.leak_headers(key))

    def s_leak_all(self, key, rest, limit, offset, **_):
        # well-formed answers to every endpoint the command line calls, each with the key
        # in every field it prints
        hdr = self.leak_headers(key)
        meta = {"request_id": key}
        run = {"id": RUN, "status": "completed", "runType": "manual", "resultCount": TOTAL,
               "createdAt": key, "completedAt": key, "errorMessage": key}
        if rest.endswith("/export.csv"):
            return self.send(200, ("hashedEmail,fullName\nh0,%s\nh1,x %s y\n" % (key, key)).encode(),
                             ctype="text/csv", headers=hdr)
        if rest.endswith("/stats"):
            return self.send(200, {"data": {"run": run, "stats": {"total": TOTAL, "note": key}},
                                   "meta": meta}, headers=hdr)
        if rest.endswith("/results"):
            p = page(offset, limit)
            for r in p["data"]["results"]:
                r["fullName"] = "name " + key
            p["meta"] = meta
            return self.send(200, p, headers=hdr)
        if rest.endswith("/runs") and self.command == "GET":
            return self.send(200, {"data": [run], "meta": meta}, headers=hdr)
        if self.command in ("POST", "DELETE"):
            r = dict(run, status="queued" if self.command == "POST" else "cancelled",
                     idempotencyKey=key)
            return self.send(200, {"data": r, "meta": meta}, headers=hdr)
        if rest == "/v1/intent/audiences":
            return self.send(200, {"data": [{"id": RUN, "name": key, "status": "active"}],
                                   "meta": meta}, headers=hdr)
        return self.send(404, {"error": {"code": "NOT_FOUND", "message": key}}, headers=hdr)

    def s_leak_decode(self, key, **_):
        self.send(200, ('{"data": {"k": "' + key + '", ').encode(), headers=self.leak_headers(key))


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


def main():
    server = Server(("127.0.0.1", 0), Handler)
    threading.Timer(LIFETIME, os._exit, [0]).start()
    sys.stdout.write("%d %d\n" % (server.server_address[1], os.getpid()))
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
