"""The context engine's AKey cache: the last two good AKey entries of the running context
(SDXI step 11 done once per key and turn, docs/context-engine.md "Decode")."""

from amaranth.hdl import Cat, Mux
from amaranth.lib import data

from .data_mover import BufferSpace


__all__ = ["AkeyCache", "AkeyLookup", "akey_lookup"]


class AkeyCache(data.StructLayout):
    """Two cached entries: ``idx`` the AKey index, ``iv`` its entry may interrupt, ``vec`` its
    vector, ``space`` its buffer space; ``next`` the entry the next fill replaces. A turn starts
    with none valid, and admin operations (which may have changed the table) forget them."""

    def __init__(self):
        super().__init__({
            "valid": 2, "iv": 2, "next": 1, "idx": data.ArrayLayout(16, 2),
            "vec": data.ArrayLayout(11, 2), "space": data.ArrayLayout(BufferSpace(), 2)})


class AkeyLookup(data.StructLayout):
    """What the cache knows of one AKey index: ``hit`` it holds the entry; ``intr_ok`` the entry
    may interrupt; ``vector`` and ``space`` its fields (meaningful where ``hit``)."""

    def __init__(self):
        super().__init__({"hit": 1, "intr_ok": 1, "vector": 11, "space": BufferSpace()})


def akey_lookup(cache, index):
    """The ``AkeyLookup`` view of ``index`` in ``cache`` (an ``AkeyCache`` view): two
    comparators, a combinational value."""
    match = [cache.valid[i] & (cache.idx[i] == index) for i in range(2)]
    return data.View(AkeyLookup(), Cat(
        match[0] | match[1],
        (match[0] & cache.iv[0]) | (match[1] & cache.iv[1]),
        Mux(match[0], cache.vec[0], cache.vec[1]),
        Mux(match[0], cache.space[0], cache.space[1])))
