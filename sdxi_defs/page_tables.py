"""The in-memory formats the address-space manager reads: the PASID table and x86-64 4-level
page tables (Intel SDM vol. 3A, 4.5, "4-level paging"). Pure Python; the walker, the host
driver and the documentation use these definitions (docs/spec-choices.md, "Address spaces").

A PASID table entry locates one address space: its present bit and the physical address of
its level-4 table (PML4), as CR3 does for a process. The page-table entries are x86's own, so
a host can hand the engine a process's tables unchanged.
"""

import enum

from .fields import Access, Field, Structure


__all__ = ["PASID_ENT", "PTE", "Level", "LEVELS", "PAGE_SIZES", "ENTRY_BYTES", "table_index",
           "Fault"]

RW = Access.RW
ENTRY_BYTES = 8
VA_BITS = 48                 #: 4-level paging: bits 63:48 must equal bit 47 (canonical)

PASID_ENT = Structure("PASID_ENT", 8, spec="implementation (docs/spec-choices.md)", fields=(
    Field("p", 0, 1, RW, "the address space exists"),
    Field("root", 12, 40, RW, "PML4 table, physical address bits 51:12"),
))

PTE = Structure("PTE", 8, spec="Intel SDM vol. 3A, tables 4-15 to 4-20", fields=(
    Field("p", 0, 1, RW, "present"),
    Field("rw", 1, 1, RW, "writes allowed"),
    Field("us", 2, 1, RW, "user accesses allowed"),
    Field("pwt", 3, 1, RW),
    Field("pcd", 4, 1, RW),
    Field("a", 5, 1, RW, "accessed (neither checked nor set by the engine)"),
    Field("d", 6, 1, RW, "dirty (neither checked nor set by the engine)"),
    Field("ps", 7, 1, RW, "page size: a 1 GiB (level 3) or 2 MiB (level 2) page"),
    Field("g", 8, 1, RW),
    Field("addr", 12, 40, RW, "next table or page frame, physical address bits 51:12"),
    Field("xd", 63, 1, RW, "execute-disable (no meaning for a data mover)"),
))


class Level(enum.IntEnum):
    """Page-table levels; the value is the level number, 4 being the root."""
    PT = 1          #: 4 KiB pages
    PD = 2          #: 2 MiB pages when ps = 1
    PDPT = 3        #: 1 GiB pages when ps = 1
    PML4 = 4


LEVELS = (Level.PML4, Level.PDPT, Level.PD, Level.PT)   #: walk order
PAGE_SIZES = {4096: Level.PT, 2 << 20: Level.PD, 1 << 30: Level.PDPT}  #: size -> leaf level


def level_shift(level):
    """Address bits below the ones this level's table is indexed by (12, 21, 30, 39)."""
    return 12 + 9 * (level - 1)


def table_index(vaddr, level):
    """The entry of ``level``'s table that translates ``vaddr``."""
    return (vaddr >> level_shift(level)) & 0x1FF


class Fault(enum.IntEnum):
    """Why a translation failed (reported with the walk's level)."""
    NONE = 0
    NO_PASID = 1        #: PASID past the table or its entry not present
    NOT_PRESENT = 2     #: an entry on the path with p = 0
    WRITE = 3           #: a write through an entry with rw = 0
    USER = 4            #: a user access through an entry with us = 0
    RESERVED = 5        #: a non-canonical address, or ps = 1 at level 4
    READ_ERROR = 6      #: reading a table entry failed on the bus
