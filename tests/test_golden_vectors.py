"""Descriptor and structure encodings against bytes written by hand from shared/sdxi-spec.md.

The expected bytes below come from the spec digest's tables (sections 3 and 4), packed with
``struct`` here, not from the project's field tables: a wrong bit position shared by the
gateware and the driver fails these.
"""

import struct

from sdxi_defs import descriptors as dsc
from sdxi_defs.structures import AKEY_ENT, CST_BLK, CXT_CTL, CXT_L1_ENT, ERRLOG_HD_ENT
from sw.descriptors import encode


class Cst:
    addr = 0x1234_5660          # 32-byte aligned


def desc(opcode, body=b"", csb=None):
    """64 bytes: opcode dword, body from byte 4, csb_ptr qword (np = 1 when there is none)."""
    tail = (1 if csb is None else csb)          # np is bit 0 of the last qword; csb bits 63:5
    raw = struct.pack("<I", opcode) + body
    return raw + bytes(56 - len(raw)) + struct.pack("<Q", tail)


def test_copy():
    # Table 6-8: size-1 at 4, akey0 at 12, akey1 at 14, addr0 at 16, addr1 at 24.
    want = desc(0x0001_0301, struct.pack("<IIHHQQ", 4095, 0, 3, 4, 0x1000, 0x2000),
                csb=Cst.addr)
    got = encode(dsc.DSC_DMAB_COPY, dsc.OpGroup.DMABASE, dsc.DmaBaseOp.COPY, cst=Cst,
                 size=4095, akey0=3, akey1=4, addr0=0x1000, addr1=0x2000)
    assert got == want


def test_nop_and_intr():
    assert encode(dsc.DSC_DMAB_NOP, dsc.OpGroup.DMABASE, dsc.DmaBaseOp.NOP) == desc(0x0001_0101)
    # Table 6-12: INTR akey at bytes 12-13; Linux fences it.
    want = desc(0x0004_0005, bytes(8) + struct.pack("<H", 1))
    assert encode(dsc.DSC_INTR, dsc.OpGroup.INTR, dsc.IntrOp.INTR, fe=1, akey=1) == want


def test_admin_descriptors():
    # Tables 6-14, 6-15, 6-22: cxt_start at 8, cxt_end at 10; hs = bit 45 (byte 5 bit 5);
    # SYNC flt at byte 4 bits 2:0.
    start = desc(0x0002_0305, struct.pack("<BBHHH", 0, 0, 0, 7, 7), csb=Cst.addr)
    assert encode(dsc.DSC_CXT_START, dsc.OpGroup.ADMIN, dsc.AdminOp.CXT_START_NM, cst=Cst,
                  fe=1, cxt_start=7, cxt_end=7) == start
    stop = desc(0x0002_0405, struct.pack("<BBHHH", 0, 0x20, 0, 2, 9))
    assert encode(dsc.DSC_CXT_STOP, dsc.OpGroup.ADMIN, dsc.AdminOp.CXT_STOP, fe=1, hs=1,
                  cxt_start=2, cxt_end=9) == stop
    sync = desc(0x0002_0601, struct.pack("<BBHHH", 1, 0, 0, 2, 9), csb=Cst.addr)
    assert encode(dsc.DSC_SYNC, dsc.OpGroup.ADMIN, dsc.AdminOp.SYNC, cst=Cst, flt=1,
                  cxt_start=2, cxt_end=9) == sync


def test_structures():
    # CST_BLK (Table 6-4): signal qword, er = bit 31 of bytes 8-11.
    assert CST_BLK.encode(signal=1, er=1) == struct.pack("<QI", 1, 1 << 31) + bytes(20)
    # AKEY_ENT (Table 3-7): vl 0, iv 1, intr_num 14:4, pasid 51:32.
    assert AKEY_ENT.encode(vl=1, iv=1, intr_num=5, pasid=0x12345) == struct.pack(
        "<IIQ", 1 | 2 | 5 << 4, 0x12345, 0)
    # CXT_L1_ENT (Table 3-3): ctl ptr | ka | vl; akey ptr | sz; pasid + max_buffer << 20; opb.
    assert CXT_L1_ENT.encode(vl=1, ka=1, cxt_ctl_ptr=0x5040 >> 6, akey_sz=1,
                             akey_ptr=0x7000 >> 12, max_buffer=11, opb_000_enb=0x2B) == \
        struct.pack("<QQIIQ", 0x5040 | 3, 0x7000 | 1, 11 << 20, 0x2B, 0)
    # CXT_CTL (Table 3-4): ring | csa | se | qos << 2 | vl; size; sts ptr; write index ptr.
    assert CXT_CTL.encode(vl=1, qos=2, se=1, csa=1, ds_ring_ptr=0x10000 >> 6, ds_ring_sz=1500,
                          cxt_sts_ptr=0x2010 >> 4, write_index_ptr=0x2028 >> 3) == \
        struct.pack("<QIIQQ", 0x10000 | 0x31 | 2 << 2, 1500, 0, 0x2010, 0x2028) + bytes(32)


def test_error_log_entry():
    # ERRLOG_HD_ENT (sdxi-spec.md 3.10): vl 0, step 13:8, type 26:16 = 0x7F7, cv 32, div 33,
    # bv 34, buf 38:36, sub_step 43:40, re 46:44, cxt_num 63:48, dsc_index qword 1,
    # err_class bytes 44-45.
    raw = (struct.pack("<IIQ", 1 | 11 << 8 | 0x7F7 << 16,
                       1 | 2 | 4 | 1 << 4 | 3 << 8 | 1 << 12 | 9 << 16, 1234)
           + bytes(28) + struct.pack("<H", 0x20) + bytes(18))
    f = ERRLOG_HD_ENT.decode(raw)
    assert (f["vl"], f["step"], f["type"], f["cv"], f["div"], f["bv"], f["buf"], f["sub_step"],
            f["re"], f["cxt_num"], f["dsc_index"], f["err_class"]) == (
        1, 11, 0x7F7, 1, 1, 1, 1, 3, 1, 9, 1234, 0x20)
