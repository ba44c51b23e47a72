#!/usr/bin/env python3
"""DuckDB answers Q1–Q5 of shared/bench/README.md on the generator's Parquet files (warm, median of 5).

Prints one JSON line per question: size, count_ms, list_ms. Q4 is answered twice: counting purchase
rows (`Q4_rows`) and counting quantity (`Q4`, Braze's and Beckon's definition).
"""
import json
import statistics
import sys
import time

import duckdb

folder = sys.argv[1]
con = duckdb.connect()
con.execute("SET threads TO 2")
for table in ("users", "events", "purchases"):
    con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet('{folder}/{table}.parquet')")
NOW = "TIMESTAMPTZ '2025-06-30 15:00:00+00'"
QUESTIONS = {
    "Q1": f"SELECT DISTINCT user_id FROM events WHERE name = 'product_viewed' AND brand = 'Jucy Judy' AND time >= {NOW} - INTERVAL 1 DAY AND time <= {NOW}",
    "Q2": "SELECT user_id FROM users WHERE last_view_category = 'A0010' AND push_subscribe IN ('opted_in', 'provisional')",
    "Q3": f"""SELECT DISTINCT user_id FROM events WHERE name = 'added_to_cart' AND time >= {NOW} - INTERVAL 7 DAY AND time <= {NOW}
              EXCEPT SELECT user_id FROM purchases WHERE time >= {NOW} - INTERVAL 7 DAY AND time <= {NOW}""",
    "Q4": f"""SELECT p.user_id FROM purchases p JOIN users u USING (user_id) WHERE p.time >= {NOW} - INTERVAL 30 DAY AND p.time <= {NOW}
              AND u.lifetime_spend > 500000 GROUP BY p.user_id HAVING SUM(p.quantity) >= 3""",
    "Q4_rows": f"""SELECT p.user_id FROM purchases p JOIN users u USING (user_id) WHERE p.time >= {NOW} - INTERVAL 30 DAY AND p.time <= {NOW}
              AND u.lifetime_spend > 500000 GROUP BY p.user_id HAVING COUNT(*) >= 3""",
}
Q5 = f"""SELECT d, COUNT(DISTINCT user_id) FROM range(30) r(d), events
         WHERE name = 'product_viewed' AND brand = 'Jucy Judy'
           AND time >= {NOW} - INTERVAL (d + 1) DAY AND time <= {NOW} - INTERVAL (d) DAY GROUP BY d ORDER BY d"""


def timed(sql, fetch):
    times = []
    result = None
    for _ in range(6):
        start = time.perf_counter()
        result = fetch(sql)
        times.append((time.perf_counter() - start) * 1000)
    return result, statistics.median(times[1:])


for name, sql in QUESTIONS.items():
    size, count_ms = timed(f"SELECT COUNT(*) FROM ({sql})", lambda q: con.execute(q).fetchone()[0])
    ids, list_ms = timed(sql, lambda q: con.execute(q).fetchall())
    print(json.dumps({"engine": "duckdb", "question": name, "size": size, "count_ms": round(count_ms, 1), "list_ms": round(list_ms, 1)}))
series, q5_ms = timed(Q5, lambda q: con.execute(q).fetchall())
print(json.dumps({"engine": "duckdb", "question": "Q5", "sizes_min": min(s for _, s in series), "sizes_max": max(s for _, s in series),
                  "points": len(series), "ms": round(q5_ms, 1), "sizes_by_days_ago": [s for _, s in series]}))
