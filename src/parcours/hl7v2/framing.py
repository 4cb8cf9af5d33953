"""MLLP framing (HL7 v2.5.1 Appendix C): ``0x0B`` message ``0x1C 0x0D``.

``FrameDecoder`` is fed whatever the socket returns (partial frames, several frames per
read) and yields complete frames. Bytes outside a frame are counted and dropped. A frame
that grows past the size limit is not buffered further: the decoder keeps its first bytes
(enough to read MSH and answer with the right MSA-2) and reports it as oversized once its
end arrives, so the connection stays usable.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["END", "START", "Frame", "FrameDecoder", "frame"]

START = b"\x0b"
END = b"\x1c\r"
_HEAD_KEPT = 8192


def frame(message: bytes) -> bytes:
    return START + message + END


@dataclass(frozen=True, slots=True)
class Frame:
    data: bytes  # whole message, or its first bytes when ``oversized``
    size: int
    oversized: bool = False


class FrameDecoder:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._buf = bytearray()
        self._in_frame = False
        self._oversized = False
        self._waiting_cr = False  # 0x1C was the last byte of the previous read
        self._size = 0
        self.dropped_bytes = 0
        self.abandoned_frames = 0

    @property
    def pending(self) -> bool:
        """True while a frame has started and not ended (a truncated frame at close)."""
        return self._in_frame

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        pos = 0
        n = len(data)
        if self._waiting_cr and n:
            self._waiting_cr = False
            if data[:1] == b"\r":
                frames.append(self._finish())
                pos = 1
            elif data[:1] == START:
                frames.append(self._finish())
            else:
                self._append(b"\x1c")
        while pos < n:
            if not self._in_frame:
                start = data.find(START, pos)
                if start < 0:
                    self.dropped_bytes += n - pos
                    break
                self.dropped_bytes += start - pos
                self._begin()
                pos = start + 1
                continue
            end = data.find(b"\x1c", pos)
            restart = data.find(START, pos, None if end < 0 else end)
            if restart >= 0:
                # A new start block inside a frame: the sender gave up on the previous one
                # (it was never acknowledged, so it will be resent); start over.
                self.abandoned_frames += 1
                self._begin()
                pos = restart + 1
                continue
            if end < 0:
                self._append(data[pos:])
                break
            self._append(data[pos:end])
            if end + 1 == n:
                self._waiting_cr = True
                break
            if data[end + 1 : end + 2] == b"\r":
                frames.append(self._finish())
                pos = end + 2
            elif data[end + 1 : end + 2] == START:
                # Some senders omit the final 0x0D: 0x1C directly followed by the next start
                # block can only be an end marker.
                frames.append(self._finish())
                pos = end + 1
            else:
                # A lone 0x1C inside a message is data, not an end marker.
                self._append(b"\x1c")
                pos = end + 1
        return frames

    def _begin(self) -> None:
        self._in_frame = True
        self._oversized = False
        self._size = 0
        self._buf.clear()

    def _append(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._size += len(chunk)
        if self._oversized:
            return
        if self._size > self.max_bytes:
            self._oversized = True
            keep = _HEAD_KEPT - len(self._buf)
            if keep > 0:
                self._buf.extend(chunk[:keep])
            else:
                del self._buf[_HEAD_KEPT:]
            return
        self._buf.extend(chunk)

    def _finish(self) -> Frame:
        done = Frame(bytes(self._buf), self._size, self._oversized)
        self._buf.clear()
        self._in_frame = False
        self._oversized = False
        self._size = 0
        return done
