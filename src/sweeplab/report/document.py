"""A report as a list of blocks, rendered three ways: Markdown, self-contained HTML, terminal text.

Saying what the report contains (``sections.py``) is kept apart from how each format writes it, so
report.md, report.html and the terminal never disagree.
"""
from __future__ import annotations

import base64
import html
import re
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


def to_markdown(blocks: list[Block], markup: bool = False) -> str:
    """Every text taken literally, as in HTML: a swept value or a dir name can hold ``<script>``,
    ``|`` or ``*``. ``markup=True`` writes the blocks' text as Markdown (code spans, links): only for
    text that holds no user string."""
    return render(blocks, MARKDOWN_AS_WRITTEN if markup else MARKDOWN, separator="\n\n")


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


# Markdown's inline markup: code, emphasis, table cells, math, and the "](" or "][" that makes a link
# or an image. An underscore inside a word is no emphasis in CommonMark, a bracket alone no link, and
# a tilde alone no strikethrough, so best_val_acc, "[-1.20, +0.20]" and "~18 seeds" stay as they are.
MARKDOWN_MARKUP = re.compile(r"[\\`*|$]|\](?=[(\[])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# What makes a line a heading, a list item, a numbered item or a rule: only where a text starts a line.
LINE_START_MARKUP = re.compile(r"^\d{0,9}([#=+-]|(?<=\d)[.)](?=\s|$))")


def literal_markdown(text: str, starts_line: bool = False) -> str:
    """``text`` shown as written by any Markdown viewer: on one line (a value's line break cannot
    start a heading or a list), HTML's special characters and Markdown's markup characters as
    character references, which every viewer shows as the character and none reads as markup (a
    backslash escape is not understood by every viewer for every character)."""
    text = MARKDOWN_MARKUP.sub(reference, html.escape(" ".join(str(text).split()), quote=False))
    if text.count("~") > 1:
        text = text.replace("~", "&#126;")
    return LINE_START_MARKUP.sub(reference, text) if starts_line else text


def reference(match: re.Match) -> str:
    """The last character matched as a character reference (``&#36;`` for ``$``)."""
    text = match.group()
    return f"{text[:-1]}&#{ord(text[-1])};"


def markdown_table(frame: pd.DataFrame, cell: Callable[[str], str]) -> str:
    """A pipe table (pandas' own ``to_markdown`` needs the tabulate package, not a dependency here);
    ``cell`` writes each header and cell on one line, its pipes escaped."""
    cells = frame.astype(object).where(frame.notna(), "").astype(str)
    lines = ["| " + " | ".join(cell(str(name)) for name in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for row in cells.itertuples(index=False):
        lines.append("| " + " | ".join(cell(text) for text in row) + " |")
    return "\n".join(lines)


def one_line_cell(text: str) -> str:
    """A cell of Markdown as written: a multi-line exception message becomes one line, a pipe no column."""
    return " ".join(text.split()).replace("|", r"\|")


def one_line_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Each text cell on one line, as in Markdown (pandas' ``to_html`` shows a line break as ``\\n``)."""
    return frame.map(lambda cell: " ".join(cell.split()) if isinstance(cell, str) else cell)


def html_image(image: Image) -> str:
    data = base64.b64encode(image.path.read_bytes()).decode("ascii")
    caption = html.escape(image.caption)
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
            f"<figcaption>{caption}</figcaption></figure>")


def bullet_lines(bullets: Bullets, text: Callable[[str], str] = str) -> str:
    return "\n".join(f"- {text(item)}" for item in bullets.items)


MARKDOWN: dict[type, Callable[[Any], str | None]] = {
    Heading: lambda block: f"{'#' * block.level} {literal_markdown(block.text)}",
    Paragraph: lambda block: literal_markdown(block.text, starts_line=True),
    Bullets: lambda block: bullet_lines(block, lambda item: literal_markdown(item, starts_line=True)),
    Table: lambda block: markdown_table(block.frame, literal_markdown),
    Image: lambda block: f"![{literal_markdown(block.caption)}]({block.path.name})",  # the name is a slug
}
MARKDOWN_AS_WRITTEN: dict[type, Callable[[Any], str | None]] = {
    Heading: lambda block: f"{'#' * block.level} {block.text}",
    Paragraph: lambda block: block.text,
    Bullets: bullet_lines,
    Table: lambda block: markdown_table(block.frame, one_line_cell),
    Image: lambda block: f"![{block.caption}]({block.path.name})",
}
HTML: dict[type, Callable[[Any], str | None]] = {
    Heading: lambda block: f"<h{block.level}>{html.escape(block.text)}</h{block.level}>",
    Paragraph: lambda block: f"<p>{html.escape(block.text)}</p>",
    Bullets: lambda block: "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in block.items) + "</ul>",
    Table: lambda block: one_line_cells(block.frame).to_html(index=False, na_rep="", border=0,
                                                             classes=block.css_class or None),
    Image: html_image,
}
TEXT: dict[type, Callable[[Any], str | None]] = {
    Heading: lambda block: f"== {block.text} ==",
    Paragraph: lambda block: block.text,
    Bullets: bullet_lines,
    Table: lambda block: block.frame.to_string(index=False, na_rep=""),
    Image: lambda block: None,
}
