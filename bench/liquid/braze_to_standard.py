"""Turns Braze-only syntax into standard Liquid so python-liquid and Ruby liquid render the same templates.

`${name}` becomes `name`, `custom_attribute.${x}` becomes `custom_attribute.x`, and the
`abort_message` tag (never reached with the benchmark data) becomes a plain marker. The data
becomes a flat context: the user's standard fields at the top level, `custom_attribute` from
`user.custom_attributes`, and every other top-level key as it is.
"""
import json
import re


def template(source):
    source = re.sub(r"\{%-?\s*abort_message\([^)]*\)\s*-?%\}", "ABORT", source)
    return re.sub(r"\$\{(\w+)\}", r"\1", source)


def context(path):
    data = json.load(open(path, encoding="utf-8"))
    user = data.get("user", {})
    flat = {key: value for key, value in data.items() if key != "user"}
    flat.update({key: value for key, value in user.items() if key != "custom_attributes"})
    flat["custom_attribute"] = user.get("custom_attributes", {})
    return flat


def number_with_delimiter(value):
    text = str(value)
    sign = "-" if text.startswith("-") else ""
    digits, _, fraction = text.lstrip("-").partition(".")
    grouped = "{:,}".format(int(digits)) if digits.isdigit() else digits
    return sign + grouped + ("." + fraction if fraction else "")
