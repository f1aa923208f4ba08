#!/usr/bin/env python3
"""Open Job Spec (OJS) conformance runner: a stdlib-only Python 3.11 port of the
Go HTTP runner in openjobspec/ojs-conformance (runner/http/runner.go + lib/).

Usage:
  python3 ojs_conformance.py --url http://127.0.0.1:8080 --suites DIR
        [--level N|ext] [--category C] [--test ID] [--output table|json]
        [--report-file F] [--reset-url URL] [--verbose] [--tolerance PCT]
        [--timeout S] [--jobs N] [--scan-only]

OJS_TEST_URL is used when --url is absent (default http://localhost:8080).
Go-style single-dash flags (-url, -level ...) are accepted too.  Exit status:
0 every test passed, 1 a test failed or errored, 2 usage or suite problem.

Every *.json under --suites is scanned first.  A field, action, matcher or
operator this port has not catalogued stops the run (exit 2, file named).
Catalogued forms that the Go runner ignores (the 'expect'/'capture' dialect,
'repeat', header {"$exists": ...}, ...) are run exactly as the Go runner runs
them, and each affected test gets 'note:' lines so a vacuous PASS is visible.
--scan-only prints the scan report and exits.

Semantics follow the Go code where it differs from the prose docs:
  * "~N" body matchers use a fixed 50% tolerance with no floor; --tolerance
    only affects timing_ms.approximate (which has a 100 ms floor).
  * Body path checks run only when the response body is a JSON object.
  * A step whose id repeats an earlier id (a second missing id included) is
    skipped; parallel_with groups run concurrently; a failing setup step
    makes the test an ERROR (counted as failed in the final line).
  * The HTTP client behaves like Go's: it follows up to 10 redirects, escapes
    paths, and measures a step's duration until the response headers arrive.
Tests run one at a time like the Go runner; --jobs N>1 is an opt-in deviation.
"""
import argparse
import dataclasses
import decimal
import functools
import http.client
import json
import math
import os
import platform
import re
import ssl
import sys
import time
import urllib.parse
from collections import Counter, defaultdict, namedtuple
from concurrent.futures import ThreadPoolExecutor

SUITE_VERSION, REPORT_SCHEMA_VERSION = "1.0", "1.1"
OJS_MEDIA_TYPE = "application/openjobspec+json"
APPROX_MATCHER_PCT = 50          # "~N" matcher tolerance (lib.DefaultTimingTolerancePct)
MIN_TIMING_TOLERANCE_MS = 100    # floor for timing_ms.approximate
EXT_LEVEL = 99                   # level "ext" / "extension"
LEVEL_NAMES = {0: "Core", 1: "Reliable", 2: "Scheduled", 3: "Orchestration", 4: "Advanced",
               EXT_LEVEL: "Extension"}
MISSING = object()               # an absent JSON key

# ---------------------------------------------------------------- Go value semantics
def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)

def is_go_int(v):
    return type(v) is int and -2**63 <= v < 2**63

def go_atoi(s):
    """strconv.Atoi: optional sign and ASCII digits within int64, else None."""
    ok = isinstance(s, str) and re.fullmatch(r"[+-]?[0-9]+", s)
    return int(s) if ok and -2**63 <= int(s) < 2**63 else None

class GoNilSlice(list):
    """An empty wildcard result: Go's nil []any, non-nil as a value but JSON null."""

class BadJSON:
    """A matcher whose template substitution produced invalid JSON text."""
    def __init__(self, text):
        self.text = text

_TYPE_NAMES = [(type(None), "<nil>", "null"), (bool, "bool", "boolean"), (str, "string", "string"),
               ((int, float), "float64", "number"), (list, "[]interface {}", "array"),
               (dict, "map[string]interface {}", "object")]

def go_type(v):
    return next((g for t, g, _ in _TYPE_NAMES if isinstance(v, t)), type(v).__name__)

def json_type(v):
    return next((j for t, _, j in _TYPE_NAMES if isinstance(v, t)), type(v).__name__)

def go_float(f, json_mode=False):
    """A float64 the way fmt's %v prints it, or the way encoding/json writes it."""
    f = float(f)
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    _, digits, exp10 = decimal.Decimal(repr(abs(f))).as_tuple()   # shortest round-trip digits
    ds = "".join(map(str, digits))
    dp, ds = len(ds) + exp10, ds.rstrip("0") or "0"                 # dp: decimal point position
    e = dp - 1
    expo = "%s%se%s%02d" % (ds[0], "." + ds[1:] if len(ds) > 1 else "", "-" if e < 0 else "+", abs(e))
    fixed = ("0." + "0" * -dp + ds if dp <= 0 else
             ds + "0" * (dp - len(ds)) if dp >= len(ds) else ds[:dp] + "." + ds[dp:])
    if json_mode:
        use_exp, expo = not 1e-6 <= abs(f) < 1e21, re.sub(r"e-0(\d)$", r"e-\1", expo)
    else:
        use_exp = e < -4 or e >= 6
    return ("-" if f < 0 else "") + (expo if use_exp else fixed)

def go_v(v):
    """fmt.Sprintf("%v", v) for decoded JSON values."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if is_num(v):
        return go_float(v)
    if isinstance(v, list):
        return "[" + " ".join(go_v(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_v(v[k])}" for k in sorted(v)) + "]"
    return str(v)

def _go_json_str(s):
    out = json.dumps(s, ensure_ascii=False)
    for ch in "<>&\u2028\u2029":
        out = out.replace(ch, "\\u%04x" % ord(ch))
    return out

def go_json(v):
    """json.Marshal: compact, sorted keys, HTML-escaped strings, Go number format."""
    if v is None or (isinstance(v, GoNilSlice) and not v):
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if is_num(v):
        return go_float(v, json_mode=True)
    if isinstance(v, str):
        return _go_json_str(v)
    if isinstance(v, list):
        return "[" + ",".join(go_json(x) for x in v) + "]"
    return "{" + ",".join(_go_json_str(k) + ":" + go_json(v[k]) for k in sorted(v)) + "}"

def nz(v, zero):
    """Go decodes a JSON null into a typed value as that type's zero value."""
    return zero if v is None else v

def q(s):
    """Go's %q, near enough."""
    return json.dumps(s, ensure_ascii=False)

def raw(v):
    return v.text if isinstance(v, BadJSON) else json.dumps(v, ensure_ascii=False)

def loads_go(text):
    """json.loads that, like Go, rejects NaN/Infinity and numbers beyond float64."""
    def in_range(s, convert):
        if math.isinf(float(s)):
            raise ValueError(f"number {s} out of range")
        return convert(s)

    def no_constants(name):
        raise ValueError(f"invalid JSON literal {name}")
    return json.loads(text, parse_constant=no_constants, parse_float=lambda s: in_range(s, float),
                      parse_int=lambda s: in_range(s, int))

@functools.lru_cache(maxsize=512)
def go_regex(pattern):
    """Compile an RE2 pattern for Python: ASCII classes; '$' and '\\z' mean end of text."""
    multiline = bool(re.match(r"\(\?[a-zA-Z]*m", pattern))

    def fix(m):
        token = m.group()               # an escape, a whole [...] class, or a bare '$'
        return r"\Z" if token == r"\z" or (token == "$" and not multiline) else token
    return re.compile(re.sub(r"\\.|\[\^?\]?(?:\\.|[^\]])*\]|\$", fix, pattern, flags=re.S), re.ASCII)

# ---------------------------------------------------------------- JSON paths (lib.ResolveJSONPath)
class PathError(Exception):
    pass

def split_json_path(path):
    """Split on dots that are not inside [...]; empty segments are kept (trailing one dropped)."""
    parts, cur, depth = [], "", 0
    for ch in path:
        if ch == "." and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += (ch == "[") - (ch == "]")
        cur += ch
    return parts + [cur] if cur else parts

def resolve_json_path(path, data):
    """$.a.b[0][1].c, [*] wildcards and [?(@.k=='v')] filters (first match).
    A missing object key yields None; a structural mismatch raises PathError."""
    parts = split_json_path(path[2:] if path.startswith("$.") else path)
    current = data
    for i, part in enumerate(parts):
        if part == "":
            continue
        field, bracket, rest = part.partition("[")
        rest = bracket + rest
        if field and not isinstance(current, dict):
            raise PathError(f"expected object at {q(field)}, got {go_type(current)}")
        if not rest:
            if field not in current:
                return None
            current = current[field]
            continue
        if field:
            current = current.get(field)
        if rest.startswith("[?(@."):
            close = rest.find(")]")
            if close < 0 or "==" not in rest[5:close]:
                raise PathError(f"unsupported filter expression in path {q(part)}")
            (key, _, want), rest = rest[5:close].partition("=="), rest[close + 2:]
            if not isinstance(current, list):
                raise PathError(f"expected array for filter at {q(part)}, got {go_type(current)}")
            want = want.strip("'\"")
            current = next((it for it in current if isinstance(it, dict) and key in it
                            and go_v(it[key]) == want), None)
            if rest.startswith(".") and current is not None:
                return resolve_json_path(rest[1:], current)
            continue
        while rest:
            close = rest.find("]")
            if not rest.startswith("[") or close < 0:
                raise PathError(f"malformed brackets in path {q(part)} at {q(rest)}")
            index, rest = rest[1:close], rest[close + 1:]
            if index == "*":
                if not isinstance(current, list):
                    raise PathError(f"expected array at {q(part)} for wildcard, got {go_type(current)}")
                remaining = ".".join(([rest] if rest else []) + parts[i + 1:])
                remaining = remaining[1:] if remaining.startswith(".") else remaining
                results = GoNilSlice()
                for item in current:
                    try:
                        val = resolve_json_path(remaining, item) if remaining else item
                    except PathError:
                        continue
                    if val is not None or not remaining:
                        results.append(val)
                return results
            n = go_atoi(index)
            if n is None:
                raise PathError(f"invalid array index in path {q(part)}: {q(index)}")
            if not isinstance(current, list):
                raise PathError(f"expected array at {q(part)}, got {go_type(current)}")
            if not 0 <= n < len(current):
                raise PathError(f"array index {n} out of bounds (length {len(current)}) at {q(part)}")
            current = current[n]
    return current

# ---------------------------------------------------------------- matchers (lib.MatchAssertion)
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
UUIDV7_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
DATETIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                         r"(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})")
RANGE_RE = re.compile(r"number:range\((-?[0-9]+(?:\.[0-9]+)?),[\t\n\f\r ]*(-?[0-9]+(?:\.[0-9]+)?)\)")
LENGTH_RE = re.compile(r"array:length\(([0-9]+)\)")
APPROX_RE = re.compile(r"~([0-9]+(?:\.[0-9]+)?)")
SIMPLE_MATCHERS = {  # name: (JSON kind, predicate, description)
    "string:nonempty": (str, bool, "non-empty string"), "string:non_empty": (str, bool, "non-empty string"),
    "string:uuid": (str, UUID_RE.fullmatch, "UUID"), "string:uuidv7": (str, UUIDV7_RE.fullmatch, "UUIDv7"),
    "string:datetime": (str, DATETIME_RE.fullmatch, "RFC 3339 datetime"),
    "number:positive": (float, lambda n: n > 0, "positive number"),
    "number:non_negative": (float, lambda n: n >= 0, "non-negative number"),
    "array:nonempty": (list, bool, "non-empty array"), "array:empty": (list, lambda a: not a, "empty array"),
}
LENGTH_PREFIXES = {"array:min_length:": True, "array:min:": True, "array:length:": False}  # True: at least
OPERATOR_PRIORITY = ("$exists", "$match", "$in", "$size", "$or", "$empty", "range")  # first present wins

def _desc(v):
    return f"{go_type(v)}: {go_v(v)}"

def match_assertion(m, actual):
    """None when `actual` satisfies matcher `m`, else a message saying why not."""
    if m is None:
        return None if actual is None else f"expected null, got {_desc(actual)}"
    if isinstance(m, str):
        return _match_string(m, actual)
    if isinstance(m, bool):
        if not isinstance(actual, bool):
            return f"expected boolean {go_v(m)}, got {_desc(actual)}"
        return None if actual == m else f"expected {go_v(m)}, got {go_v(actual)}"
    if is_num(m):
        if not is_num(actual):
            return f"expected number {go_float(m)}, got {_desc(actual)}"
        exp, n = float(m), float(actual)
        if exp.is_integer() and n.is_integer():
            return None if exp == n else f"expected {int(exp)}, got {int(n)}"
        return None if abs(exp - n) <= 1e-9 else f"expected {go_float(exp)}, got {go_float(n)}"
    if isinstance(m, list):
        if not isinstance(actual, list):
            return f"expected array, got {_desc(actual)}"
        if len(actual) != len(m):
            return f"expected array of length {len(m)}, got length {len(actual)}"
        errors = (match_assertion(x, a) for x, a in zip(m, actual))
        return next((f"[{i}]: {e}" for i, e in enumerate(errors) if e), None)
    if isinstance(m, dict):
        return _match_object(m, actual)
    return f"unknown matcher format: {raw(m)}"

def _match_length(count, actual, at_least):
    n, what = go_atoi(count), "at least" if at_least else "exactly"
    if n is None:
        return f"invalid array length {q(count)}"
    if not isinstance(actual, list):
        return f"expected array with {what} {n} elements, got {_desc(actual)}"
    good = len(actual) >= n if at_least else len(actual) == n
    return None if good else f"expected array with {what} {n} elements, got length {len(actual)}"

def _match_string(m, actual):
    if m == "any":
        return None
    if m == "absent":
        return None if actual is None else f"expected field to be absent, but got {_desc(actual)}"
    if m == "exists":
        return None if actual is not None else "expected field to exist, but it is missing"
    if m in SIMPLE_MATCHERS:
        kind, test, what = SIMPLE_MATCHERS[m]
        value = (float(actual) if is_num(actual) else None) if kind is float else (
            actual if isinstance(actual, kind) else None)
        if value is None:
            return f"expected {what}, got {_desc(actual)}"
        return None if test(value) else f"expected {what}, got {go_json(actual)}"
    for prefix, at_least in LENGTH_PREFIXES.items():
        if m.startswith(prefix):
            return _match_length(m[len(prefix):], actual, at_least)
    for prefix, negate in (("contains:", False), ("not_contains:", True)):
        if m.startswith(prefix):
            target = m[len(prefix):]
            if not isinstance(actual, list):
                return f"expected array for {prefix[:-1]} check, got {_desc(actual)}"
            if any(go_v(item) == target for item in actual) == negate:   # elements compared via %v
                return f"expected array to {'not ' if negate else ''}contain {q(target)}"
            return None
    if m.startswith("string:contains:"):
        sub = m[len("string:contains:"):]
        if not isinstance(actual, str):
            return f"expected string containing {q(sub)}, got {_desc(actual)}"
        return None if sub in actual else f"expected string containing {q(sub)}, got {q(actual)}"
    found = RANGE_RE.fullmatch(m)
    if found:
        lo, hi = float(found.group(1)), float(found.group(2))
        if is_num(actual) and lo <= actual <= hi:
            return None
        return f"expected number in range [{go_float(lo)}, {go_float(hi)}], got {_desc(actual)}"
    found = LENGTH_RE.fullmatch(m)
    if found:
        return _match_length(found.group(1), actual, False)
    found = APPROX_RE.fullmatch(m)
    if found:
        expected = float(found.group(1))
        if is_num(actual) and abs(actual - expected) <= expected * APPROX_MATCHER_PCT / 100.0:
            return None
        return f"expected ~{go_float(expected)} (tolerance {APPROX_MATCHER_PCT}%), got {_desc(actual)}"
    if m.startswith("string:pattern(") and m.endswith(")"):
        return _match_regex(m[len("string:pattern("):-1], actual)
    if not isinstance(actual, str):
        return f"expected string {q(m)}, got {_desc(actual)}"
    return None if actual == m else f"expected {q(m)}, got {q(actual)}"

def _match_regex(pattern, actual):
    if not isinstance(actual, str):
        return f"expected string matching pattern {q(pattern)}, got {_desc(actual)}"
    try:
        found = go_regex(pattern).search(actual)
    except re.error as e:
        return f"invalid regex pattern {q(pattern)}: {e}"
    return None if found else f"expected string matching pattern {q(pattern)}, got {q(actual)}"

def _match_object(exp, actual):
    op = next((k for k in OPERATOR_PRIORITY if k in exp), None)
    arg = exp.get(op)
    if op == "$exists":
        arg = nz(arg, False)
        if not isinstance(arg, bool):
            return f"invalid $exists value: {raw(arg)}"
        if arg != (actual is not None):
            return ("expected field to exist, but it is missing" if arg
                    else f"expected field to not exist, but got {_desc(actual)}")
        want = nz(exp.get("$type"), "")
        if "$type" in exp and isinstance(want, str) and json_type(actual) != want:
            return f"expected type {q(want)}, got {q(json_type(actual))}"
        return None
    if op == "$match":
        arg = nz(arg, "")
        return _match_regex(arg, actual) if isinstance(arg, str) else f"invalid $match value: {raw(arg)}"
    if op in ("$in", "$or"):
        if not isinstance(nz(arg, []), list):
            return f"invalid {op} value: {raw(arg)}"
        if any(match_assertion(o, actual) is None for o in nz(arg, [])):
            return None
        return f"value {go_json(actual)} " + ("not found in $in list " if op == "$in" else
                                              "did not match any $or alternative ") + raw(arg)
    if op == "$size":
        if not isinstance(actual, list):
            return f"expected array for $size, got {_desc(actual)}"
        size, gte = nz(arg, 0), None
        if isinstance(size, dict) and "$gte" in size:
            gte = nz(size["$gte"], 0)
        if is_go_int(size):
            return None if len(actual) == size else f"expected array of size {size}, got {len(actual)}"
        if is_go_int(gte):
            return None if len(actual) >= gte else f"expected array of size >= {gte}, got {len(actual)}"
        return f"unsupported $size format: {raw(arg)}"
    if op == "$empty":
        return None                    # Go accepts any value here
    if op == "range":
        bounds = nz(arg, {})
        if not isinstance(bounds, dict):
            return f"invalid range value: {raw(arg)}"
        if not is_num(actual):
            return f"expected number for range check, got {_desc(actual)}"
        lo, hi = (nz(bounds[k], 0) if k in bounds else None for k in ("min", "max"))
        if is_num(lo) and actual < lo:
            return f"expected number >= {go_float(lo)}, got {go_float(actual)}"
        if is_num(hi) and actual > hi:
            return f"expected number <= {go_float(hi)}, got {go_float(actual)}"
        return None
    if not isinstance(actual, dict):
        return f"expected object, got {_desc(actual)}"
    for key, sub in exp.items():       # nested matchers; extra actual fields are fine
        if sub == "absent":
            if key in actual:
                return f"field {q(key)}: expected absent, but field exists with value {go_v(actual[key])}"
        elif key not in actual:
            return f"field {q(key)}: expected to exist but is missing"
        elif err := match_assertion(sub, actual[key]):
            return f"field {q(key)}: {err}"
    return None

def evaluate_status(expected, actual):
    """Status: int, "one_of:a,b", another string matcher, or {"$in": [...]}."""
    expected = 0 if expected is None else expected          # Go: null decodes into int as 0
    if is_go_int(expected):
        return None if actual == expected else f"Expected status {expected}, got {actual}"
    if isinstance(expected, str) and expected.startswith("one_of:"):
        for code in expected[7:].split(","):
            n = go_atoi(code.strip())
            if n is None:
                return f"invalid status code {q(code.strip())} in one_of matcher"
            if n == actual:
                return None
        return f"expected status one of [{expected[7:]}], got {actual}"
    if isinstance(expected, str):
        return match_assertion(expected, float(actual))
    options = nz(expected.get("$in", MISSING), []) if isinstance(expected, dict) else MISSING
    if isinstance(options, list) and all(x is None or is_go_int(x) for x in options):
        codes = [nz(x, 0) for x in options]
        return None if actual in codes else f"Expected status in [{' '.join(map(str, codes))}], got {actual}"
    return f"Unknown status assertion format: {raw(expected)}"

def parse_header_matchers(spec):
    """Go's ParsedHeaderMatchers: {name: (value, is_regex)}; unsupported forms are dropped."""
    out = {}
    for name, v in (spec if isinstance(spec, dict) else {}).items():
        if v is None or isinstance(v, str):
            out[name] = (v or "", False)
        elif isinstance(v, dict) and all(x is None or isinstance(x, str) for x in v.values()):
            if "$match" in v or "$eq" in v:
                out[name] = (v.get("$match", v.get("$eq")) or "", "$match" in v)
    return out

def approx_timing_error(expected_ms, actual_ms, tolerance_pct):
    tolerance = max(expected_ms * tolerance_pct / 100.0, MIN_TIMING_TOLERANCE_MS)
    diff = abs(actual_ms - expected_ms)
    if diff <= tolerance:
        return None
    return (f"timing assertion failed: expected ~{expected_ms:.0f}ms (tolerance: {tolerance:.0f}ms), "
            f"got {actual_ms:.0f}ms (diff: {diff:.0f}ms)")

# ---------------------------------------------------------------- templates
TEMPLATE_RE = re.compile(r"\{\{steps\.([^.]+)\.response\.body\.([^}]+)\}\}")

def resolve_templates(text, step_results):
    """Expand {{steps.<id>.response.body.<path>}}; unresolvable ones stay verbatim."""
    def substitute(m):
        sr = step_results.get(m.group(1))
        try:
            val = resolve_json_path(m.group(2), sr.parsed) if sr and sr.parsed is not None else None
        except PathError:
            val = None
        if val is None:
            return m.group(0)
        if isinstance(val, str):
            return val
        if is_num(val):
            f = float(val)
            return str(int(f)) if f.is_integer() and -2**63 <= f < 2**63 else go_float(f)
        return go_json(val)
    return TEMPLATE_RE.sub(substitute, text)

def resolve_matcher_templates(matcher, step_results):
    """Expand templates inside the matcher's JSON text, then decode it again (as Go does)."""
    text = json.dumps(matcher, ensure_ascii=False)
    resolved = resolve_templates(text, step_results) if "{{steps." in text else text
    if resolved == text:
        return matcher
    try:
        return loads_go(resolved)
    except ValueError:
        return BadJSON(resolved)

# ---------------------------------------------------------------- test model and suite scan
@dataclasses.dataclass
class Step:
    id: str = ""
    action: str = ""
    path: str = ""
    headers: dict = dataclasses.field(default_factory=dict)
    body: object = MISSING
    delay_ms: int = 0
    duration_ms: int = 0
    assertions: dict = None
    parallel_with: str = ""

@dataclasses.dataclass
class TestCase:
    test_id: str
    name: str
    level: int
    category: str
    spec_ref: str
    steps: list
    setup: list = None
    teardown: list = None
    file_path: str = ""
    notes: list = dataclasses.field(default_factory=list)

# Field kinds as the Go structs declare them; a value of another kind fails to load (exit 2).
TOP_FIELDS = {"test_id": "str", "level": "any", "category": "str", "name": "str", "description": "str",
              "spec_ref": "str", "tags": "strlist", "setup": "object", "steps": "steps", "teardown": "object"}
STEP_FIELDS = {"id": "str", "action": "str", "intent": "str", "path": "str", "headers": "strmap",
               "body": "any", "delay_ms": "int", "duration_ms": "int", "assertions": "object",
               "description": "str", "parallel_with": "str"}
ASSERTION_FIELDS = {"status": "any", "status_in": "intlist", "body": "object", "body_absent": "strlist",
                    "headers": "any", "timing_ms": "object", "body_raw": "any", "body_contains": "strlist"}
TIMING_FIELDS = {"less_than": "int", "greater_than": "int", "approximate": "int"}
KIND_CHECKS = {
    "str": lambda v: isinstance(v, str), "int": is_go_int, "object": lambda v: isinstance(v, dict),
    "strlist": lambda v: isinstance(v, list) and all(x is None or isinstance(x, str) for x in v),
    "intlist": lambda v: isinstance(v, list) and all(x is None or is_go_int(x) for x in v),
    "strmap": lambda v: isinstance(v, dict) and all(x is None or isinstance(x, str) for x in v.values()),
    "steps": lambda v: isinstance(v, list) and all(x is None or isinstance(x, dict) for x in v),
    "any": lambda v: True,
}
# Fields seen in the official suites that the Go runner ignores -> note for affected tests
# (None: a comment, no note).  Anything not listed here or above is an error.
EXTRA_FIELDS = {
    "test": {"preconditions": "has 'preconditions' that the runner does not establish"},
    "step": {
        "expect": "'expect' blocks are ignored by the Go runner: those checks are not run",
        "capture": "'capture' is ignored by the Go runner: ${var} placeholders stay literal",
        "captures": "'captures' is ignored by the Go runner",
        "store": "'store' is ignored by the Go runner: $ref.x placeholders stay literal",
        "request": "'request' is ignored by the Go runner: no path or body is sent for it",
        "repeat": "'repeat' is ignored by the Go runner: the step is sent once",
        "raw_body": "'raw_body' is ignored by the Go runner: the request is sent without a body"},
    "assertions": {
        "status_one_of": "'status_one_of' is ignored by the Go runner: status is not checked",
        "exclusive_claim": "ASSERT 'exclusive_claim' check is ignored by the Go runner",
        "equality": "ASSERT 'equality' check is ignored by the Go runner",
        "body_comment": None, "headers_comment": None},
}
HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
VERBATIM_ACTIONS = {"ASSERT", "push", "get", "fetch", "ack"}   # sent as-is as the HTTP method
JSON_TYPES = {"string", "number", "boolean", "null", "array", "object"}

def known_string_matcher(m):
    if m in SIMPLE_MATCHERS or m in ("any", "absent", "exists") or m.startswith("string:contains:"):
        return True
    prefix = next((p for p in LENGTH_PREFIXES if m.startswith(p)), None)
    if prefix:
        return go_atoi(m[len(prefix):]) is not None
    if m.startswith("string:pattern(") and m.endswith(")"):
        return True
    return bool(RANGE_RE.fullmatch(m) or LENGTH_RE.fullmatch(m))

def path_syntax_error(path):
    """True if a [...] in the path is not [n], [*] or [?(@.k==v)]: the Go runner cannot resolve it."""
    return bool(re.search(r"[\[\]]", re.sub(r"\[(\*|[+-]?[0-9]+|\?\(@\..*?==.*?\))\]", "", path)))

class FileChecker:
    """Decodes one test file as the Go structs would and classifies what it uses.
    errors stop the run; warnings are Go-runner limits (checks that cannot pass as
    written); notes mark content the Go runner ignores."""

    def __init__(self, rel):
        self.rel, self.errors, self.warnings, self.notes = rel, [], [], {}

    def error(self, where, msg):
        self.errors.append(f"{self.rel}: {where}: {msg}")

    def warn(self, where, msg):
        self.warnings.append(f"{self.rel}: {where}: {msg}")

    def decode(self, obj, fields, kind, where):
        """Keep Go-known fields (names matched case-insensitively, like encoding/json)."""
        out, lower, extra = {}, {f.lower(): f for f in fields}, EXTRA_FIELDS.get(kind, {})
        for key, v in obj.items():
            name = key if key in fields else lower.get(key.lower())
            if name is None and key in extra:
                if extra[key]:
                    self.notes.setdefault(f"{kind}.{key}", extra[key])
            elif name is None:
                self.error(where, f"unknown {kind} field {q(key)}")
            elif v is not None and not KIND_CHECKS[fields[name]](v):
                self.error(where, f"field {q(key)}: cannot decode {json_type(v)} as {fields[name]}")
            else:
                out[name] = v
        return out

    def check(self, doc):
        if not isinstance(doc, dict):
            self.error("file", f"expected a JSON object, got {json_type(doc)}")
            return None
        top = self.decode(doc, TOP_FIELDS, "test", "test")
        level = self.parse_level(top.get("level"))
        blocks = {}
        for name in ("setup", "teardown"):
            if top.get(name) is not None:
                block = self.decode(top[name], {"steps": "steps"}, name, name)
                blocks[name] = self.steps(block.get("steps"), f"{name}.steps", main=False)
        steps = self.steps(top.get("steps"), "steps", main=True)
        if self.errors:
            return None
        return TestCase(top.get("test_id") or "", top.get("name") or "", level, top.get("category") or "",
                        top.get("spec_ref") or "", steps, blocks.get("setup"), blocks.get("teardown"),
                        notes=[self.notes[k] for k in sorted(self.notes)])

    def parse_level(self, v):
        if v is None or is_go_int(v):
            return v or 0
        if v in ("ext", "extension"):
            return EXT_LEVEL
        if go_atoi(v) is None:
            self.error("level", f"cannot parse level from {raw(v)}")
        return go_atoi(v) or 0

    def steps(self, items, where, main):
        out, seen = [], set()
        for i, item in enumerate(items or []):
            w = f"{where}[{i}]"
            if item is None:
                self.error(w, "step is null")
                continue
            d = self.decode(item, STEP_FIELDS, "step", w)
            step = Step(id=d.get("id") or "", action=d.get("action") or "", path=d.get("path") or "",
                        headers={k: v or "" for k, v in (d.get("headers") or {}).items()},
                        body=d.get("body", MISSING), delay_ms=d.get("delay_ms") or 0,
                        duration_ms=d.get("duration_ms") or 0, parallel_with=d.get("parallel_with") or "")
            self.check_action(step.action, w)
            if main and step.id in seen:
                self.notes.setdefault("step.id", "steps repeating an earlier step id (or a second "
                                      "missing id) are skipped by the Go runner")
            seen.add(step.id)
            sent = step.path + ("" if step.body is MISSING else json.dumps(step.body))
            if "${" in sent or "$ref." in sent:
                self.notes.setdefault("step.placeholder", "'${var}'/'$ref.x' placeholders are sent literally "
                                      "(only {{steps...}} templates are expanded)")
            if d.get("assertions") is not None:
                step.assertions = self.check_assertions(d["assertions"], w)
                if step.action.lower() == "wait" and step.assertions:
                    self.notes.setdefault("step.wait", "assertions on WAIT steps are not evaluated")
            out.append(step)
        return out

    def check_action(self, action, w):
        if action.lower() == "wait" or action in HTTP_METHODS:
            return
        if action == "":
            self.notes.setdefault("action.", "a step without an action is sent as GET (Go runner default)")
        elif action in VERBATIM_ACTIONS:
            self.notes.setdefault(f"action.{action}", f"action {q(action)} is sent verbatim as the HTTP "
                                  "method (Go runner behaviour)")
        else:
            self.error(w, f"unknown action {q(action)}")

    def check_assertions(self, obj, w):
        a = self.decode(obj, ASSERTION_FIELDS, "assertions", f"{w}.assertions")
        if a.get("timing_ms") is not None:
            a["timing_ms"] = self.decode(a["timing_ms"], TIMING_FIELDS, "timing_ms", f"{w}.timing_ms")
        if "status" in a:
            self.check_status(a["status"], w)
        for path, m in (a.get("body") or {}).items():
            if path == "$or":
                self.check_or(m, w)
            elif path.startswith("$") and not path.startswith("$."):
                self.error(w, f"body key {q(path)} is skipped silently by the Go runner")
            else:
                self.check_path(path, w)
                self.check_matcher(m, w)
        if a.get("headers") is not None:
            self.check_headers(a["headers"], w)
        if "body_raw" in a:
            self.notes.setdefault("assertions.body_raw", "'body_raw' is never evaluated by the Go runner")
        return a

    def check_status(self, s, w):
        if s is None or is_go_int(s):
            return
        if isinstance(s, str):
            if s.startswith("one_of:") and any(go_atoi(c.strip()) is None for c in s[7:].split(",")):
                self.warn(w, f"status {q(s)} has a code the Go runner cannot parse")
            elif not s.startswith("one_of:") and not known_string_matcher(s):
                self.warn(w, f"status {q(s)} is compared as a literal string by the Go runner (always fails)")
            return
        codes = s.get("$in") if isinstance(s, dict) else None
        if not (isinstance(codes, list) and all(map(is_go_int, codes))):
            self.warn(w, f"status {raw(s)} is a format the Go runner rejects (always fails)")
        elif set(s) != {"$in"}:
            self.error(w, f"status {raw(s)}: keys besides $in are ignored by the Go runner")

    def check_or(self, alternatives, w):
        if not isinstance(alternatives, list):
            self.error(w, "body.$or must be an array (the Go runner silently ignores it otherwise)")
            return
        for alt in alternatives:
            if not isinstance(alt, dict):
                self.error(w, f"body.$or alternative {raw(alt)} is not an object")
                continue
            for path, m in alt.items():
                if path.startswith("$") and not path.startswith("$."):
                    self.warn(w, f"$or alternative key {q(path)} is resolved as a JSON path by the Go runner "
                              f"(matches only a literal {q(path)} field)")
                else:
                    self.check_path(path, w)
                self.check_matcher(m, w)

    def check_headers(self, spec, w):
        if not isinstance(spec, dict):
            self.error(w, "assertions.headers must be an object (the Go runner silently ignores it otherwise)")
            return
        for name, v in spec.items():
            if isinstance(v, dict) and set(v) == {"$exists"}:
                self.notes.setdefault("headers.$exists", 'header checks of the form {"$exists": ...} are '
                                      "ignored by the Go runner")
            elif not (v is None or isinstance(v, str) or (isinstance(v, dict) and len(v) == 1
                      and set(v) <= {"$match", "$eq"} and isinstance(list(v.values())[0], str))):
                self.error(w, f"header check {q(name)}: {raw(v)} is a form the Go runner silently ignores")

    def check_path(self, path, w):
        if "{{" not in path and path_syntax_error(path):
            self.warn(w, f"path {q(path)} has brackets the Go runner cannot resolve; the check always fails")

    def check_matcher(self, m, w):
        if isinstance(m, list):
            for x in m:
                self.check_matcher(x, w)
        elif isinstance(m, str):
            if "{{" not in m and m.startswith(("string:", "number:", "array:")) and not known_string_matcher(m):
                self.error(w, f"unknown matcher {q(m)}")
        elif isinstance(m, dict):
            unknown = [k for k in m if k.startswith("$") and k not in OPERATOR_PRIORITY + ("$type", "$gte")]
            if unknown:
                self.error(w, f"unknown matcher operator {q(unknown[0])} in {raw(m)}")
                return
            op = next((k for k in OPERATOR_PRIORITY if k in m), None)
            if op is None:                               # a nested-object matcher
                stray = [k for k in m if k in ("$type", "$gte")]
                if stray:
                    self.warn(w, f"{raw(m)}: {stray[0]} is not a Go runner operator (matched as a nested "
                              "object field; always fails)")
                for v in m.values():
                    self.check_matcher(v, w)
                return
            ignored = set(m) - ({op, "$type"} if op == "$exists" else {op})
            if ignored:
                self.error(w, f"{raw(m)}: {sorted(ignored)} ignored by the Go runner next to {op}")
            if op == "$exists" and "$type" in m and m["$type"] not in JSON_TYPES:
                self.error(w, f"unknown $type {raw(m['$type'])}")
            if op in ("$in", "$or") and isinstance(m[op], list):
                self.check_matcher(m[op], w)
            if op == "$size" and isinstance(m[op], dict) and set(m[op]) != {"$gte"}:
                self.error(w, f"$size takes an integer or {{\"$gte\": n}}, got {raw(m[op])}")

@dataclasses.dataclass
class Scan:
    root: str
    files: int = 0
    tests: list = dataclasses.field(default_factory=list)
    errors: list = dataclasses.field(default_factory=list)
    warnings: list = dataclasses.field(default_factory=list)
    noted: dict = dataclasses.field(default_factory=lambda: defaultdict(set))   # note -> files

def scan_suites(root):
    """Load and check every *.json under root; tests come back sorted by test_id."""
    scan = Scan(root)
    if not os.path.isdir(root):
        scan.errors.append(f"{root}: not a directory")
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(f for f in filenames if f.endswith(".json")):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            scan.files += 1
            try:
                with open(path, "rb") as fh:
                    doc = loads_go(fh.read().decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                scan.errors.append(f"{rel}: invalid JSON: {e}")
                continue
            checker = FileChecker(rel)
            tc = checker.check(doc)
            scan.errors += checker.errors
            scan.warnings += checker.warnings
            for note in checker.notes.values():
                scan.noted[note].add(rel)
            if tc is not None:
                tc.file_path = path
                scan.tests.append(tc)
    scan.tests.sort(key=lambda t: t.test_id)
    return scan

def print_scan(scan, out):
    status = f"{len(scan.errors)} problem(s)" if scan.errors else "every file is understood"
    print(f"Scanned {scan.files} test files under {scan.root}: {status}", file=out)
    for e in scan.errors:
        print(f"  ERROR {e}", file=out)
    if scan.noted:
        print("  Known forms the Go runner ignores (run as the Go runner runs them; tests get a note):", file=out)
        for note, files in sorted(scan.noted.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            print(f"    {len(files):4d} file(s): {note}", file=out)
    if scan.warnings:
        counts = Counter(scan.warnings)
        print(f"  Warnings ({len(scan.warnings)}): Go runner limits; these checks fail or never match:", file=out)
        for w, n in counts.items():
            print(f"    {w}" + (f"  (x{n})" if n > 1 else ""), file=out)

# ---------------------------------------------------------------- HTTP (Go net/http client behaviour)
class RequestError(Exception):
    """The request could not be built (Go: http.NewRequest failed)."""

class BodyReadError(Exception):
    pass

TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
PATH_SAFE = "/:@!$&'()*+,;=-._~%[]"     # characters Go leaves unescaped in a request path

def canonical_header_key(key):
    if not TOKEN_RE.fullmatch(key):
        return key
    return "-".join(p[:1].upper() + p[1:].lower() for p in key.split("-"))

class HttpClient:
    def __init__(self, timeout):
        self.timeout = timeout

    def send(self, method, url, headers, body):
        """-> (status, {canonical name: [values]}, body bytes, ms until headers)."""
        if not TOKEN_RE.fullmatch(method):
            raise RequestError(f"net/http: invalid method {q(method)}")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
            raise RequestError("net/url: invalid control character in URL")
        start = time.monotonic()
        for hop in range(10):                            # Go follows at most 10 redirects
            resp, conn, resp_headers = self._round_trip(method, url, headers, body)
            location = (resp_headers.get("Location") or [""])[0]
            if resp.status not in (301, 302, 303, 307, 308) or not location:
                break
            conn.close()
            if hop == 9:
                raise OSError("stopped after 10 redirects")
            if resp.status in (301, 302, 303):          # Go: becomes GET without a body
                method, body = ("GET" if method not in ("GET", "HEAD") else method), None
            url = urllib.parse.urljoin(url, location)
        elapsed_ms = int((time.monotonic() - start) * 1000)
        try:
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            raise BodyReadError(str(e)) from e
        finally:
            conn.close()
        return resp.status, resp_headers, data, elapsed_ms

    def _round_trip(self, method, url, headers, body):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RequestError(f"unsupported URL {q(url)}")
        try:
            port = parts.port
        except ValueError as e:
            raise RequestError(str(e)) from e
        target = urllib.parse.quote(parts.path, safe=PATH_SAFE) or "/"
        if parts.query or url.split("#", 1)[0].endswith("?"):
            target += "?" + parts.query
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname, port, timeout=self.timeout,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(parts.hostname, port, timeout=self.timeout)
        try:
            conn.putrequest(method, target, skip_accept_encoding="Accept-Encoding" in headers)
            for k, v in headers.items():
                if k not in ("Host", "Content-Length", "Transfer-Encoding", "Trailer"):
                    conn.putheader(k, v.encode("utf-8"))
            if "User-Agent" not in headers:
                conn.putheader("User-Agent", "ojs-conformance-py/1.0")
            if body is not None or method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body or b"")))
            conn.endheaders(body)
            resp = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        resp_headers = {}
        for k, v in resp.getheaders():
            resp_headers.setdefault(canonical_header_key(k), []).append(v)
        return resp, conn, resp_headers

# ---------------------------------------------------------------- running tests
@dataclasses.dataclass
class StepResult:
    step_id: str
    status_code: int = 0
    headers: dict = dataclasses.field(default_factory=dict)
    body: bytes = b""
    duration_ms: int = 0
    parsed: dict = None                # the body if it decodes to a JSON object

    def header(self, name):
        return (self.headers.get(canonical_header_key(name)) or [""])[0]

    def to_json(self):
        text = self.body.decode("utf-8", "replace")
        try:
            body = loads_go(text) if text else None
        except ValueError:
            body = text
        return {"step_id": self.step_id, "status_code": self.status_code, "headers": self.headers,
                "body": body, "duration_ms": self.duration_ms}

Failure = namedtuple("Failure", "step_id field expected actual message", defaults=("", "", "", ""))

@dataclasses.dataclass
class TestResult:
    test_id: str
    name: str
    level: int
    category: str
    spec_ref: str
    file_path: str
    status: str = "pass"               # pass | fail | error (setup failed) | skip (never produced)
    duration_ms: int = 0
    failures: list = dataclasses.field(default_factory=list)
    step_results: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)
    trace: list = dataclasses.field(default_factory=list)

    def to_json(self, with_steps=True):
        d = {k: getattr(self, k) for k in ("test_id", "name", "level", "category", "spec_ref", "status",
                                           "duration_ms")}
        if self.failures:
            d["failures"] = [f._asdict() for f in self.failures]
        if with_steps and self.step_results:
            d["step_results"] = [sr.to_json() for sr in self.step_results]
        d["file_path"] = self.file_path
        if self.notes:
            d["notes"] = self.notes
        return d

def parse_body(data):
    try:
        value = loads_go(data.decode("utf-8", "replace")) if data else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None

def parallel_group(steps, trigger, members):
    """The consecutive steps that run together with `trigger` (Go's rule)."""
    group = []
    for s in steps:
        if s.id in members and (s.id == trigger or s.parallel_with == trigger or s.parallel_with):
            group.append(s)
        if group and s.id not in members:
            break
    return group

class Runner:
    def __init__(self, base_url, timeout=30.0, tolerance_pct=50.0, verbose=False):
        self.base_url, self.client = base_url, HttpClient(timeout)
        self.tolerance_pct, self.verbose = tolerance_pct, verbose

    def run_test(self, tc):
        start, step_results = time.monotonic(), {}
        result = TestResult(tc.test_id, tc.name, tc.level, tc.category, tc.spec_ref, tc.file_path,
                            notes=list(tc.notes))
        for step in tc.setup or []:
            step_results[step.id], failures = self.execute_step(step, step_results, result.trace)
            if failures:
                result.status = "error"
                result.failures = [Failure(step.id, message=f"Setup step failed: {failures[0].message}")]
                result.duration_ms = int((time.monotonic() - start) * 1000)
                return result
        result.step_results, result.failures = self.run_steps(tc.steps, step_results, result.trace)
        for step in tc.teardown or []:
            step_results[step.id] = self.execute_step(step, step_results, result.trace)[0]
        result.duration_ms = int((time.monotonic() - start) * 1000)
        result.status = "fail" if result.failures else "pass"
        return result

    def run_steps(self, steps, step_results, trace):
        """In order; a parallel_with group runs concurrently; a repeated step id is skipped."""
        members = {x for s in steps if s.parallel_with for x in (s.id, s.parallel_with)}
        executed, results, failures = set(), [], []

        def run_one(s):
            sr, f = self.execute_step(s, step_results, trace)
            step_results[s.id] = sr
            return sr, f
        for i, step in enumerate(steps):
            if step.id in executed:
                continue
            group = parallel_group(steps[i:], step.id, members) if step.id in members else []
            if len(group) > 1:
                with ThreadPoolExecutor(max_workers=len(group)) as pool:
                    outcomes = list(pool.map(run_one, group))
            else:
                group, outcomes = [step], [run_one(step)]
            for s, (sr, f) in zip(group, outcomes):
                results.append(sr)
                failures += f
                executed.add(s.id)
        return results, failures

    def execute_step(self, step, step_results, trace):
        if step.delay_ms > 0:
            time.sleep(step.delay_ms / 1000)
        if step.action.lower() == "wait":
            wait_ms = step.duration_ms if step.duration_ms > 0 else step.delay_ms
            time.sleep(max(wait_ms, 0) / 1000)
            trace.append(f"{step.id}: WAIT {wait_ms}ms")
            return StepResult(step.id), []
        path = resolve_templates(step.path, step_results)
        body = None if step.body is MISSING else resolve_templates(
            json.dumps(step.body, ensure_ascii=False), step_results).encode("utf-8")
        headers = {canonical_header_key(k): v for k, v in step.headers.items()}
        if not headers.get("Content-Type") and body is not None:
            headers["Content-Type"] = OJS_MEDIA_TYPE
        method, url = step.action or "GET", self.base_url + path
        try:
            status, resp_headers, data, ms = self.client.send(method, url, headers, body)
        except RequestError as e:
            return StepResult(step.id), [Failure(step.id, message=f"Failed to create request: {e}")]
        except BodyReadError as e:
            return StepResult(step.id), [Failure(step.id, message=f"Failed to read response body: {e}")]
        except (OSError, ValueError, http.client.HTTPException) as e:
            op = method[:1] + method[1:].lower()
            return StepResult(step.id), [Failure(step.id, message=f"HTTP request failed: {op} {q(url)}: {e}")]
        sr = StepResult(step.id, status, resp_headers, data, ms, parse_body(data))
        trace.append(f"{step.id}: {method} {path or '/'} -> {status} ({ms}ms)")
        return sr, (self.evaluate(step, sr, step_results) if step.assertions is not None else [])

    def evaluate(self, step, sr, step_results):
        """Check a step's assertions in the Go runner's order; returns Failures."""
        a, failures = step.assertions, []

        def fail(field, message, expected="", actual=""):
            failures.append(Failure(step.id, field, expected, actual, message))
        if "status" in a:
            err = evaluate_status(a["status"], sr.status_code)
            if err:
                fail("status", err, raw(a["status"]), str(sr.status_code))
        codes = [c or 0 for c in a.get("status_in") or []]
        if codes and sr.status_code not in codes:
            shown = "[" + " ".join(map(str, codes)) + "]"
            fail("status", f"Expected status in {shown}, got {sr.status_code}", f"one of {shown}",
                 str(sr.status_code))
        root = sr.parsed if sr.parsed is not None else {}       # Go's nil map reads as empty
        body = a.get("body")
        if body is not None and "$or" in body and not self.or_matches(body["$or"], root, step_results):
            fail("$or", "No $or alternative matched")
        if body is not None and sr.parsed is not None:
            for path, matcher in body.items():
                if path.startswith("$") and not path.startswith("$."):
                    continue                                     # "$or" and other operators
                matcher = resolve_matcher_templates(matcher, step_results)
                try:
                    val = resolve_json_path(resolve_templates(path, step_results), root)
                except PathError as e:
                    if matcher != "absent":
                        fail(path, f"Failed to resolve path {q(path)}: {e}")
                    continue
                err = match_assertion(matcher, val)
                if err:
                    fail(path, f"Assertion failed at {q(path)}: {err}", raw(matcher), go_json(val))
        for path in a.get("body_absent") or []:
            try:
                present = resolve_json_path(path or "", root) is not None
            except PathError:
                present = False
            if present:
                fail(path, f"Expected field {q(path)} to be absent")
        for name, (value, is_regex) in parse_header_matchers(a.get("headers")).items():
            actual = sr.header(name)
            try:
                good = go_regex(value).search(actual) is not None if is_regex else actual == value
            except re.error:
                good = False
            if not good:
                fail(f"header:{name}", f"Expected header {q(name)}={q(value)}, got {q(actual)}", value, actual)
        timing, d = a.get("timing_ms"), sr.duration_ms
        if timing is not None:
            lt, gt, approx = (timing.get(k) for k in ("less_than", "greater_than", "approximate"))
            if lt is not None and d >= lt:
                fail("timing", f"Expected response in < {lt}ms, took {d}ms", f"< {lt}ms", f"{d}ms")
            if gt is not None and d <= gt:
                fail("timing", f"Expected response in > {gt}ms, took {d}ms", f"> {gt}ms", f"{d}ms")
            err = approx_timing_error(float(approx), float(d), self.tolerance_pct) if approx is not None else None
            if err:
                fail("timing", err)
        for sub in a.get("body_contains") or []:
            sub = sub or ""
            if sub.encode("utf-8") not in sr.body:
                fail("body_contains", f"Response body does not contain {q(sub)}", f"body containing {q(sub)}")
        return failures

    @staticmethod
    def or_matches(alternatives, root, step_results):
        """Top-level body "$or": true if every check of some alternative holds."""
        alternatives = nz(alternatives, [])
        if not isinstance(alternatives, list):
            return True                                          # Go skips a malformed $or
        for alt in map(lambda a: nz(a, {}), alternatives):      # a null alternative matches
            if not isinstance(alt, dict):
                continue
            try:
                if all(match_assertion(resolve_matcher_templates(m, step_results), resolve_json_path(p, root))
                       is None for p, m in alt.items()):
                    return True
            except PathError:
                continue
        return False

# ---------------------------------------------------------------- reporting
def level_label(level):
    return "ext" if level == EXT_LEVEL else str(level)

def build_report(results, target, requested_level, duration_ms):
    """The Go SuiteReport shape, plus per-category counts and a per-test list."""
    key = {"pass": "passed", "fail": "failed", "skip": "skipped", "error": "errored"}
    blank = lambda: dict.fromkeys(("total", "passed", "failed", "skipped", "errored"), 0)  # noqa: E731
    summary, by_level, by_category = blank(), defaultdict(blank), defaultdict(blank)
    for r in results:
        for bucket in (summary, by_level[r.level], by_category[f"{level_label(r.level)}/{r.category}"]):
            bucket["total"] += 1
            bucket[key[r.status]] += 1
    for counts in by_level.values():
        counts["all_pass"] = counts["failed"] == 0 and counts["errored"] == 0
    conformant_level = -1
    for lvl in (lvl for lvl in range(5) if lvl in by_level):   # highest unbroken level run
        if not by_level[lvl]["all_pass"]:
            break
        conformant_level = lvl
    summary["by_level"] = {str(k): by_level[k] for k in sorted(by_level)}
    summary["by_category"] = dict(sorted(by_category.items()))
    report = {
        "test_suite_version": SUITE_VERSION, "target": target,
        "run_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "duration_ms": duration_ms,
        "requested_level": requested_level, "results": summary,
        "conformant": summary["failed"] == 0 and summary["errored"] == 0, "conformant_level": conformant_level,
        "failures": [r.to_json() for r in results if r.status in ("fail", "error")],
        "skipped": [r.to_json() for r in results if r.status == "skip"],
        "report_schema_version": REPORT_SCHEMA_VERSION,
        "environment": {"os": sys.platform, "arch": platform.machine(),
                        "python_version": platform.python_version()},
        "backend": {"name": "", "url": target},
        "runner": "ojs_conformance.py (Python port of ojs-conformance runner/http)",
        "tests": [r.to_json(with_steps=False) for r in results],
    }
    return {k: v for k, v in report.items() if v != [] or k == "tests"}

def format_result(r, verbose):
    label = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "skip": "SKIP"}[r.status]
    name = r.name if len(r.name) <= 40 else r.name[:37] + "..."
    lines = [f"{label:<6}{r.test_id:<15}{name:<41}{r.duration_ms}ms"]
    for f in r.failures:
        lines.append(f"      -> [{f.step_id}] {f.message}")
        if f.expected or f.actual:
            lines += [f"         expected: {f.expected}", f"         actual:   {f.actual}"]
    lines += [f"      note: {n}" for n in r.notes] + ([f"      step {t}" for t in r.trace] if verbose else [])
    return "\n".join(lines)

def print_summary(report, out):
    res, p = report["results"], functools.partial(print, file=out)
    p("\n" + "=" * 72 + "\n  OJS Conformance Test Results\n" + "=" * 72)
    p(f"  Target:    {report['target']}\n  Suite:     v{report['test_suite_version']}")
    p(f"  Run at:    {report['run_at']}\n  Duration:  {report['duration_ms']}ms\n\n  Level summary:")
    row = "  %-6s %-14s %6s %6s %6s %6s %6s  %s"
    p(row % ("LEVEL", "NAME", "TOTAL", "PASS", "FAIL", "ERROR", "SKIP", "STATUS"))
    for lvl, c in res["by_level"].items():
        p(row % (level_label(int(lvl)), LEVEL_NAMES.get(int(lvl), "Unknown"), c["total"], c["passed"],
                 c["failed"], c["errored"], c["skipped"], "PASS" if c["all_pass"] else "FAIL"))
    p("\n  Category summary:")
    row = "  %-6s %-28s %6s %6s %6s %6s %6s"
    p(row % ("LEVEL", "CATEGORY", "TOTAL", "PASS", "FAIL", "ERROR", "SKIP"))
    for key, c in res["by_category"].items():
        p(row % (*key.split("/", 1), c["total"], c["passed"], c["failed"], c["errored"], c["skipped"]))
    p(f"\n  Total: {res['total']} | Passed: {res['passed']} | Failed: {res['failed']} | "
      f"Skipped: {res['skipped']} | Errored: {res['errored']}")
    lvl = report["conformant_level"]
    level_text = f" (Level {lvl} - {LEVEL_NAMES[lvl]})" if lvl >= 0 else " (no level 0-4 tests run)"
    p("  Result: " + ("CONFORMANT" + level_text if report["conformant"] else
                      "PARTIAL CONFORMANCE" + level_text if lvl >= 0 else "NOT CONFORMANT"))
    noted = sum(1 for t in report["tests"] if t.get("notes"))
    if noted:
        p(f"  Note: {noted} test(s) contain content the Go runner ignores; their verdicts cover only "
          "what it checks (see 'note:' lines).")
    if report.get("failures"):
        p(f"\n  Failed tests ({len(report['failures'])}):")
        for f in report["failures"]:
            p(f"    - {f['test_id']}: {f['name']} [{f['spec_ref']}]")
    p("=" * 72)

def final_line(report):
    res = report["results"]
    line = f"{res['passed']} passed, {res['failed'] + res['errored']} failed"
    return line + (f", {res['skipped']} skipped" if res["skipped"] else "")

# ---------------------------------------------------------------- CLI
def level_arg(text):
    return EXT_LEVEL if text in ("ext", "extension") else int(text)

def parse_args(argv):
    p = argparse.ArgumentParser(description="OJS conformance HTTP test runner (Python port of the Go runner)")
    add = p.add_argument
    add("--url", "-url", default="", help="server base URL (default: $OJS_TEST_URL or http://localhost:8080)")
    add("--suites", "-suites", default="./suites", help="test suite directory (default ./suites)")
    add("--level", "-level", default=-1, type=level_arg, help="only this level: 0-4 or ext")
    add("--category", "-category", default="", help="only this category, e.g. retry")
    add("--test", "-test", default="", help="only this test id, e.g. L0-ENV-001")
    add("--output", "-output", choices=("table", "json"), default="table", help="stdout format")
    add("--report-file", "-report-file", default="", help="also write the JSON report to this file")
    add("--reset-url", "-reset-url", default="", help="URL POSTed before every test to reset server state")
    add("--verbose", "-verbose", action="store_true", help="list every step's request and status")
    add("--tolerance", "-tolerance", type=float, default=50.0, help="timing_ms.approximate tolerance %%")
    add("--timeout", "-timeout", type=float, default=30.0, help="HTTP timeout in seconds (default 30)")
    add("--jobs", "-jobs", type=int, default=1, help="tests run at once (default 1, as in the Go runner)")
    add("--scan-only", action="store_true", help="only scan the suites and print what was found")
    return p.parse_args(argv)

def main(argv=None):
    args = parse_args(argv)
    scan = scan_suites(args.suites)
    if args.scan_only or scan.errors:
        print_scan(scan, sys.stdout if args.scan_only else sys.stderr)
        if scan.errors and not args.scan_only:
            print("Error loading tests: fix or remove the files listed above.", file=sys.stderr)
        return 2 if scan.errors else 0
    base_url = (args.url or os.environ.get("OJS_TEST_URL") or "http://localhost:8080").rstrip("/")
    tests = [t for t in scan.tests if (args.level < 0 or t.level == args.level)
             and args.category in ("", t.category) and args.test in ("", t.test_id)]
    if not tests:
        print("No tests match the specified filters.", file=sys.stderr)
        return 2
    if args.jobs > 1 and args.reset_url:
        print("--jobs > 1 cannot be combined with --reset-url (a reset would hit running tests).", file=sys.stderr)
        return 2
    out = sys.stdout if args.output == "table" else sys.stderr
    print(f"Running {len(tests)} of {len(scan.tests)} tests against {base_url} "
          f"(scan: {scan.files} files understood, {len(scan.warnings)} warning(s))", file=out)
    if args.jobs > 1:
        print(f"WARNING: {args.jobs} tests run at once; the Go runner is sequential and suites share queues.",
              file=sys.stderr)
    runner, reset_client = Runner(base_url, args.timeout, args.tolerance, args.verbose), HttpClient(args.timeout)

    def run_one(tc):
        if args.reset_url:
            try:
                reset_client.send("POST", args.reset_url, {}, None)
            except Exception:           # Go ignores reset failures
                pass
        return runner.run_test(tc)
    start, results = time.monotonic(), []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for result in pool.map(run_one, tests):
            results.append(result)
            print(format_result(result, args.verbose), file=out, flush=True)
    report = build_report(results, base_url, args.level, int((time.monotonic() - start) * 1000))
    if args.report_file:
        try:
            with open(args.report_file, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(report, indent=2) + "\n")
        except OSError as e:
            print(f"Error writing report file: {e}", file=sys.stderr)
            return 2
        print(f"Report written to {args.report_file}", file=sys.stderr)
    if args.output == "json":
        print(json.dumps(report, indent=2))
        print(final_line(report), file=sys.stderr)
    else:
        print_summary(report, sys.stdout)
        print(final_line(report))
    return 0 if report["conformant"] else 1

if __name__ == "__main__":
    sys.exit(main())
