#!/usr/bin/env python3
"""Runs that contradict themselves, for spec/changes_hostile_spec.lua: what client:changes
must refuse (a person twice in one run, a run whose rows change between two reads), and
rows without a hashedEmail, which it matches by their whole content.

Listens on 127.0.0.1 only, on a free port, and prints "PORT PID" on its first line. It
exits on SIGTERM, and by itself after LIFETIME seconds in any case.

Base URL of a scenario: http://127.0.0.1:PORT/s/<scenario>/<nonce>; <nonce> keeps each
test's read counters apart. Every scenario has one audience (AUD) with two completed runs,
FROM and TO, of TOTAL rows {"hashedEmail": "h<n>", "intent": {"score": <s>}}:
  plain      FROM holds people 0..199, TO people 10..209; people 50..59 have other scores
  dup_to     as plain, but TO's row 150 is person 20 again (pages apart)
  dup_from   as plain, but FROM's row 150 is person 20 again
  shifting   as plain, but the second read of TO (its third pass) has person 999 at row 100
  no_id      as plain, but people 0..4 and 200..204 have no hashedEmail (and a "name")
  short      as plain, but a page holds at most 23 or 37 rows (by offset), its limit echoed
             as what it holds (a server that caps the page size)
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

LIFETIME = 300
TOTAL = 200
AUD = "5a1c0a4e-2b7d-4c3e-9a8f-1d2e3f4a5b6c"
FROM = "6b4a1f52-3b9e-4d1a-9f0e-2b7c6d5e4f3a"
TO = "7c4a1f52-3b9e-4d1a-9f0e-2b7c6d5e4f3b"

lock = threading.Lock()
first_pages = {}  # (scenario, nonce, run) -> times offset 0 was read


def person(n, run, scenario):
    score = 50 + n % 40
    if run == TO and 50 <= n < 60:
        score = 99
    p = {"hashedEmail": "h%05d" % n, "intent": {"score": score}}
    if scenario == "no_id" and (n < 5 or 200 <= n < 205):
        del p["hashedEmail"]
        p["name"] = "nobody %d" % n
    return p


def run_rows(scenario, run, reads):
    base = 0 if run == FROM else 10
    people = [base + i for i in range(TOTAL)]
    if scenario == "dup_to" and run == TO:
        people[150] = 20
    if scenario == "dup_from" and run == FROM:
        people[150] = 20
    if scenario == "shifting" and run == TO and reads >= 2:
        people[100] = 999
    return [person(n, run, scenario) for n in people]


def run_obj(run):
    return {"id": run, "audienceId": AUD, "status": "completed", "runType": "daily",
            "resultCount": TOTAL, "dataDate": "2026-05-0%d" % (4 if run == FROM else 5)}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        u = urlparse(self.path)
        parts = u.path.strip("/").split("/")
        # s/<scenario>/<nonce>/v1/intent/audiences/<aud>/runs[/<run>/results]
        if len(parts) < 8 or parts[0] != "s" or parts[6] != AUD or parts[7] != "runs":
            return self.reply(404, {"error": {"code": "NOT_FOUND", "message": "no such path"}})
        scenario, nonce = parts[1], parts[2]
        if len(parts) == 8:
            return self.reply(200, {"data": [run_obj(TO), run_obj(FROM)]})
        run = parts[8]
        if run not in (FROM, TO) or len(parts) != 10 or parts[9] != "results":
            return self.reply(404, {"error": {"code": "RUN_NOT_FOUND", "message": "run not found"}})
        q = parse_qs(u.query)
        limit = int(q.get("limit", ["100"])[0])
        offset = int(q.get("offset", ["0"])[0])
        key = (scenario, nonce, run)
        with lock:
            if offset == 0:
                first_pages[key] = first_pages.get(key, 0) + 1
            reads = first_pages.get(key, 1)
        if scenario == "short":
            limit = min(limit, 23 if (offset // 10) % 2 else 37)
        rows = run_rows(scenario, run, reads)[offset:offset + limit]
        self.reply(200, {"data": {"run": run_obj(run), "results": rows, "total": TOTAL,
                                  "limit": limit, "offset": offset}})


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that dropped the pages it asked ahead (a diff that ended) is fine


def main():
    server = Server(("127.0.0.1", 0), Handler)
    print("%d %d" % (server.server_address[1], os.getpid()), flush=True)
    threading.Timer(LIFETIME, lambda: os._exit(0)).start()
    server.serve_forever()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
