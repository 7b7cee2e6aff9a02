"""A report as a list of blocks, rendered three ways: Markdown, self-contained HTML, terminal text.

Saying what the report contains (``sections.py``) is kept apart from how each format writes it, so
report.md, report.html and the terminal never disagree.
"""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Union

import pandas as pd


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    frame: pd.DataFrame  # already formatted for reading: strings, NaN for an empty cell
    css_class: str = ""


@dataclass
class Image:
    path: Path  # a PNG beside the report
    caption: str


Block = Union[Heading, Paragraph, Bullets, Table, Image]

STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; display: block; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; white-space: nowrap; }
th { background: #f3f3f3; }
figure { margin: 1em 0 2em; }
img { max-width: 100%; }
figcaption { font-size: 0.9em; color: #555; }
"""


def to_markdown(blocks: list[Block]) -> str:
    return render(blocks, MARKDOWN, separator="\n\n")


def to_html(blocks: list[Block], title: str) -> str:
    """One file with everything inside: CSS inline, plots as base64 PNG data URLs, no scripts."""
    body = render(blocks, HTML, separator="\n")
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n")


def to_text(blocks: list[Block]) -> str:
    """For the terminal: tables as pandas prints them; images are left out."""
    return render(blocks, TEXT, separator="\n\n")


def render(blocks: list[Block], writers: dict[type, Callable[[Any], str | None]], separator: str) -> str:
    written = (writers[type(block)](block) for block in blocks)
    return "".join(text + separator for text in written if text is not None)


def markdown_table(frame: pd.DataFrame) -> str:
    """A pipe table (pandas' own ``to_markdown`` needs the tabulate package, not a dependency here).
    A cell's newlines (a multi-line exception message) become spaces: a row must stay on one line."""
    cells = frame.astype(object).where(frame.notna(), "").astype(str)
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    for row in cells.itertuples(index=False):
        lines.append("| " + " | ".join(" ".join(cell.split()).replace("|", r"\|") for cell in row) + " |")
    return "\n".join(lines)


def html_image(image: Image) -> str:
    data = base64.b64encode(image.path.read_bytes()).decode("ascii")
    caption = html.escape(image.caption)
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
            f"<figcaption>{caption}</figcaption></figure>")


def bullet_lines(bullets: Bullets) -> str:
    return "\n".join(f"- {item}" for item in bullets.items)


MARKDOWN: dict[type, Callable[[Any], str | None]] = {
    Heading: lambda block: f"{'#' * block.level} {block.text}",
    Paragraph: lambda block: block.text,
    Bullets: bullet_lines,
    Table: lambda block: markdown_table(block.frame),
    Image: lambda block: f"![{block.caption}]({block.path.name})",
}
HTML: dict[type, Callable[[Any], str | None]] = {
    Heading: lambda block: f"<h{block.level}>{html.escape(block.text)}</h{block.level}>",
    Paragraph: lambda block: f"<p>{html.escape(block.text)}</p>",
    Bullets: lambda block: "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in block.items) + "</ul>",
    Table: lambda block: block.frame.to_html(index=False, na_rep="", border=0, classes=block.css_class or None),
    Image: html_image,
}
TEXT: dict[type, Callable[[Any], str | None]] = {
    Heading: lambda block: f"== {block.text} ==",
    Paragraph: lambda block: block.text,
    Bullets: bullet_lines,
    Table: lambda block: block.frame.to_string(index=False, na_rep=""),
    Image: lambda block: None,
}
