"""The host driver on a machine with no HDL or simulation toolchain.

Run by ``tests/test_driver_alone.py`` in a fresh interpreter: it makes ``amaranth``, ``cocotb``
and ``cocotbext`` impossible to import, imports the driver (``sw``) and the definitions
(``sdxi_defs``), brings a function up through an in-memory card of its own to the point where
the function's tables are written and activated, and encodes every descriptor the driver
offers. It prints one line per check and exits non-zero on the first failure.
"""

import asyncio
import importlib.abc
import sys
from pathlib import Path

BLOCKED = ("amaranth", "cocotb", "cocotbext", "cocotb_bus")


class _Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{name} is not installed on this host", name=name)
        return None


sys.meta_path.insert(0, _Blocked())
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# The driver and the definitions, imported only now that the toolchain cannot be.
import sw  # noqa: E402
from sdxi_defs.descriptors import (DESCRIPTORS, DSC_GENERIC, AdminOp, OpGroup,  # noqa: E402
                                   SyncFilter)
from sdxi_defs.fields import Access  # noqa: E402
from sdxi_defs.regmap import GSR, GSV, REGISTERS_BY_NAME as REG  # noqa: E402
from sdxi_defs.structures import CXT_CTL, CXT_L1_ENT, CXT_L2_ENT, CXT_STS, CxtState  # noqa: E402
from sw import descriptors as encoders  # noqa: E402
from sw.device import BAR_DOORBELLS, BAR_REGS  # noqa: E402
from sw.transport import DmaBuffer, PciIdentity, Transport  # noqa: E402

HOST_BASE = 0x10_0000          # bus address of the in-memory host's DMA memory
HOST_BYTES = 1 << 20


class MemoryBuffer(DmaBuffer):
    def __init__(self, memory, addr, size):
        self._memory, self.addr, self.size = memory, addr, size

    def read(self, offset, length):
        start = self.addr - HOST_BASE + offset
        return bytes(self._memory[start:start + length])

    def write(self, offset, data):
        if offset < 0 or offset + len(data) > self.size:
            raise IndexError(f"{len(data)} bytes at {offset:#x} outside a {self.size}-byte "
                             "buffer")
        start = self.addr - HOST_BASE + offset
        self._memory[start:start + len(data)] = data


class MemoryCard(Transport):
    """A card that is nothing but BAR0's registers kept by the access rules of the register
    map, a function state that follows CTL0.fn_gsr at once, and a record of doorbells."""

    def __init__(self):
        self.identity = PciIdentity(0x10EE, 0x903F, 0x120100, "00:00.0")
        self.interrupt_vectors = 2
        self.memory = bytearray(HOST_BYTES)
        self.next_free = 0x1000
        self.doorbells = []
        self.by_offset = {r.offset: r for r in REG.values()}
        self.regs = {r.offset: 0 for r in REG.values()}
        self.regs[REG["CAP0"].offset] = REG["CAP0"].encode(max_ds_ring_sz=4)
        self.regs[REG["CAP1"].offset] = REG["CAP1"].encode(
            max_buffer=11, mmio64=1, max_errlog_sz=10, max_cxt=127,
            opb_000_cap=sum(1 << g.opb_bit for g in OpGroup))
        self.regs[REG["VERSION"].offset] = REG["VERSION"].encode(major=1, minor=0)

    async def read(self, bar, offset, width):
        assert bar == BAR_REGS and width == 64, (bar, offset, width)
        return self.regs.get(offset, 0)

    async def write(self, bar, offset, value, width):
        assert width == 64, width
        if bar == BAR_DOORBELLS:
            self.doorbells.append((offset, value))
            return
        reg = self.by_offset.get(offset)
        if reg is None:
            return
        old = self.regs[offset]
        rw, rw1c = reg.mask(Access.RW), reg.mask(Access.RW1C)
        self.regs[offset] = (old & ~rw) | (value & rw)
        self.regs[offset] &= ~(value & rw1c)
        if reg.name == "CTL0":
            gsr = GSR(reg["fn_gsr"].get(value))
            gsv = GSV.ACTIVE if gsr == GSR.ACTIVE else GSV.STOP
            self.regs[REG["STS0"].offset] = REG["STS0"].encode(fn_gsv=gsv)

    async def read_block(self, bar, offset, length):
        raise AssertionError("bring-up reads no blocks")

    async def write_block(self, bar, offset, data):
        raise AssertionError("bring-up writes no blocks")

    def alloc_dma(self, size, align=4096):
        start = -(-self.next_free // align) * align
        if start + size > HOST_BYTES:
            raise MemoryError("the in-memory host is full")
        self.next_free = start + size
        return MemoryBuffer(self.memory, HOST_BASE + start, size)

    def host_memory(self):
        return MemoryBuffer(self.memory, HOST_BASE, HOST_BYTES)

    async def sleep_ns(self, ns):
        await asyncio.sleep(0)

    async def wait_interrupt(self, vector, timeout_ns):
        return False

    def clear_interrupt(self, vector):
        pass


def check(condition, what):
    if not condition:
        raise SystemExit(f"FAIL: {what}")
    print(f"ok: {what}")


def register(card, name):
    return REG[name].decode(card.regs[REG[name].offset])


def at(card, addr, structure):
    return structure.decode(card.host_memory().read(addr - HOST_BASE, structure.size))


async def bring_up():
    transport = MemoryCard()
    card = sw.SdxiCard(transport, sw.Timing.simulation())
    await card.start()
    check(await card.state() == GSV.ACTIVE, "the function was asked to activate")
    l2 = register(transport, "CXT_L2")["ptr"] << 12
    l2_entry = at(transport, l2, CXT_L2_ENT)
    check(l2 == card.l2_table.addr and l2_entry["vl"] == 1, "CXT_L2 points at a valid L2 entry")
    l1_entry = at(transport, l2_entry["lv01_ptr"] << 12, CXT_L1_ENT)
    cap1 = register(transport, "CAP1")
    check(l1_entry["vl"] == 1 and l1_entry["opb_000_enb"] == cap1["opb_000_cap"],
          "the admin context's L1 entry is valid and enables every advertised group")
    ctl = at(transport, l1_entry["cxt_ctl_ptr"] << 6, CXT_CTL)
    check(ctl["vl"] == 1 and ctl["ds_ring_sz"] == 1024 and
          ctl["ds_ring_ptr"] << 6 == card.admin.mem.ring.addr,
          "the admin CXT_CTL describes a 1024-entry ring")
    sts = at(transport, ctl["cxt_sts_ptr"] << 4, CXT_STS)
    check(sts["state"] == CxtState.RUN and sts["read_index"] == 0,
          "the admin CXT_STS says RUN at 0")
    err_cfg = register(transport, "ERR_CFG")
    check(err_cfg["en"] == 1 and err_cfg["ptr"] << 12 == card.error_log.addr and
          register(transport, "ERR_CTL")["en"] == 1, "the error log is set up and its interrupt on")
    ctl2 = register(transport, "CTL2")
    check(ctl2["max_cxt"] == cap1["max_cxt"] and ctl2["opb_000_avl"] == cap1["opb_000_cap"],
          "CTL2 makes what CAP1 advertises available")
    check(transport.doorbells == [(0, 0)], "the admin context's doorbell was rung (jump start)")
    check(await card.read_error_log() == [] and card.error_log_lost == [],
          "an empty error log reads as no entries")
    return card


class Cst:
    addr = 0x0012_3460


def encode_every_descriptor(card):
    """Each encoder of ``sw.descriptors`` against the definitions' layout for its opcode."""
    src, dst, pattern = 0x0011_0000, 0x0012_0000, bytes(range(16))
    cases = {   # name: (bytes, whether it completes through Cst, fields it must carry)
        "nop_descriptor": (encoders.nop_descriptor(cst=Cst), True, {}),
        "copy_descriptor": (encoders.copy_descriptor(dst, src, 4096, cst=Cst, dst_akey=3), True,
                            {"size": 4095, "addr0": src, "addr1": dst, "akey1": 3}),
        "fill_descriptor": (encoders.fill_descriptor(dst, pattern, 300), False,
                            {"size": 299, "psz": 1, "addr0": dst,
                             "pattern": int.from_bytes(pattern, "little")}),
        "write_imm_descriptor": (encoders.write_imm_descriptor(dst, b"\x5a" * 5, cst=Cst), True,
                                 {"size": 4, "addr0": dst, "data": 0x5a5a5a5a5a}),
        "repcopy_descriptor": (encoders.repcopy_descriptor(dst, src, 3), False,
                               {"count": 2, "addr0": src, "addr1": dst}),
        "interrupt_descriptor": (encoders.interrupt_descriptor(1), False, {"akey": 1, "fe": 1}),
        "admin_start": (encoders.admin_start(5, Cst), True, {"cxt_start": 5, "cxt_end": 5}),
        "admin_stop": (encoders.admin_stop(5, 6, hard=True), False, {"hs": 1, "cxt_end": 6}),
        "admin_sync": (encoders.admin_sync(5, 5, SyncFilter.STOP, Cst), True,
                       {"flt": SyncFilter.STOP}),
        "admin_update": (encoders.admin_update(2, 3), False, {"cxt_start": 2, "cxt_end": 3}),
    }
    offered = {n for n in encoders.__all__ if n.endswith("_descriptor") or n.startswith("admin_")}
    check(offered == set(cases), f"the test covers every descriptor the driver offers "
                                 f"({len(cases)})")
    for name, (raw, completes, want) in cases.items():
        header = DSC_GENERIC.decode(raw)
        layout = DESCRIPTORS[(OpGroup(header["type"]), header["subtype"])]
        fields = layout.decode(raw)
        completion = {"np": 0, "csb_ptr": Cst.addr >> 5} if completes else {"np": 1}
        want = {"vl": 1, **completion, **want}
        check(len(raw) == 64 and all(fields[k] == v for k, v in want.items()),
              f"{name} encodes a valid {layout.name}")
    start = DSC_GENERIC.decode(cases["admin_start"][0])
    check((start["type"], start["subtype"]) == (OpGroup.ADMIN, AdminOp.CXT_START_NM),
          "CXT_START is the normal start")
    # The admin ring takes them in order.
    first = card.admin.reserve(len(cases))
    for i, (raw, _, _) in enumerate(cases.values()):
        card.admin.place(first + i, raw)
    ring = card.admin.mem.ring
    placed = [ring.read(64 * (first + i), 64) for i in range(len(cases))]
    check(placed == [raw for raw, _, _ in cases.values()], "the descriptors sit in the admin ring "
                                                           "in order")


def toolchain_is_blocked():
    for name in BLOCKED:
        try:
            __import__(name)
        except ModuleNotFoundError:
            continue
        return False
    return True


async def main():
    check(toolchain_is_blocked(), f"{', '.join(BLOCKED)} cannot be imported")
    card = await bring_up()
    encode_every_descriptor(card)
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED + ("hdl", "sim", "fpga"))
    check(not loaded, f"nothing of the toolchain or the gateware was imported {loaded or ''}")


asyncio.run(main())
