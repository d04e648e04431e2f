"""A validator for the common JUnit XML schema (the one Jenkins, GitLab and most CI tools read),
written from its element and attribute rules:

  testsuites  attrs: name, tests, failures, errors, skipped, disabled, time; children: testsuite*
  testsuite   required: name, tests; optional: failures, errors, skipped, disabled, time, timestamp,
              hostname, id, package, file, log, url, assertions;
              children in order: properties?, testcase*, system-out?, system-err?
  properties  children: property* (required: name, value)
  testcase    required: name; optional: classname, time, assertions, status, class, file, line, log,
              url, timestamp; children: at most one of failure / error / skipped, then system-out?,
              system-err?
  failure, error  optional: message, type; skipped  optional: message
  counts      a suite's tests / failures / errors / skipped equal what its testcases hold; the root's
              equal the sums over its suites; times are non-negative decimals; timestamps ISO 8601
              without a zone.

`validate(path)` returns a list of problems (empty: valid) and also checks that junitparser reads the
file with the same counts.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import junitparser

SUITES_ATTRS = {"name", "tests", "failures", "errors", "skipped", "disabled", "time"}
SUITE_REQ = {"name", "tests"}
SUITE_ATTRS = SUITE_REQ | {"failures", "errors", "skipped", "disabled", "time", "timestamp", "hostname", "id",
                           "package", "file", "log", "url", "assertions"}
CASE_REQ = {"name"}
CASE_ATTRS = CASE_REQ | {"classname", "time", "assertions", "status", "class", "file", "line", "log", "url",
                         "timestamp"}
RESULT_ATTRS = {"failure": {"message", "type"}, "error": {"message", "type"}, "skipped": {"message"}}
SUITE_ORDER = ["properties", "testcase", "system-out", "system-err"]
DECIMAL = re.compile(r"^\d+(\.\d+)?$")
INT = re.compile(r"^\d+$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")


def _attrs(el: ET.Element, allowed: set[str], required: set[str], where: str, out: list[str]) -> None:
    for a in required - set(el.attrib):
        out.append(f"{where}: missing required attribute {a!r}")
    for a in set(el.attrib) - allowed:
        out.append(f"{where}: attribute {a!r} not in the schema")
    for a in ("tests", "failures", "errors", "skipped", "disabled", "assertions"):
        if a in el.attrib and not INT.match(el.attrib[a]):
            out.append(f"{where}: {a}={el.attrib[a]!r} is not a non-negative integer")
    if "time" in el.attrib and not DECIMAL.match(el.attrib["time"]):
        out.append(f"{where}: time={el.attrib['time']!r} is not a non-negative decimal")
    if "timestamp" in el.attrib and not ISO.match(el.attrib["timestamp"]):
        out.append(f"{where}: timestamp={el.attrib['timestamp']!r} is not ISO 8601 without a zone")


def _case(tc: ET.Element, where: str, out: list[str]) -> str | None:
    _attrs(tc, CASE_ATTRS, CASE_REQ, where, out)
    results = [c for c in tc if c.tag in RESULT_ATTRS]
    if len(results) > 1:
        out.append(f"{where}: more than one of failure/error/skipped")
    seen_out = False
    for c in tc:
        if c.tag in RESULT_ATTRS:
            if seen_out:
                out.append(f"{where}: <{c.tag}> after system-out/err")
            _attrs(c, RESULT_ATTRS[c.tag], set(), f"{where}/{c.tag}", out)
            if len(c):
                out.append(f"{where}/{c.tag}: has child elements")
        elif c.tag in ("system-out", "system-err"):
            seen_out = True
        else:
            out.append(f"{where}: unexpected child <{c.tag}>")
    return results[0].tag if results else None


def validate(path: str | Path) -> list[str]:
    out: list[str] = []
    root = ET.parse(path).getroot()
    if root.tag != "testsuites":
        return [f"root is <{root.tag}>, expected <testsuites>"]
    _attrs(root, SUITES_ATTRS, set(), "testsuites", out)
    sums = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for i, suite in enumerate(root):
        where = f"testsuite[{i}]"
        if suite.tag != "testsuite":
            out.append(f"testsuites: unexpected child <{suite.tag}>")
            continue
        _attrs(suite, SUITE_ATTRS, SUITE_REQ, where, out)
        order = [SUITE_ORDER.index(c.tag) if c.tag in SUITE_ORDER else -1 for c in suite]
        if -1 in order:
            out.append(f"{where}: unexpected child element(s)")
        if order != sorted(order):
            out.append(f"{where}: children out of order (want properties, testcase*, system-out, system-err)")
        for tag in ("properties", "system-out", "system-err"):
            if len(suite.findall(tag)) > 1:
                out.append(f"{where}: more than one <{tag}>")
        for props in suite.findall("properties"):
            for p in props:
                if p.tag != "property":
                    out.append(f"{where}/properties: unexpected child <{p.tag}>")
                _attrs(p, {"name", "value"}, {"name", "value"}, f"{where}/property", out)
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for j, tc in enumerate(suite.findall("testcase")):
            kind = _case(tc, f"{where}/testcase[{j}]", out)
            counts["tests"] += 1
            if kind:
                counts[{"failure": "failures", "error": "errors", "skipped": "skipped"}[kind]] += 1
        for k, v in counts.items():
            if int(suite.get(k, "0")) != v:
                out.append(f"{where}: {k}={suite.get(k)} but its testcases hold {v}")
            sums[k] += v
    for k, v in sums.items():
        if k in root.attrib and int(root.get(k)) != v:
            out.append(f"testsuites: {k}={root.get(k)} but the suites hold {v}")
    xml = junitparser.JUnitXml.fromfile(str(path))
    parsed = list(xml)
    if len(parsed) != len(root):
        out.append(f"junitparser reads {len(parsed)} suites, the file has {len(root)}")
    for s in parsed:
        n = sum(1 for _ in s)
        if n != s.tests:
            out.append(f"junitparser: suite {s.name!r} has {n} cases but tests={s.tests}")
    return out
