"""W&B's offline run file (``run-<id>.wandb``) read back: the records wandb-core wrote, decoded with wandb's own
protobuf messages. The file is a 7-byte header (``:W&B``, magic, version) then LevelDB-log framed records: in
32 KiB blocks, each chunk has a 7-byte header (CRC32C, little-endian length, type: 1 whole, 2 first, 3 middle,
4 last); a block's tail shorter than a header is zero padding."""

from __future__ import annotations

from pathlib import Path

BLOCK, HEADER = 32 * 1024, 7


def records(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    found, pending, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        if BLOCK - pos % BLOCK < HEADER:  # padding to the next block
            pos += BLOCK - pos % BLOCK
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        pending += data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            found.append(record)
            pending = b""
        elif kind == 0:
            break
    return found


def items(entries) -> dict:
    """A history, summary or config update as a dict: each item's key (``key``, or ``nested_key`` joined by "/"
    as wandb-core writes it) -> its decoded JSON value."""
    import json

    return {(item.key or "/".join(item.nested_key)): json.loads(item.value_json) for item in entries}
