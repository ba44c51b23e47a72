#!/usr/bin/env python3
"""Loads the shared generator's /users/track bodies into a running Beckon, concurrently.

The generator writes `push_subscribe: "provisional"`, which Braze does not accept; such users get
`push_subscribe: "subscribed"` plus an iOS provisionally authorized push token through the SDK
endpoint, which is how provisional push reaches Beckon. Prints one JSON summary line.
"""
import concurrent.futures
import glob
import http.client
import json
import sys
import threading
import time

base_port, key, folder = int(sys.argv[1]), sys.argv[2], sys.argv[3]
local = threading.local()


def post(path, body, headers):
    if not hasattr(local, "conn"):
        local.conn = http.client.HTTPConnection("127.0.0.1", base_port, timeout=120)
    local.conn.request("POST", path, body=body, headers=headers)
    response = local.conn.getresponse()
    return response.status, response.read()


def track(line):
    body = json.loads(line)
    provisional = []
    for attrs in body.get("attributes", []):
        if attrs.get("push_subscribe") == "provisional":
            attrs["push_subscribe"] = "subscribed"
            provisional.append(attrs["external_id"])
    status, payload = post("/users/track", json.dumps(body, ensure_ascii=False).encode(),
                           {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    result = json.loads(payload)
    events = len(body.get("events", [])) + len(body.get("purchases", []))
    return status, len(result.get("errors", [])), events, provisional


def main():
    app_id = sys.argv[4]
    lines = [line for path in sorted(glob.glob(folder + "/track-*.jsonl")) for line in open(path, encoding="utf-8")]
    attributes = [l for l in lines if l.startswith('{"attributes"')]
    rest = [l for l in lines if not l.startswith('{"attributes"')]
    start = time.perf_counter()
    failures = errors = events = 0
    provisional = []
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        for batch in (attributes, rest):
            for status, error_count, count, prov in pool.map(track, batch, chunksize=8):
                failures += status != 201
                errors += error_count
                events += count
                provisional += prov
        def register(external_id):
            body = {"app_id": app_id, "device_id": "bench-" + external_id, "external_id": external_id, "platform": "ios",
                    "push_token": {"token": ("%064x" % abs(hash(external_id)))[:64], "authorization": "provisional"}}
            return post("/sdk/v1/data", json.dumps(body).encode(), {"Content-Type": "application/json"})[0]
        sdk_failures = sum(status != 201 for status in pool.map(register, provisional, chunksize=16))
    elapsed = time.perf_counter() - start
    print(json.dumps({"requests": len(lines), "non_201": failures, "object_errors": errors, "events_and_purchases": events,
                      "provisional_tokens": len(provisional), "sdk_failures": sdk_failures, "seconds": round(elapsed, 1),
                      "events_per_second": round(events / elapsed)}))


main()
