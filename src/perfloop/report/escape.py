"""Escaping of names (and other stored text) where they leave perfloop: terminal, Markdown, XML.

Names are checked where they enter (configuration, imports: no control characters), but a store
may hold older rows or rows another tool wrote, so every output escapes them again for its own
medium:

- :func:`printable`: control and format characters (newlines, ANSI escapes, bidirectional
  overrides) shown as visible escapes, so a name can neither recolour a terminal nor start a new
  line in a CI log (where a line starting ``::error`` is a GitHub Actions command);
- :func:`terminal`: :func:`printable`, then Rich markup escaped, for ``console.print``;
- :func:`markdown`: :func:`printable`, then HTML and Markdown syntax escaped, for pull-request
  comments and job summaries;
- :func:`xml_text`: characters XML 1.0 cannot carry shown as visible escapes (ElementTree would
  write them raw, and the document would not be well-formed).
"""

from __future__ import annotations

import html
import re
import unicodedata


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
#: Characters with a meaning in (GitHub-flavoured) Markdown, escaped with a backslash.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")
#: Characters XML 1.0 does not allow (besides tab, newline, carriage return).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _visible(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """``text`` with every control or format character replaced by a visible escape."""
    value = str(text)
    if value.isprintable():
        return value
    return "".join(_visible(c) if unicodedata.category(c) in ("Cc", "Cf", "Cs") else c for c in value)


def terminal(text: object) -> str:
    """``text`` for Rich's ``console.print``: printable, with markup brackets escaped."""
    from rich.markup import escape as _rich_escape
    return _rich_escape(printable(text))


def markdown(text: object) -> str:
    """``text`` as literal Markdown text: printable, HTML escaped, Markdown syntax escaped."""
    return _MARKDOWN.sub(r"\\\1", html.escape(printable(text), quote=False))


def xml_text(text: object) -> str:
    """``text`` with the characters XML 1.0 cannot carry replaced by visible escapes."""
    return _NOT_XML.sub(lambda m: _visible(m.group()), str(text))


__all__ = ["markdown", "printable", "terminal", "xml_text"]
