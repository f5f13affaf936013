"""Descriptors the driver builds: every kind it offers, as the 64 bytes that go into a ring.

Layouts are the definitions' (``sdxi_defs.descriptors``, SDXI 1.0 chapter 6 and
docs/spec-choices.md). A descriptor with a ``cst`` (anything with a 32-byte aligned ``addr``)
completes through that completion status block; without one it carries np = 1.
"""

from sdxi_defs import descriptors as dsc
from sdxi_defs.descriptors import AdminOp, DmaBaseOp, IntrOp, OpGroup, VendorOp


__all__ = ["encode", "nop_descriptor", "copy_descriptor", "fill_descriptor",
           "write_imm_descriptor", "repcopy_descriptor", "interrupt_descriptor", "admin_start",
           "admin_stop", "admin_sync", "admin_update", "BUFFER_AKEY"]

BUFFER_AKEY = 0          #: AKey entry every context gets for its buffers (vl = 1, pv = 0)


def encode(layout, group, subtype, *, cst=None, fe=0, **fields):
    """A descriptor's 64 bytes, valid, with a CST pointer or np = 1."""
    if cst is None:
        return layout.encode(vl=1, fe=fe, type=group, subtype=subtype, np=1, **fields)
    return layout.encode(vl=1, fe=fe, type=group, subtype=subtype, csb_ptr=cst.addr >> 5,
                         **fields)


def nop_descriptor(*, cst=None, fe=0):
    """DmaBase NOP (DSC_DMAB_NOP): completes without moving anything."""
    return encode(dsc.DSC_DMAB_NOP, OpGroup.DMABASE, DmaBaseOp.NOP, cst=cst, fe=fe)


def copy_descriptor(dst, src, n, *, cst=None, fe=0, src_akey=BUFFER_AKEY, dst_akey=BUFFER_AKEY):
    """DmaBase COPY of ``n`` bytes (DSC_DMAB_COPY)."""
    return encode(dsc.DSC_DMAB_COPY, OpGroup.DMABASE, DmaBaseOp.COPY, cst=cst, fe=fe,
                  size=n - 1, akey0=src_akey, akey1=dst_akey, addr0=src, addr1=dst)


def fill_descriptor(dst, pattern, n, *, cst=None, fe=0, akey=BUFFER_AKEY):
    """Vendor FILL of ``n`` bytes with an 8-, 16- or 32-byte ``pattern`` (docs/spec-choices.md)."""
    if len(pattern) not in dsc.FILL_PATTERN_SIZES:
        raise ValueError(f"pattern must be one of {dsc.FILL_PATTERN_SIZES} bytes long")
    return encode(dsc.DSC_VENDOR_FILL, OpGroup.VENDOR, VendorOp.FILL, cst=cst, fe=fe,
                  size=n - 1, psz=dsc.FILL_PATTERN_SIZES.index(len(pattern)), akey0=akey,
                  addr0=dst, pattern=int.from_bytes(pattern, "little"))


def write_imm_descriptor(dst, data, *, cst=None, fe=0, akey=BUFFER_AKEY):
    """DmaBase WRT_IMM of 1 to WRT_IMM_MAX bytes of immediate ``data`` to ``dst``."""
    if not 1 <= len(data) <= dsc.WRT_IMM_MAX:
        raise ValueError(f"1 to {dsc.WRT_IMM_MAX} bytes of immediate data, not {len(data)}")
    return encode(dsc.DSC_DMAB_WRT_IMM, OpGroup.DMABASE, DmaBaseOp.WRT_IMM, cst=cst, fe=fe,
                  size=len(data) - 1, akey0=akey, addr0=dst,
                  data=int.from_bytes(data, "little"))


def repcopy_descriptor(dst, src, blocks, *, cst=None, fe=0, src_akey=BUFFER_AKEY,
                       dst_akey=BUFFER_AKEY):
    """DmaBase REPCOPY: the REPCOPY_BLOCK bytes at ``src`` into ``blocks`` consecutive blocks
    at ``dst``."""
    if blocks < 1:
        raise ValueError(f"a replicate needs at least one block, not {blocks}")
    return encode(dsc.DSC_DMAB_REPCOPY, OpGroup.DMABASE, DmaBaseOp.REPCOPY, cst=cst, fe=fe,
                  count=blocks - 1, akey0=src_akey, akey1=dst_akey, addr0=src, addr1=dst)


def interrupt_descriptor(akey, *, cst=None, fe=1):
    """INTR: raise the vector of AKey entry ``akey``; fenced by default, as Linux does."""
    return encode(dsc.DSC_INTR, OpGroup.INTR, IntrOp.INTR, cst=cst, fe=fe, akey=akey)


def admin_start(cxt_id, cst):
    """CXT_START (normal) of one context."""
    return encode(dsc.DSC_CXT_START, OpGroup.ADMIN, AdminOp.CXT_START_NM, cst=cst, fe=1,
                  cxt_start=cxt_id, cxt_end=cxt_id)


def admin_stop(first, last, *, hard=False):
    """CXT_STOP of contexts ``first`` to ``last`` (hard: without finishing their rings)."""
    return encode(dsc.DSC_CXT_STOP, OpGroup.ADMIN, AdminOp.CXT_STOP, fe=1, hs=int(hard),
                  cxt_start=first, cxt_end=last)


def admin_sync(first, last, flt, cst):
    """SYNC of contexts ``first`` to ``last`` with filter ``flt`` (a ``SyncFilter``)."""
    return encode(dsc.DSC_SYNC, OpGroup.ADMIN, AdminOp.SYNC, cst=cst, flt=flt,
                  cxt_start=first, cxt_end=last)


def admin_rkey_update(first_key, last_key, cst=None):
    """RKEY_UPD: RKey entries ``first_key`` to ``last_key`` changed; cached RKey state is
    dropped once the descriptor completes (docs/spec-choices.md, "RKeys")."""
    return encode(dsc.DSC_RKEY_UPD, OpGroup.ADMIN, AdminOp.RKEY_UPD, cst=cst, fe=1,
                  key_start=first_key, key_end=last_key)


def admin_update(first, last, cst=None):
    """CXT_UPD: contexts ``first`` to ``last`` reload their tables."""
    return encode(dsc.DSC_CXT_UPD, OpGroup.ADMIN, AdminOp.CXT_UPD, cst=cst,
                  cxt_start=first, cxt_end=last)
