"""Descriptor decoder: what the context engine does with one descriptor, decided in one clock."""

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from sdxi_defs import descriptors as dsc
from sdxi_defs.descriptors import AdminOp, DmaBaseOp, IntrOp, OpGroup, SyncFilter, VendorOp
from sdxi_defs.errors import ErrClass
from sdxi_defs.ram_map import IMAGE

from ..common.address_range import runs_past_top
from ..common.layouts import layout_of
from ..config import FUNCTION_BITS
from .akey_cache import AkeyCache, akey_lookup
from .data_mover import MoverCommand, MoverOp
from .error_completion import ErrorFound


__all__ = ["Action", "DescriptorDecoder", "ImageCache", "Verdict", "descriptor_views"]


def _same_place(field, *layouts):
    offsets = {(layout[field].lsb, layout[field].width) for layout in layouts}
    assert len(offsets) == 1, f"{field} is not where the decoder reads it in every layout"


# The decoder reads every data operation's operands through COPY's layout (and INTR's key as
# COPY's akey0): the layouts must agree on where they are.
_same_place("akey0", dsc.DSC_DMAB_COPY, dsc.DSC_DMAB_WRT_IMM, dsc.DSC_DMAB_REPCOPY,
            dsc.DSC_VENDOR_FILL)
_same_place("addr0", dsc.DSC_DMAB_COPY, dsc.DSC_DMAB_WRT_IMM, dsc.DSC_DMAB_REPCOPY,
            dsc.DSC_VENDOR_FILL)
_same_place("akey1", dsc.DSC_DMAB_COPY, dsc.DSC_DMAB_REPCOPY)
_same_place("addr1", dsc.DSC_DMAB_COPY, dsc.DSC_DMAB_REPCOPY)
_same_place("size", dsc.DSC_DMAB_COPY, dsc.DSC_DMAB_WRT_IMM, dsc.DSC_VENDOR_FILL)
assert (dsc.DSC_INTR["akey"].lsb, dsc.DSC_INTR["akey"].width) == \
    (dsc.DSC_DMAB_COPY["akey0"].lsb, dsc.DSC_DMAB_COPY["akey0"].width)


def descriptor_views(raw):
    """``lib.data`` views of a 512-bit descriptor ``raw`` as each layout the engine reads:
    ``generic``, ``copy`` (whose akey0/akey1/addr0/addr1/size every data operation shares),
    ``imm``, ``rep``, ``fill``, ``intr``, ``admin`` (the range of every admin operation) and
    ``sync``."""
    return SimpleNamespace(**{name: data.View(layout_of(layout), raw) for name, layout in (
        ("generic", dsc.DSC_GENERIC), ("copy", dsc.DSC_DMAB_COPY),
        ("imm", dsc.DSC_DMAB_WRT_IMM), ("rep", dsc.DSC_DMAB_REPCOPY),
        ("fill", dsc.DSC_VENDOR_FILL), ("intr", dsc.DSC_INTR), ("admin", dsc.DSC_CXT_STOP),
        ("sync", dsc.DSC_SYNC))})


class Action(enum.Enum, shape=3):
    """What becomes of a descriptor."""
    INVALID = 0     #: refused: ``err_class``, and ``buf`` where ``bv`` (step 10)
    PUSH = 1        #: a retire record and nothing for the mover (NOP; INTR with its key cached)
    ISSUE = 2       #: a record and ``cmd`` in the same clock (COPY, FILL: all of it cached)
    CHECK = 3       #: ``keys`` to look up first (step AKEY), then the image for a FROM_RAM
    ADMIN = 4       #: an admin operation, its parameters checked; it waits for quiet


class ImageCache(data.StructLayout):
    """What the DMA RAM's fill image holds: ``ok`` a FILL image of ``pattern`` (``psz``) over
    its first ``rows`` rows."""

    def __init__(self, row_bytes):
        super().__init__({"ok": 1, "psz": 2, "pattern": 256,
                          "rows": range(IMAGE // row_bytes + 1)})


class Verdict(data.StructLayout):
    """The decoder's answer. ``cmd`` is the descriptor's mover command, its buffer spaces from
    the AKey cache (right where the keys hit; on CHECK the key checks supply them). ``keys``
    (one bit per key, ``key_idx`` first), ``key_intr`` (the key must allow interrupts) and
    ``fill_rows`` (image rows a FILL needs) are for CHECK; ``intr``, ``vector`` and
    ``intr_function`` (the function whose vector it is: the key's) for PUSH."""

    def __init__(self, ram_addr_bits, row_bytes):
        super().__init__({
            "action": Action, "err_class": ErrorFound()["err_class"].shape, "bv": 1, "buf": 1,
            "cmd": MoverCommand(ram_addr_bits),
            "keys": 2, "key_idx": 16, "key_idx1": 16, "key_intr": 1,
            "fill_rows": range(IMAGE // row_bytes + 1), "intr": 1, "vector": 11,
            "intr_function": FUNCTION_BITS,
        })


class DescriptorDecoder(wiring.Component):
    """Decides, combinationally, what one valid descriptor needs (descriptors: sdxi-spec.md 4;
    the checks of error step DESCRIPTOR in the order of docs/spec-choices.md "Errors"; the
    AKey cache, not the table, for step AKEY).

    The context engine's fast path: a descriptor whose keys are cached (and, for a FILL,
    whose image is in place) is ISSUEd or PUSHed in the clock it is decided. Everything that
    depends on the engine's state (valid bit, CST translation, fence, quiet) is the engine's.

    Members
    -------
    descriptor : In(512), the 64-byte descriptor
    enabled : In(32), the operation groups the context may use (its L1 opb and CTL2's)
    max_buffer : In(4), the context's buffer limit: at most 2^(max_buffer + 21) bytes
    max_cxt : In(16), CTL2.max_cxt: the last context an admin operation may name
    admin_context : In(1), the descriptor is context 0's (the admin context's)
    akeys : In(AkeyCache), the cached AKey entries
    image : In(ImageCache), the fill image in the DMA RAM
    fill_ram : the DMA RAM address of the image (FROM_RAM commands read it)
    verdict : Out(Verdict)
    """

    def __init__(self, *, ram_addr_bits, row_bytes, fill_ram):
        self._row = row_bytes
        self._fill_ram = fill_ram
        super().__init__({
            "descriptor": In(512), "enabled": In(32), "max_buffer": In(4), "max_cxt": In(16),
            "admin_context": In(1), "akeys": In(AkeyCache()), "image": In(ImageCache(row_bytes)),
            "verdict": Out(Verdict(ram_addr_bits, row_bytes)),
        })

    def elaborate(self, platform):
        m = Module()
        row_shift = self._row.bit_length() - 1
        d = descriptor_views(self.descriptor)
        gen, copy, imm, rep, fill, admin, sync = (
            d.generic, d.copy, d.imm, d.rep, d.fill, d.admin, d.sync)
        typ, sub = gen.type, gen.subtype
        v = self.verdict

        # Every operand layout has akey0 and addr0 where COPY has them, and REPCOPY its
        # akey1 and addr1: one command serves all four data operations.
        key0, key1 = akey_lookup(self.akeys, copy.akey0), akey_lookup(self.akeys, copy.akey1)
        # Read back from a signal of its own: a part of ``verdict`` that decided another would
        # make the one signal a loop.
        fill_rows = Signal.like(v.fill_rows)
        m.d.comb += fill_rows.eq(Mux(fill.size >= IMAGE, IMAGE // self._row,
                                     (fill.size >> row_shift) + 1))
        from_ram = (typ == OpGroup.VENDOR) | (sub == DmaBaseOp.WRT_IMM)
        repcopy_last = Cat(Const(0xFFF, 12), rep.count)       # (count + 1) * 4 KiB - 1
        m.d.comb += [
            v.cmd.op.eq(Mux(from_ram, MoverOp.FROM_RAM,
                            Mux(sub == DmaBaseOp.REPCOPY, MoverOp.REPCOPY, MoverOp.COPY))),
            v.cmd.src.eq(copy.addr0), v.cmd.dst.eq(Mux(from_ram, copy.addr0, copy.addr1)),
            v.cmd.last.eq(Mux((typ == OpGroup.DMABASE) & (sub == DmaBaseOp.REPCOPY),
                              repcopy_last, copy.size)),
            v.cmd.ram.eq(Mux(from_ram, self._fill_ram, 0)),   # only FROM_RAM reads an image
            v.cmd.src_space.eq(key0.space),
            v.cmd.dst_space.eq(Mux(from_ram, key0.space, key1.space)),
            v.key_idx.eq(copy.akey0), v.key_idx1.eq(copy.akey1),
            v.fill_rows.eq(fill_rows),
        ]

        def decide(action, *, keys=0, key_intr=0, intr=0, vector=0):
            m.d.comb += [v.action.eq(action), v.keys.eq(keys), v.key_intr.eq(key_intr),
                         v.intr.eq(intr), v.vector.eq(vector)]

        def invalid(err_class, buf=None):
            decide(Action.INVALID)
            m.d.comb += [v.err_class.eq(err_class), v.bv.eq(buf is not None),
                         v.buf.eq(buf or 0)]

        def size_ok(size_minus_one):
            return (size_minus_one >> (self.max_buffer + 21)) == 0

        def group_on(group):
            return (typ == group) & self.enabled[group.opb_bit]

        range_ok = ((admin.cxt_start >= 1) & (admin.cxt_start <= admin.cxt_end) &
                    (admin.cxt_end <= self.max_cxt))
        image = self.image

        with m.If(~((typ == OpGroup.DMABASE) | (typ == OpGroup.ADMIN) |
                    (typ == OpGroup.INTR) | (typ == OpGroup.VENDOR))):
            invalid(ErrClass.UNKNOWN_OPCODE)
        with m.Elif(~(group_on(OpGroup.DMABASE) | group_on(OpGroup.ADMIN) |
                      group_on(OpGroup.INTR) | group_on(OpGroup.VENDOR))):
            invalid(ErrClass.GROUP_DISABLED)
        with m.Elif(typ == OpGroup.DMABASE):
            with m.Switch(sub):
                with m.Case(DmaBaseOp.NOP):
                    decide(Action.PUSH)
                with m.Case(DmaBaseOp.COPY):
                    with m.If(~size_ok(copy.size)):
                        invalid(ErrClass.SIZE)
                    with m.Elif(runs_past_top(copy.addr0, copy.size)):
                        invalid(ErrClass.ADDRESS_WRAP, buf=0)
                    with m.Elif(runs_past_top(copy.addr1, copy.size)):
                        invalid(ErrClass.ADDRESS_WRAP, buf=1)
                    with m.Elif(key0.hit & key1.hit):
                        decide(Action.ISSUE)
                    with m.Else():
                        decide(Action.CHECK, keys=0b11)
                with m.Case(DmaBaseOp.WRT_IMM):
                    with m.If(imm.size >= dsc.WRT_IMM_MAX):
                        invalid(ErrClass.SIZE)
                    with m.Elif(runs_past_top(imm.addr0, imm.size[:5])):
                        invalid(ErrClass.ADDRESS_WRAP, buf=0)
                    with m.Else():
                        decide(Action.CHECK, keys=0b01)
                with m.Case(DmaBaseOp.REPCOPY):
                    with m.If((rep.count >> (self.max_buffer + 9)) != 0):
                        invalid(ErrClass.SIZE)
                    with m.Elif(runs_past_top(rep.addr0, Const(dsc.REPCOPY_BLOCK - 1, 12))):
                        invalid(ErrClass.ADDRESS_WRAP, buf=0)
                    with m.Elif(runs_past_top(rep.addr1, repcopy_last)):
                        invalid(ErrClass.ADDRESS_WRAP, buf=1)     # count + 1 blocks of 4 KiB
                    with m.Else():
                        decide(Action.CHECK, keys=0b11)
                with m.Default():
                    invalid(ErrClass.UNKNOWN_OPCODE)
        with m.Elif(typ == OpGroup.VENDOR):
            with m.If(sub != VendorOp.FILL):
                invalid(ErrClass.UNKNOWN_OPCODE)
            with m.Elif(fill.psz >= len(dsc.FILL_PATTERN_SIZES)):
                invalid(ErrClass.BAD_PARAMETER)
            with m.Elif(~size_ok(fill.size)):
                invalid(ErrClass.SIZE)
            with m.Elif(runs_past_top(fill.addr0, fill.size)):
                invalid(ErrClass.ADDRESS_WRAP, buf=0)
            with m.Elif(key0.hit & image.ok & (image.psz == fill.psz) &
                        (image.pattern == fill.pattern) & (image.rows >= fill_rows)):
                decide(Action.ISSUE)
            with m.Else():
                decide(Action.CHECK, keys=0b01)
        with m.Elif(typ == OpGroup.INTR):
            with m.If(sub != IntrOp.INTR):
                invalid(ErrClass.UNKNOWN_OPCODE)
            with m.Elif(key0.intr_ok):          # INTR's akey is COPY's akey0
                decide(Action.PUSH, intr=1, vector=key0.vector)
                m.d.comb += v.intr_function.eq(key0.space.function)
            with m.Else():
                decide(Action.CHECK, keys=0b01, key_intr=1)
        with m.Else():      # AdminGrp
            with m.If(~self.admin_context):
                invalid(ErrClass.ADMIN_NOT_CXT0)
            with m.Elif(admin.vf):
                invalid(ErrClass.BAD_PARAMETER)
            with m.Else():
                with m.Switch(sub):
                    with m.Case(AdminOp.CXT_START_NM, AdminOp.CXT_START_RS,
                                AdminOp.CXT_STOP, AdminOp.CXT_UPD):
                        with m.If(~range_ok):
                            invalid(ErrClass.BAD_PARAMETER)
                        with m.Else():
                            decide(Action.ADMIN)
                    with m.Case(AdminOp.SYNC):
                        with m.If(sync.flt > SyncFilter.FN):
                            invalid(ErrClass.BAD_PARAMETER)
                        with m.Elif((sync.flt == SyncFilter.CXT) & ~range_ok):
                            invalid(ErrClass.BAD_PARAMETER)
                        with m.Else():
                            decide(Action.ADMIN)
                    with m.Case(AdminOp.AKEY_UPD, AdminOp.RKEY_UPD):
                        decide(Action.ADMIN)
                    with m.Default():
                        invalid(ErrClass.UNKNOWN_OPCODE)
        return m
