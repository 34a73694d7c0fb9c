#!/usr/bin/python3
"""Checks an SVG written by `epochd plot` against what the test expects.

Usage: test_plot_check.py FILE.svg EXPECT.json
The SVG must parse as XML (xml.etree), be self-contained, and hold: one
panel per expected metric; in each, exactly one series path per run; tick
labels whose range covers the data; every path point inside its panel's
frame; legend labels equal to the run names, in order. Exit 0 if all hold.
"""
import json
import math
import re
import sys
import xml.etree.ElementTree as ET

NS = "{http://www.w3.org/2000/svg}"


def fail(msg):
    print("test_plot_check: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    svg_path, expect_path = sys.argv[1], sys.argv[2]
    with open(expect_path) as f:
        want = json.load(f)
    try:
        root = ET.parse(svg_path).getroot()
    except ET.ParseError as e:
        fail("not well-formed XML: %s" % e)
    if root.tag != NS + "svg":
        fail("root element is %s" % root.tag)

    # self-contained: nothing fetched, nothing run
    for el in root.iter():
        tag = el.tag.replace(NS, "")
        if tag in ("script", "image", "foreignObject", "style"):
            fail("element <%s> is not allowed" % tag)
        for k, v in el.attrib.items():
            if "href" in k and not v.startswith("#"):
                fail("external reference %s=%s" % (k, v))
            if "url(" in v and not re.fullmatch(r"url\(#[\w-]+\)", v):
                fail("external url in %s=%s" % (k, v))

    if "title" in want:
        t = root.find(NS + "title")
        if t is None or t.text != want["title"]:
            fail("title %r, expected %r" % (None if t is None else t.text, want["title"]))

    panels = [g for g in root.iter(NS + "g") if g.get("class") == "panel"]
    keys = [g.get("data-panel") for g in panels]
    if keys != want["panels"]:
        fail("panels %s, expected %s" % (keys, want["panels"]))

    run_ids = [str(r["id"]) for r in want["runs"]]
    for g in panels:
        key = g.get("data-panel")
        paths = [p for p in g.iter(NS + "path") if p.get("class") == "series"]
        ids = [p.get("data-run") for p in paths]
        if sorted(ids) != sorted(run_ids) or len(ids) != len(set(ids)):
            fail("panel %s: series for runs %s, expected one each for %s" % (key, ids, run_ids))
        for p in paths:
            if p.get("data-panel") != key:
                fail("path of run %s in panel %s says panel %s" % (p.get("data-run"), key, p.get("data-panel")))

        # ticks cover the data
        for cls, rng in (("tick-y", want["y"][key]), ("tick-x", want["x"])):
            labels = [float(t.text) for t in g.iter(NS + "text") if t.get("class") == cls]
            if len(labels) < 2:
                fail("panel %s: %d %s labels" % (key, len(labels), cls))
            if labels != sorted(labels) and labels != sorted(labels, reverse=True):
                fail("panel %s: %s labels not monotonic: %s" % (key, cls, labels))
            if not (min(labels) <= rng[0] and max(labels) >= rng[1]):
                fail("panel %s: %s labels %s do not cover the data range %s" % (key, cls, labels, rng))
            steps = {round(b - a, 9) for a, b in zip(labels, labels[1:])}
            if len(steps) != 1:
                fail("panel %s: %s steps are not even: %s" % (key, cls, labels))
            step = steps.pop()
            mant = step / 10 ** math.floor(math.log10(step))
            if round(mant, 6) not in (1.0, 2.0, 5.0):
                fail("panel %s: %s step %g is not 1, 2 or 5 times a power of ten" % (key, cls, step))

        # every point inside the frame
        frame = [r for r in g.iter(NS + "rect") if r.get("class") == "frame"]
        if len(frame) != 1:
            fail("panel %s: %d frames" % (key, len(frame)))
        fx, fy = float(frame[0].get("x")), float(frame[0].get("y"))
        fw, fh = float(frame[0].get("width")), float(frame[0].get("height"))
        for p in paths:
            d = p.get("d")
            for cmd, x, y in re.findall(r"([ML])([-\d.]+) ([-\d.]+)", d):
                x, y = float(x), float(y)
                if not (fx <= x <= fx + fw and fy <= y <= fy + fh):
                    fail("panel %s run %s: point (%g, %g) outside the frame" % (key, p.get("data-run"), x, y))
            want_sub = want.get("subpaths", {}).get(key, {}).get(p.get("data-run"))
            if want_sub is not None and d.count("M") != want_sub:
                fail("panel %s run %s: %d subpaths, expected %d (d=%s)" % (key, p.get("data-run"), d.count("M"), want_sub, d))

        xl = [t.text for t in g.iter(NS + "text") if t.get("class") == "x-label"]
        if xl != [want["x_label"]]:
            fail("panel %s: x label %s, expected %s" % (key, xl, want["x_label"]))

    labels = [t.text for t in root.iter(NS + "text") if t.get("class") == "legend-label"]
    names = [r["name"] for r in want["runs"]]
    if labels != names:
        fail("legend %s, expected %s" % (labels, names))
    lids = [t.get("data-run") for t in root.iter(NS + "text") if t.get("class") == "legend-label"]
    if lids != run_ids:
        fail("legend ids %s, expected %s" % (lids, run_ids))

    if "distinct_styles" in want:
        g = panels[0]
        styles = [(p.get("stroke"), p.get("stroke-dasharray")) for p in g.iter(NS + "path") if p.get("class") == "series"]
        n = want["distinct_styles"]
        if len(set(styles[:n])) != n:
            fail("the first %d runs do not have distinct styles: %s" % (n, styles[:n]))
    print("test_plot_check: ok (%d panels, %d runs)" % (len(panels), len(run_ids)))


if __name__ == "__main__":
    main()
