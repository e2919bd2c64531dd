"""A choice's text decoded token by token while it is generated, for streaming."""

from __future__ import annotations

from collections.abc import Callable


class TextStream:
    """One choice's text, token by token. Each step decodes only the tokens since the last settled point (a token
    alone may be half a character: then it waits for the next), so a long completion costs no quadratic decoding."""

    def __init__(self, decode: Callable[[list[int]], str], stops: tuple[str, ...], hold: int):
        self.decode, self.stops, self.hold = decode, stops, hold
        self.ids: list[int] = []
        self.start = self.read = 0  # ids[start:read]: the tokens decoded last time, the context for the next
        self.text = ""  # the text settled so far (cut at a stop string once one appears)
        self.sent = 0  # characters of ``text`` handed out
        self.stopped = False

    def add(self, token: int) -> str:
        """The new text this token settles, minus what is held back ('' while a character is incomplete)."""
        if self.stopped:
            return ""
        self.ids.append(token)
        before = self.decode(self.ids[self.start : self.read])
        after = self.decode(self.ids[self.start :])
        if after.endswith("\ufffd") or not after.startswith(before):
            return ""
        self.text += after[len(before) :]
        self.start, self.read = self.read, len(self.ids)
        cuts = [self.text.find(s) for s in self.stops if s in self.text]
        if cuts:
            self.text, self.stopped = self.text[: min(cuts)], True
        end = len(self.text) if self.stopped else max(self.sent, len(self.text) - self.hold)
        piece, self.sent = self.text[self.sent : end], end
        return piece

    def rest(self, final: str) -> str:
        """What the finished completion's text adds to what was sent."""
        return final[self.sent :] if final.startswith(self.text[: self.sent]) else ""
