"""The pure scoring domain: data and ``now`` in, values out; no I/O, no clock."""
