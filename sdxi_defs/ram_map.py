"""Where the implementation keeps things in its DMA RAM (docs/ram-map.md is generated from here).

The DMA RAM is the engines' only data store: the data mover's copy slots and fill image, the
context engine's ring buffers and structure reads, and the staging area of everything the
engine writes to the host. The host reaches the same RAM through BAR0's DMA RAM window
(``regmap.DMA_RAM_WINDOW``) while the function is stopped (the DMA exerciser's use). Every
address here is a byte address, aligned to a row of either datapath width (64 bytes).
"""

from dataclasses import dataclass

from .regmap import DMA_RAM_BYTES


__all__ = ["CHUNK", "IMAGE", "READ_SLOTS", "SLOT_BYTES", "REPCOPY_SLOTS", "BATCH", "BUFFERS",
           "Region", "RamLayout"]

CHUNK = 256               #: bytes per COPY read (and its write)
SLOT_BYTES = CHUNK + 64   #: a copy slot: a chunk at any offset within a row
READ_SLOTS = 16           #: copy chunks in flight on the read side, one slot each
IMAGE = 4096              #: bytes of a FROM_RAM image: a fill's pattern run, a REPCOPY block
REPCOPY_SLOTS = (IMAGE + 64 + SLOT_BYTES - 1) // SLOT_BYTES   #: slots a REPCOPY block spans
BATCH = 16                #: descriptors fetched per ring read (at most)
BUFFERS = 4               #: ring batches held: one decoded while the next ones are fetched
STRUCTURE_BYTES = 128     #: one structure read: L2, L1 entry, CXT_CTL, CXT_STS, write index, AKey
_MAX_ROW = 64             #: the widest row (512-bit datapath): every region is aligned to it


@dataclass(frozen=True)
class Region:
    name: str
    start: int
    size: int
    use: str

    @property
    def end(self):
        return self.start + self.size


def _align(value, alignment):
    return (value + alignment - 1) // alignment * alignment


class RamLayout:
    """The DMA RAM map for rows of ``row_bytes`` (32 or 64) bytes.

    Attributes are byte addresses: ``slots`` (READ_SLOTS copy slots), ``fill`` (the fill /
    write-immediate image), ``desc`` (BUFFERS ring batches of BATCH descriptors), ``struct``
    (one structure read), ``stage`` (what the engine writes to the host: ``zero``,
    ``flags_ok``, ``flags_err``, ``states``, ``read_index``, ``errlog``), ``walk`` (the row
    page-table reads land in); ``bytes`` is the RAM the map needs.
    """

    def __init__(self, row_bytes):
        if row_bytes not in (32, 64):
            raise ValueError(f"rows are 32 or 64 bytes, not {row_bytes}")
        self.row = row_bytes
        self.slots = 0x0000
        self.fill = _align(READ_SLOTS * SLOT_BYTES, _MAX_ROW)
        self.desc = self.fill + IMAGE
        self.struct = self.desc + 64 * BATCH * BUFFERS
        self.stage = self.struct + STRUCTURE_BYTES
        self.zero = self.stage + 0x00         # 8 zero bytes: CST signal = 0
        self.flags_ok = self.stage + 0x08     # CST flags dword with er = 0
        self.flags_err = self.stage + 0x0C    # CST flags dword with er = 1
        self.states = self.stage + 0x10       # byte i holds i: a CXT_STS.state value
        self.read_index = self.stage + 0x40   # CXT_STS.read_index being written back
        self.errlog = self.stage + 0x80       # error log entry being written
        self.walk = self.stage + 0x100        # a row where page-table reads land
        self.bytes = self.walk + _MAX_ROW
        if self.bytes > DMA_RAM_BYTES:
            raise ValueError(f"the RAM map needs {self.bytes} bytes; the RAM has {DMA_RAM_BYTES}")

    def constants_row(self):
        """The first staging row's contents: the CST constants and the state bytes."""
        raw = bytearray(self.row)
        raw[0x0C:0x10] = (1 << 31).to_bytes(4, "little")      # er
        raw[0x10:0x20] = bytes(range(16))
        return int.from_bytes(raw, "little")

    def regions(self):
        """The map as a table, in address order."""
        return (
            Region("slots", self.slots, READ_SLOTS * SLOT_BYTES,
                   f"{READ_SLOTS} copy slots of {CHUNK} + 64 bytes (a REPCOPY block spans the "
                   f"first {REPCOPY_SLOTS})"),
            Region("fill", self.fill, IMAGE, f"fill / write-immediate image ({IMAGE} bytes)"),
            Region("desc", self.desc, 64 * BATCH * BUFFERS,
                   f"{BUFFERS} ring buffers of {BATCH} descriptors"),
            Region("struct", self.struct, STRUCTURE_BYTES,
                   "one structure read (L2, L1, CXT_CTL, CXT_STS, write index, AKey)"),
            Region("stage", self.stage, self.walk - self.stage,
                   "staging: CST constants and state bytes (+0x00), read index (+0x40), "
                   "error-log entry (+0x80)"),
            Region("walk", self.walk, _MAX_ROW, "page-table line being read (one row)"),
        )
