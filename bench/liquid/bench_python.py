#!/usr/bin/env python3
"""python-liquid: parse once, render N times; prints renders/s and parse µs as JSON."""
import json
import sys
import time

from liquid import Environment

import braze_to_standard as braze

template_path, data_path, iterations = sys.argv[1], sys.argv[2], int(sys.argv[3])
source = braze.template(open(template_path, encoding="utf-8").read())
context = braze.context(data_path)
env = Environment()
env.filters["number_with_delimiter"] = braze.number_with_delimiter
start = time.perf_counter()
for _ in range(200):
    template = env.from_string(source)
parse_us = (time.perf_counter() - start) / 200 * 1e6
template.render(**context)
start = time.perf_counter()
for _ in range(iterations):
    template.render(**context)
elapsed = time.perf_counter() - start
print(json.dumps({"renders_per_second": round(iterations / elapsed), "parse_microseconds": round(parse_us, 1), "iterations": iterations}))
