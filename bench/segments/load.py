#!/usr/bin/env python3
"""Loads the shared generator's /users/track bodies into a running Beckon, concurrently.

    load.py PORT ADMIN_KEY JSONL_FOLDER APP_ID [THREADS]

Bodies are sent as the generator wrote them (no JSON re-encoding, so the loader stays light on the
shared two cores), streamed file by file in time order. The generator writes `push_subscribe:
"provisional"`, which Braze does not accept (Beckon would reject the whole attributes object); such
objects are rewritten to `push_subscribe: "subscribed"` and, once the request is answered, the user
gets an iOS provisionally authorized push token through the SDK endpoint `/sdk/v1/data`, which is how
provisional push reaches Beckon. Every answer is checked (201 and no per-object `errors`).
Progress goes to stderr every 15 s; one JSON summary line goes to stdout.
"""
import concurrent.futures
import glob
import hashlib
import http.client
import json
import re
import sys
import threading
import time

port, key, folder, app_id = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
threads = int(sys.argv[5]) if len(sys.argv) > 5 else 32
local = threading.local()
TRACK_HEADERS = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
SDK_HEADERS = {"Content-Type": "application/json"}
# attribute objects are flat: {"external_id":"u1","first_name":…,"push_subscribe":"provisional",…}
PROVISIONAL = re.compile(rb'"external_id":"([^"]+)","first_name":[^{}]*?"push_subscribe":"provisional"')


def post(path, body, headers):
    for attempt in range(3):
        try:
            if not hasattr(local, "conn"):
                local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            local.conn.request("POST", path, body=body, headers=headers)
            response = local.conn.getresponse()
            return response.status, response.read()
        except (http.client.HTTPException, OSError):
            if hasattr(local, "conn"):
                local.conn.close()
                del local.conn
            if attempt == 2:
                raise


def register(external_id):
    body = {"app_id": app_id, "device_id": "bench-" + external_id, "external_id": external_id, "platform": "ios",
            "push_token": {"token": hashlib.sha256(external_id.encode()).hexdigest(), "authorization": "provisional"}}
    status, payload = post("/sdk/v1/data", json.dumps(body).encode(), SDK_HEADERS)
    return status == 201 and not json.loads(payload).get("errors")


def track(line):
    provisional = [m.decode() for m in PROVISIONAL.findall(line)]
    if provisional:
        assert line.count(b'"push_subscribe":"provisional"') == len(provisional)
        line = line.replace(b'"push_subscribe":"provisional"', b'"push_subscribe":"subscribed"')
    status, payload = post("/users/track", line, TRACK_HEADERS)
    errors = len(json.loads(payload).get("errors", [])) if status == 201 else 0
    sdk_failures = sum(not register(external_id) for external_id in provisional) if status == 201 else 0
    objects = line.count(b'","name":"') + line.count(b'"currency":')  # events + purchases
    return status, errors, objects, len(provisional), sdk_failures, payload if (status != 201 or errors) else None


def lines():
    for path in sorted(glob.glob(folder + "/track-*.jsonl")):
        with open(path, "rb") as fh:
            for line in fh:
                line = line.rstrip(b"\n")
                if line:
                    yield line


def main():
    start = last = time.perf_counter()
    requests = non_201 = errors = objects = provisional = sdk_failures = 0
    samples = []
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        pending = set()
        for line in lines():
            pending.add(pool.submit(track, line))
            if len(pending) >= threads * 4:
                done, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    status, e, o, p, s, bad = future.result()
                    requests += 1
                    non_201 += status != 201
                    errors += e
                    objects += o
                    provisional += p
                    sdk_failures += s
                    if bad is not None and len(samples) < 5:
                        samples.append(bad[:500].decode(errors="replace"))
                now = time.perf_counter()
                if now - last >= 15:
                    last = now
                    print(f"[{now - start:7.1f}s] {requests:,} requests, {objects:,} events+purchases, "
                          f"{objects / (now - start):,.0f} events/s, non-201 {non_201}, errors {errors}",
                          file=sys.stderr, flush=True)
        for future in concurrent.futures.as_completed(pending):
            status, e, o, p, s, bad = future.result()
            requests += 1
            non_201 += status != 201
            errors += e
            objects += o
            provisional += p
            sdk_failures += s
    elapsed = time.perf_counter() - start
    print(json.dumps({"requests": requests, "non_201": non_201, "object_errors": errors, "events_and_purchases": objects,
                      "provisional_tokens": provisional, "sdk_failures": sdk_failures, "seconds": round(elapsed, 1),
                      "events_per_second": round(objects / elapsed), "error_samples": samples}))


main()
