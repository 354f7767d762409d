#!/usr/bin/env bash
# bench/contenders/curl_jq.sh: the benchmark job the documented way, one curl per request
# and jq to read each page.
#
#   bash bench/contenders/curl_jq.sh URL KEY AUDIENCE IDEMPOTENCY_KEY [filtered|all]
#
# Creates the run with the Idempotency-Key (so every contender reads the same run), polls
# the first page until HTTP 200, then asks for limit=500 pages until
# offset + results.length >= total. One jq per page prints the page's row count, its kept
# count (intent.score >= 80 and seniority director/vp/c_suite; every row for "all") and
# total. Prints "rows=N kept=M".
set -euo pipefail

if [ "$#" -lt 4 ]; then
    echo "usage: curl_jq.sh URL KEY AUDIENCE IDEMPOTENCY_KEY [filtered|all]" >&2
    exit 2
fi
url=$1 key=$2 aud=$3 idem=$4 mode=${5:-filtered}
limit=500
max_polls=600   # 0.1 s apart
max_pages=100000

case "$mode" in
    filtered) keep='select((.intent.score // -1) >= 80 and
                           (.seniority == "director" or .seniority == "vp" or .seniority == "c_suite"))' ;;
    all) keep='.' ;;
    *) echo "curl_jq.sh: mode must be filtered or all" >&2; exit 2 ;;
esac

body=$(mktemp)
trap 'rm -f "$body"' EXIT

base="$url/v1/intent/audiences/$aud/runs"
run_id=$(curl -sS --fail -X POST "$base" \
    -H "x-api-key: $key" \
    -H "Idempotency-Key: $idem" \
    -H "Content-Type: application/json" \
    -d '{"runType":"manual"}' | jq -r '.data.id')

results="$base/$run_id/results?limit=$limit&offset="
status=""
for _ in $(seq "$max_polls"); do
    status=$(curl -sS -o "$body" -w '%{http_code}' -H "x-api-key: $key" "${results}0")
    [ "$status" = 200 ] && break
    [ "$status" = 202 ] || { echo "curl_jq.sh: results: HTTP $status" >&2; exit 1; }
    sleep 0.1
done
[ "$status" = 200 ] || { echo "curl_jq.sh: run not ready" >&2; exit 1; }

rows=0 kept=0 offset=0 done=0
for _ in $(seq "$max_pages"); do
    counts=$(jq -r "[(.data.results | length), ([.data.results[] | $keep] | length),
                     .data.total] | @tsv" "$body")
    read -r n k total <<<"$counts"
    rows=$((rows + n))
    kept=$((kept + k))
    if [ "$n" -eq 0 ] || [ $((offset + n)) -ge "$total" ]; then
        done=1
        break
    fi
    offset=$((offset + n))
    status=$(curl -sS -o "$body" -w '%{http_code}' -H "x-api-key: $key" "${results}${offset}")
    [ "$status" = 200 ] || { echo "curl_jq.sh: page at $offset: HTTP $status" >&2; exit 1; }
done
[ "$done" = 1 ] || { echo "curl_jq.sh: more than $max_pages pages" >&2; exit 1; }
echo "rows=$rows kept=$kept"
