"""``lib.data`` layouts made from the definitions package's structures and registers."""

from functools import cache

from amaranth.lib import data


__all__ = ["layout_of"]


@cache
def layout_of(structure):
    """The ``data.StructLayout`` of an ``sdxi_defs`` Structure or Register: its fields by
    their spec names at their bit offsets, the bits between them as ``_reserved<lsb>``."""
    members = {}
    at = 0
    for f in sorted(structure.fields, key=lambda f: f.lsb):
        if f.lsb > at:
            members[f"_reserved{at}"] = f.lsb - at
        members[f.name] = f.width
        at = f.lsb + f.width
    size = 8 * getattr(structure, "size", 8)         # a Register is 64 bits
    if size > at:
        members[f"_reserved{at}"] = size - at
    return data.StructLayout(members)
