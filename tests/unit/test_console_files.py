"""The console's files, read as text: no inline script or style that a strict CSP would have to allow, no
handler attributes, and no API that parses a string as HTML. Sandbox-controlled text goes in as text."""

from __future__ import annotations

from html.parser import HTMLParser
from importlib.resources import files

CONSOLE = files("control_plane.console")
HTML_SINKS = ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
              "javascript:", "setAttribute(\"style\"", "setAttribute('style'"]  # fmt: skip


class InlineFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "style" or (tag == "script" and "src" not in names):
            self.found.append(f"inline <{tag}>")
        self.found += [f"<{tag} {name}>" for name in names if name == "style" or name.startswith("on")]


def test_the_page_has_no_inline_script_style_or_handlers() -> None:
    finder = InlineFinder()
    finder.feed((CONSOLE / "index.html").read_text())
    assert finder.found == []


def test_no_script_parses_strings_as_html() -> None:
    scripts = [f for f in CONSOLE.iterdir() if f.name.endswith(".js")]
    assert len(scripts) >= 5
    offenders = [(f.name, sink) for f in scripts for sink in HTML_SINKS if sink in f.read_text()]
    assert offenders == []
