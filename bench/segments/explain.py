#!/usr/bin/env python3
"""Q1–Q4 as SegmentCompiler (Sources/BeckonSegments/SegmentCompiler.swift) compiles them for SQLite,
with the arguments inlined, then EXPLAIN QUERY PLAN and a timed COUNT(*) through Python's sqlite3.

    explain.py /tmp/beckon-seg-sqlite/beckon.sqlite [Q3 …]

Hand-transcribed from the compiler (windowed sums over the daily tables, the log only for the
edge days); keep in step with it. NOW = 2025-06-30T15:00:00Z, workspace 1.
"""
import sqlite3
import sys
import time

NOW = 1751295600000
DAY = 86400000
WS = 1


def windowed_sum(daily, daily_filter, measure, log_table, log_measure, log_filter, days):
    start = NOW - days * DAY
    start_day, end_day = start // DAY, NOW // DAY
    start_of_end_day, end_of_start_day = end_day * DAY, (start_day + 1) * DAY - 1

    def log_count(a, b):
        return (f"(SELECT COALESCE(SUM({log_measure}), 0) FROM {log_table} e WHERE e.user_id = d.user_id AND "
                f"{log_filter} AND e.time >= {a} AND e.time <= {b})")
    expression = (f"CASE WHEN d.day = {start_day} THEN (CASE WHEN d.first_time >= {start} THEN d.{measure} "
                  f"WHEN d.last_time < {start} THEN 0 ELSE {log_count(start, end_of_start_day)} END) "
                  f"WHEN d.day = {end_day} THEN (CASE WHEN d.last_time <= {NOW} THEN d.{measure} ELSE "
                  f"{log_count(start_of_end_day, NOW)} END) ELSE d.{measure} END")
    return (f"SELECT d.user_id, {expression} AS n FROM {daily} d WHERE d.workspace_id = {WS}{daily_filter}"
            f" AND d.day BETWEEN {start_day} AND {end_day}")


def occurrences(sum_sql, op=">=", value=1):
    return f"u.id IN (SELECT user_id FROM ({sum_sql}) t GROUP BY user_id HAVING SUM(n) {op} {value})"


def custom_text(path, value):
    return (f"u.id IN (SELECT user_id FROM user_attribute_values WHERE workspace_id = {WS} AND path = '{path}' "
            f"AND kind IN ('s', 't', 'as', 'at') AND text_value = '{value}')")


def custom_number_gt(path, value):
    return (f"u.id IN (SELECT user_id FROM user_attribute_values WHERE workspace_id = {WS} AND path = '{path}' "
            f"AND kind IN ('n', 'an') AND number_value > {value})")


Q1 = occurrences(windowed_sum(
    "event_property_daily", " AND d.name = 'product_viewed' AND d.property = 'brand' AND d.value = 'Jucy Judy'", "count",
    "events", "1", "e.name = d.name AND json_extract(e.properties, '$.brand') = 'Jucy Judy'", 1))
Q2 = (f"({custom_text('last_view_category', 'A0010')} AND (u.push_subscribe = 'opted_in' OR "
      f"u.id IN (SELECT user_id FROM push_tokens WHERE workspace_id = {WS} AND authorization_state = 'provisional') "
      f"AND u.push_subscribe <> 'unsubscribed'))")
purchases7 = windowed_sum("purchase_daily", "", "count", "purchases", "quantity", "e.product_id = d.product_id", 7)
Q3 = (f"({occurrences(windowed_sum('event_daily', ' AND d.name = ' + repr('added_to_cart'), 'count', 'events', '1', 'e.name = d.name', 7))}"
      f" AND NOT ({occurrences(purchases7)}))")
Q4 = (f"({occurrences(windowed_sum('purchase_daily', '', 'count', 'purchases', 'quantity', 'e.product_id = d.product_id', 30), '>=', 3)}"
      f" AND {custom_number_gt('lifetime_spend', 500000.0)})")
QUESTIONS = {"Q1": Q1, "Q2": Q2, "Q3": Q3, "Q4": Q4}

db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
for name in sys.argv[2:] or QUESTIONS:
    sql = f"SELECT COUNT(*) FROM users u WHERE u.workspace_id = {WS} AND {QUESTIONS[name]}"
    print(f"--- {name}\n{sql}\n")
    for row in db.execute("EXPLAIN QUERY PLAN " + sql):
        print("  ", row)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        size = db.execute(sql).fetchone()[0]
        times.append((time.perf_counter() - start) * 1000)
    print(f"   size {size}, ms {sorted(times)[1]:.1f}\n")
