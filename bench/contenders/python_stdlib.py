"""bench/contenders/python_stdlib.py: the benchmark job in Python, standard library only.

    python3 bench/contenders/python_stdlib.py URL KEY AUDIENCE IDEMPOTENCY_KEY [filtered|all]

One keep-alive connection (http.client), json.loads per page, pages read one after the
other (limit 500) until offset + len(results) >= total. Creates the run with the given
Idempotency-Key (so every contender reads the same run), polls its first page until HTTP
200, and prints "rows=N kept=M". "filtered" keeps intent.score >= 80 and seniority in
director/vp/c_suite; "all" keeps every row (each is decoded into a dict either way).
"""
import http.client
import json
import sys
import time
import urllib.parse

LIMIT = 500
SENIOR = frozenset(("director", "vp", "c_suite"))
MAX_POLLS = 600          # 0.1 s apart: a run that is not ready in a minute is an error
MAX_PAGES = 1_000_000    # bound on the page loop


def main(argv):
    if len(argv) < 5 or (len(argv) > 5 and argv[5] not in ("filtered", "all")):
        sys.stderr.write("usage: python_stdlib.py URL KEY AUDIENCE IDEMPOTENCY_KEY [filtered|all]\n")
        return 2
    url, key, aud, idem = argv[1:5]
    filtered = (argv[5] if len(argv) > 5 else "filtered") == "filtered"
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    headers = {"x-api-key": key}
    base = "/v1/intent/audiences/%s/runs" % aud

    def call(method, path, body=None, extra=None):
        h = dict(headers, **(extra or {}))
        conn.request(method, path, body=body, headers=h)
        resp = conn.getresponse()
        return resp.status, resp.read()

    status, body = call("POST", base, b'{"runType":"manual"}',
                        {"Idempotency-Key": idem, "Content-Type": "application/json"})
    if status not in (200, 201):
        raise SystemExit("create run: HTTP %d %r" % (status, body[:200]))
    run_id = json.loads(body)["data"]["id"]
    results = "%s/%s/results?limit=%d&offset=" % (base, run_id, LIMIT)

    data = None
    for _ in range(MAX_POLLS):
        status, body = call("GET", results + "0")
        if status == 200:
            data = json.loads(body)["data"]
            break
        if status != 202:
            raise SystemExit("results: HTTP %d %r" % (status, body[:200]))
        time.sleep(0.1)
    if data is None:
        raise SystemExit("run not ready after %d polls" % MAX_POLLS)

    rows = kept = 0
    offset = 0
    for _ in range(MAX_PAGES):
        page = data["results"]
        rows += len(page)
        if filtered:
            for p in page:
                score = (p.get("intent") or {}).get("score")
                if score is not None and score >= 80 and p.get("seniority") in SENIOR:
                    kept += 1
        else:
            kept += len(page)
        total = data["total"]
        if not page or offset + len(page) >= total:
            break
        offset += len(page)
        status, body = call("GET", results + str(offset))
        if status != 200:
            raise SystemExit("results at %d: HTTP %d %r" % (offset, status, body[:200]))
        data = json.loads(body)["data"]
    conn.close()
    sys.stdout.write("rows=%d kept=%d\n" % (rows, kept))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
