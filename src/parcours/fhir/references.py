"""Reference rewriting for transaction Bundles: ``urn:uuid:`` fullUrls and conditional refs.

The walk copies the resource (the client's JSON is never mutated) and replaces every string
that is exactly a rewritten fullUrl (``Reference.reference``, but also ``uri``/``url``
elements such as ``Attachment.url`` or ``Provenance.target``), at any depth, extensions
included. In narrative ``div`` the fullUrls are replaced as substrings, which is cheap because
a div rarely contains one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["conditional_references", "rewrite"]

# "Patient?identifier=..." : a type name, a question mark, a query; no slash before the "?".
_CONDITIONAL = re.compile(r"^([A-Z][A-Za-z]+)\?(.+)$")


def rewrite(value: Any, mapping: Mapping[str, str]) -> Any:
    """A copy of ``value`` where every string equal to a key of ``mapping`` is replaced."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "div" and isinstance(item, str):
                out[key] = _rewrite_div(item, mapping)
            else:
                out[key] = rewrite(item, mapping)
        return out
    if isinstance(value, list):
        return [rewrite(item, mapping) for item in value]
    if isinstance(value, str):
        return mapping.get(value, value)
    return value


def _rewrite_div(div: str, mapping: Mapping[str, str]) -> str:
    if "urn:" not in div and "://" not in div:
        return div
    for old, new in mapping.items():
        if old in div:
            div = div.replace(old, new)
    return div


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                yield item
            else:
                yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def conditional_references(
    resource: Any, is_type: Callable[[str], bool]
) -> list[tuple[str, str, str]]:
    """``(reference, type, query)`` of each conditional reference (``Patient?identifier=x``)."""
    found: list[tuple[str, str, str]] = []
    for ref in _references(resource):
        match = _CONDITIONAL.match(ref)
        if match and is_type(match.group(1)):
            found.append((ref, match.group(1), match.group(2)))
    return found
