#!/usr/bin/env python3
"""The ingestion ceiling: the rows one /users/track event writes, straight into SQLite.

Same schema as Beckon (the events log with its index, the per-user-per-day aggregate upsert),
same pragmas (WAL, synchronous=NORMAL), same batch sizes, no HTTP, no JSON, no validation.
Prints one JSON object with rows/s for the transaction sizes asked for.
"""
import argparse
import json
import os
import random
import sqlite3
import tempfile
import time

SCHEMA = """
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, workspace_id BIGINT NOT NULL, user_id BIGINT NOT NULL,
    name TEXT NOT NULL, time BIGINT NOT NULL, app_id TEXT, properties TEXT);
CREATE INDEX events_user_name_time ON events (user_id, name, time);
CREATE TABLE event_daily (user_id BIGINT NOT NULL, name TEXT NOT NULL, day INTEGER NOT NULL, workspace_id BIGINT NOT NULL,
    count BIGINT NOT NULL, first_time BIGINT NOT NULL, last_time BIGINT NOT NULL,
    PRIMARY KEY (user_id, name, day)) WITHOUT ROWID;
CREATE INDEX event_daily_name_day ON event_daily (workspace_id, name, day);
"""
UPSERT = """INSERT INTO event_daily (user_id, name, day, workspace_id, count, first_time, last_time) VALUES (?, ?, ?, 1, 1, ?, ?)
ON CONFLICT (user_id, name, day) DO UPDATE SET count = event_daily.count + excluded.count,
    first_time = MIN(event_daily.first_time, excluded.first_time), last_time = MAX(event_daily.last_time, excluded.last_time)"""
BRANDS = ["Jucy Judy", "Kirsh", "Covernat", "Matin Kim", "Emis", "Sculptor"]
NAMES = ["product_viewed", "product_viewed", "product_viewed", "search", "added_to_cart"]


def rows(n, rng):
    base = 1748736000000  # 2025-06-01T00:00:00Z
    for _ in range(n):
        t = base + rng.randrange(28 * 86400000)
        props = json.dumps({"brand": rng.choice(BRANDS), "category": "A%04d" % (rng.randrange(1, 21) * 10),
                            "product_id": "P%d" % rng.randrange(1, 5001)}, sort_keys=True, separators=(",", ":"))
        yield (rng.randrange(1, 100001), rng.choice(NAMES), t, props)


def run(batch, total):
    folder = tempfile.mkdtemp(prefix="beckon-ceiling-")
    db = sqlite3.connect(os.path.join(folder, "ceiling.sqlite"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(SCHEMA)
    rng = random.Random(7)
    data = list(rows(total, rng))
    start = time.perf_counter()
    for offset in range(0, total, batch):
        chunk = data[offset:offset + batch]
        db.execute("BEGIN")
        db.executemany("INSERT INTO events (workspace_id, user_id, name, time, app_id, properties) VALUES (1, ?, ?, ?, NULL, ?)", chunk)
        db.executemany(UPSERT, [(u, n, t // 86400000, t, t) for (u, n, t, _) in chunk])
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return total / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=600000)
    parser.add_argument("--batches", default="75,4800")
    args = parser.parse_args()
    result = {"sqlite_version": sqlite3.sqlite_version}
    for batch in [int(b) for b in args.batches.split(",")]:
        result["rows_per_second_batch_%d" % batch] = round(run(batch, args.rows))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
