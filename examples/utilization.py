# A worker's side of aerie's utilization counters (utilization = yes), in Python 3.
import mmap, os, struct

class Utilization:
    """Counters in the segment named by AERIE_UTILIZATION=PATH:OFFSET (4 native u64)."""
    FIELDS = ("connections_active", "connections_total", "requests_active", "requests_total")

    def __init__(self, value=os.environ.get("AERIE_UTILIZATION")):
        self.map = None
        if value:
            path, offset = value.rsplit(":", 1)
            base = int(offset) - int(offset) % mmap.PAGESIZE
            with open(path, "r+b") as f:
                self.map = mmap.mmap(f.fileno(), mmap.PAGESIZE, offset=base)
            self.offset = int(offset) - base

    def add(self, field, delta=1):
        # One writer per segment (this process): an aligned 8-byte store is atomic on Linux.
        if self.map:
            at = self.offset + 8 * self.FIELDS.index(field)
            (value,) = struct.unpack_from("=Q", self.map, at)
            struct.pack_into("=Q", self.map, at, (value + delta) % 2**64)
