"""Text that PostgreSQL cannot store, and showing untrusted text in messages.

PostgreSQL's text and jsonb refuse a NUL character (psycopg raises DataError before the query
is even sent), and a lone UTF-16 surrogate ("\\ud800", which JSON's "\\ud800" escape decodes
to) is not Unicode at all, so it cannot be encoded to UTF-8. Either one reaching the database
is a server error; every edge checks its input with these helpers first and answers with a
clear error naming the field instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

NUL_REASON = "contains a NUL character (\\u0000), which cannot be stored"
SURROGATE_REASON = "contains a lone surrogate (such as \\ud800), which is not valid Unicode"
# JSON deeper than this is refused (a variant is three levels: variants[0].config.knob);
# it also keeps the walk below far away from any recursion or memory limit.
MAX_JSON_DEPTH = 32
# Values and keys visited per field; more than this is refused rather than walked.
MAX_JSON_NODES = 10_000
SHOWN_CHARACTERS = 64


def unstorable_text_reason(value: str) -> str | None:
    """Why PostgreSQL cannot store `value` as text or inside jsonb, or None if it can."""
    if "\x00" in value:
        return NUL_REASON
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE_REASON
    return None


def shown(value: Any, limit: int = SHOWN_CHARACTERS) -> str:
    """Untrusted text made safe for one line of a message: control characters and lone
    surrogates escaped (so a NUL or a newline cannot reach a log line, a terminal or the
    database through the message), cut to `limit` characters."""
    text = value if isinstance(value, str) else repr(value)
    cut = len(text) > limit
    escaped = "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text[:limit]
    )
    return escaped + ("…" if cut else "")


def path_part(key: str) -> str:
    """A JSON object key as a part of a field path (`variants[0].config.<key>`)."""
    return shown(key)


def json_problems(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(field path, reason) for every string (object keys included) PostgreSQL cannot store,
    for nesting deeper than MAX_JSON_DEPTH, and for more than MAX_JSON_NODES values.

    Iterative, so that no input can exhaust the interpreter's recursion limit.
    """
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    seen = 1  # values put on the stack so far
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, str):
            reason = unstorable_text_reason(item)
            if reason:
                yield where, reason
            continue
        if not isinstance(item, dict | list):
            continue
        if depth >= MAX_JSON_DEPTH:
            yield where, f"is nested too deeply: at most {MAX_JSON_DEPTH} levels"
            continue
        seen += len(item)
        if seen > MAX_JSON_NODES:
            yield path, f"is too large: at most {MAX_JSON_NODES} values"
            return
        if isinstance(item, list):
            children = [(child, f"{where}[{index}]") for index, child in enumerate(item)]
        else:
            children = []
            for key, child in item.items():
                reason = unstorable_text_reason(key) if isinstance(key, str) else None
                if reason:
                    yield where, f"has a key that {reason}"
                    continue
                children.append((child, f"{where}.{path_part(key)}"))
        # Reversed, so that problems come out in document order.
        stack.extend((child, where_, depth + 1) for child, where_ in reversed(children))
