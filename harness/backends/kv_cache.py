"""A faster decode cache for the hf engine: transformers' DynamicCache layers given spare room, so a decode step
writes its keys and values in place instead of concatenating the whole cache."""

from __future__ import annotations

import functools


def make_room(past, tokens: int) -> None:
    """Give every plain layer of a transformers DynamicCache room for ``tokens`` more positions.

    DynamicLayer appends a decode step's keys and values with torch.cat, which copies the whole cache at every step
    of every layer: a quarter of decoding 64 rows of SmolLM2. A RoomyLayer writes the new positions into spare room
    instead. Sliding-window layers (Gemma 3's) keep their own update.
    """
    from transformers.cache_utils import DynamicLayer

    roomy = _roomy_layer_class()
    for index, layer in enumerate(past.layers):
        if type(layer) is DynamicLayer and layer.is_initialized:
            past.layers[index] = roomy.around(layer, tokens)


def join_left_padded(caches: list, widest: int):
    """The caches of consecutive runs of rows, prefilled apart, as one decode batch: every layer's keys and values
    those of all runs in order, each left-padded to the layer's width in ``caches[widest]``, whose bookkeeping
    (lengths, sliding windows) already matches the joined width. Returns that cache, changed in place."""
    import torch

    from harness.backends.batching import pad_left

    past = caches[widest]
    for index, layer in enumerate(past.layers):
        for name in ("keys", "values"):
            width = getattr(layer, name).shape[-2]
            joined = [pad_left(getattr(cache.layers[index], name), width, dim=-2) for cache in caches]
            setattr(layer, name, torch.cat(joined))
    return past


@functools.cache
def _roomy_layer_class():
    from transformers.cache_utils import DynamicLayer

    class RoomyLayer(DynamicLayer):
        """A DynamicLayer whose keys and values are views on the front of buffers with spare positions."""

        @classmethod
        def around(cls, layer, room: int):
            roomy = cls()
            roomy.device, roomy.is_initialized = layer.device, True
            roomy._allocate(layer.keys, layer.values, room)
            return roomy

        def _allocate(self, keys, values, room: int) -> None:
            used = keys.shape[-2]
            self._buffers = [
                tensor.new_empty((*tensor.shape[:-2], used + room, tensor.shape[-1])) for tensor in (keys, values)
            ]
            for buffer, tensor in zip(self._buffers, (keys, values)):
                buffer[..., :used, :] = tensor
            self._show(used)

        def _show(self, used: int) -> None:
            self.keys, self.values = (buffer[..., :used, :] for buffer in self._buffers)

        def update(self, key_states, value_states, *args, **kwargs):
            used, new = self.keys.shape[-2], key_states.shape[-2]
            if used + new > self._buffers[0].shape[-2]:
                self._allocate(self.keys, self.values, room=max(new, used))
            for buffer, states in zip(self._buffers, (key_states, value_states)):
                buffer[..., used : used + new, :] = states
            self._show(used + new)
            return self.keys, self.values

        def batch_select_indices(self, indices) -> None:
            self._buffers = [buffer[indices] for buffer in self._buffers]
            self._show(self.keys.shape[-2])

        def batch_repeat_interleave(self, repeats: int) -> None:
            self._buffers = [buffer.repeat_interleave(repeats, dim=0) for buffer in self._buffers]
            self._show(self.keys.shape[-2])

    return RoomyLayer
