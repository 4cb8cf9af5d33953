"""Validating the demo region's next batches in a second process while this one writes.

Validation (the R4 structure check of fhir.resources, then the French profiles) is about a
quarter of a bulk load's time, and the platform's validator is a pure function of the resource.
A pool process builds that validator from the same ``Settings`` (``build_platform``, so the
same wiring) and validates each batch ahead of the writer, as ``Transaction.create`` would
(``first_version``). It sends back the keys of the resources that passed *unchanged*: refused
ones, and ones the validator rewrote (an empty string dropped, a key-invalid INS removed and
handed to identity matching), are left out. The writer's validator skips a resource whose key
is among them and runs the store's validator on any other one, so every refusal and every side
effect of validation still happens in the writer, exactly as on the per-resource path.

The key is a digest of the resource's canonical JSON with ``meta.lastUpdated`` left out: the
writer stamps its own time, and the validator only checks that the stamp is an instant.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager

import orjson

from parcours.config import Settings
from parcours.store.bulk import first_version
from parcours.store.clock import now_ms
from parcours.store.repository import Resource, Validator

__all__ = ["prevalidated", "validation_key"]

log = logging.getLogger(__name__)

# Batches validated ahead of the writer: enough to never wait, few enough to bound memory.
AHEAD = 3
# The first batches the writer validates itself while the pool process starts (importing the
# platform takes seconds).
HEAD_START = 2

_validator: Validator | None = None


def validation_key(content: Resource) -> bytes:
    meta = content.get("meta")
    if isinstance(meta, dict) and "lastUpdated" in meta:
        content = {**content, "meta": {k: v for k, v in meta.items() if k != "lastUpdated"}}
    canonical = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(canonical, digest_size=16).digest()


def _start(settings: Settings) -> None:
    global _validator
    from parcours.platform import build_platform

    platform = build_platform(settings)
    _validator = platform.store.validator
    platform.close()


def _passed_unchanged(batch: Sequence[Resource]) -> set[bytes]:
    assert _validator is not None, "the pool's initializer builds the validator"
    passed = set()
    for res in batch:
        try:
            content = first_version(res, now_ms())
            key = validation_key(content)
            _validator(content)
        except Exception:  # refused here: the writer validates it and reports the refusal
            continue
        if validation_key(content) == key:
            passed.add(key)
    return passed


@contextmanager
def prevalidated(
    settings: Settings, batches: Sequence[Sequence[Resource]], store_validator: Validator
) -> Iterator[Callable[[int], Validator]]:
    """``validator_for(i)``: the validator of batch ``i`` (batches taken in order), skipping
    what the pool process validated and calling ``store_validator`` on the rest.

    The pool process is started with ``spawn``: the program's main module must be importable
    without side effects (the usual ``if __name__ == "__main__"`` guard)."""
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(1, context, initializer=_start, initargs=(settings,))
    try:
        queued: deque[Future[set[bytes]]] = deque()
        submitted = HEAD_START

        def top_up(upto: int) -> None:
            nonlocal submitted
            while submitted < min(upto, len(batches)):
                try:
                    queued.append(pool.submit(_passed_unchanged, batches[submitted]))
                except Exception as exc:  # a broken pool: _result falls back on the writer
                    failed: Future[set[bytes]] = Future()
                    failed.set_exception(exc)
                    queued.append(failed)
                submitted += 1

        def validator_for(index: int) -> Validator:
            if index < HEAD_START:
                return store_validator
            top_up(index + 1 + AHEAD)
            passed = _result(queued.popleft())

            def validate(content: Resource) -> None:
                if validation_key(content) not in passed:
                    store_validator(content)

            return validate

        top_up(HEAD_START + AHEAD)
        yield validator_for
    finally:
        # A load that failed leaves batches queued: they are not worth waiting for.
        pool.shutdown(cancel_futures=True)


def _result(future: Future[set[bytes]]) -> set[bytes]:
    try:
        return future.result()
    except Exception as exc:  # the pool failed: the writer validates everything itself
        log.warning("demo pre-validation unavailable (%s); validating in the writer", exc)
        return set()
