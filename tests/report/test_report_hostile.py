"""Report inputs are data, never markup: hostile swept values and a hostile sweep dir name go through
every format the report writes (report.md, report.html, summary.csv, jobs.csv, PNG labels) and are
shown as written, never run, rendered as markup or parsed as math."""
from __future__ import annotations

import html
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.cbook
import pandas as pd
import pytest
from matplotlib.text import Text

from conftest import missing_environment, ok_metrics, write_job
from sweeplab.report.build import write_report
from sweeplab.report.collect import collect
from sweeplab.report.plots import accuracy_vs_param, learning_curves
from sweeplab.report.stats import summarize

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "runs/$x^{$",
    "a|b|c",
    "`rm -rf`",
    "line1\nline2",
    "**bold** _em_ [link](http://x) ~~del~~",
    "# heading",
    "&lt;b&gt;",
]
SWEEP_NAME = "s<b>`x`|$y$_z_"  # a dir name can hold all of these


def one_line(text: str) -> str:
    return " ".join(text.split())


class Tags(HTMLParser):
    """The tags of an HTML page and its text, entities resolved."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory) -> Path:
    sweep = tmp_path_factory.mktemp("hostile") / SWEEP_NAME
    for job, value in enumerate(HOSTILE):
        for seed in (0, 1):
            write_job(sweep, 2 * job + seed, [f"data.root='{value}'", f"seed={seed}"],
                      ok_metrics(0.5 + job / 100 + seed / 1000, 0.5))
    write_report([sweep], sweep)
    return sweep


def assert_no_markup(page: str, allowed: set[str]) -> str:
    """The tags of ``page`` are the report's own ones only; returns its text, one line."""
    parsed = Tags(page)
    assert {tag for tag, _ in parsed.tags} <= allowed, {tag for tag, _ in parsed.tags} - allowed
    for tag, attrs in parsed.tags:
        assert "onerror" not in attrs, (tag, attrs)
        if tag == "img":
            assert attrs["src"].endswith(".png") or attrs["src"].startswith("data:image/png;base64,"), attrs
    return one_line("".join(parsed.text))


def test_markdown_shows_every_value_as_written(hostile_report):
    markdown = import_markdown()
    page = markdown.markdown((hostile_report / "report.md").read_text(), extensions=["tables"])

    text = assert_no_markup(page, allowed={"h1", "h2", "p", "ul", "li", "table", "thead", "tbody", "tr", "th",
                                           "td", "img"})
    for value in [*HOSTILE, SWEEP_NAME]:
        assert one_line(value) in text, value
    for table in page.split("<table>")[1:]:  # a pipe in a value makes no extra column
        rows = table.split("</table>")[0].split("<tr>")[1:]
        assert len({row.count("<td") + row.count("<th") for row in rows}) == 1


def import_markdown():
    try:
        import markdown
    except ImportError:
        missing_environment("the Markdown package (pip install markdown) renders report.md in this test")
    return markdown


def test_html_shows_every_value_as_written(hostile_report):
    page = (hostile_report / "report.html").read_text()
    text = assert_no_markup(page, allowed={"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "ul",
                                           "li", "table", "thead", "tbody", "tr", "th", "td", "figure", "img",
                                           "figcaption"})
    for value in [*HOSTILE, SWEEP_NAME]:
        assert one_line(value) in text, value
    assert html.escape(HOSTILE[0]) in page


def test_csv_files_hold_every_value_unchanged(hostile_report):
    for name in ("jobs.csv", "summary.csv"):
        values = pd.read_csv(hostile_report / name)["data.root"]
        assert sorted(set(values)) == sorted(HOSTILE), name


def test_plot_labels_are_drawn_as_written_never_as_math(hostile_report):
    assert (hostile_report / "accuracy_vs_data.root.png").stat().st_size > 1000
    sweeps = collect([hostile_report])
    summary = summarize(sweeps.jobs, sweeps.swept)
    figures = [accuracy_vs_param(summary, "data.root", sweeps.swept),
               learning_curves(sweeps.histories, sweeps.jobs, summary, SWEEP_NAME)]
    for figure in figures:
        figure.canvas.draw()  # what savefig draws: a value that mathtext read would raise here
        texts = [text.get_text() for text in figure.findobj(Text) if text.get_text()]
        assert not [text for text in texts if matplotlib.cbook.is_math_text(text)]
    labels = [text.get_text() for text in figures[0].axes[0].get_xticklabels()]
    assert r"runs/\$x^{\$" in labels  # drawn as runs/$x^{$
