"""An SDXI function, brought up in the Linux SDXI driver's order (sdxi-spec.md section 7)."""

from dataclasses import dataclass

from hdl.sdxi.regmap import GSR, GSV, REGISTERS_BY_NAME, doorbell_offset
from hdl.sdxi.structures import CXT_CTL, CXT_L1_ENT, CXT_L2_ENT, CXT_STS, CxtState

from .caps import Capabilities


__all__ = ["SdxiCard", "SdxiError", "Timing", "AdminContext"]

REG = REGISTERS_BY_NAME
BAR_REGS = 0
BAR_DOORBELLS = 2
ADMIN_RING_ENTRIES = 1024
ERRLOG_ENTRIES = 64          # the spec minimum; ERR_CFG.sz = 1


class SdxiError(Exception):
    """The function did not do what the driver asked (state, time-out, version)."""


@dataclass(frozen=True)
class Timing:
    """Poll period and time-outs, in nanoseconds (Linux: 1 ms polls, 1 s time-out)."""
    poll_ns: float = 1_000_000
    state_timeout_ns: float = 1_000_000_000
    interrupt_timeout_ns: float = 1_000_000_000

    @classmethod
    def simulation(cls):
        """Microsecond-scale waits: simulated idle time costs wall time."""
        return cls(poll_ns=40, state_timeout_ns=20_000, interrupt_timeout_ns=20_000)


@dataclass
class AdminContext:
    """Host memory of the admin context (context 0), as the driver allocates it."""
    ring: object
    cxt_sts: object
    write_index: object
    cxt_ctl: object
    akey_table: object


class SdxiCard:
    """One SDXI function behind a ``Transport``.

    ``await card.start()`` performs the bring-up; ``describe()`` prints what a user wants to
    see. Every wait is bounded by ``timing``.
    """

    def __init__(self, transport, timing=Timing()):
        self.transport = transport
        self.timing = timing
        self.caps = None
        self.l2_table = None
        self.l1_table = None
        self.admin = None
        self.error_log = None

    # ---- registers -----------------------------------------------------------------------------

    async def read_reg(self, name):
        return await self.transport.read(BAR_REGS, REG[name].offset, 64)

    async def write_reg(self, name, value):
        await self.transport.write(BAR_REGS, REG[name].offset, value, 64)

    async def update_reg(self, name, **fields):
        """Read-modify-write the named fields of a register."""
        reg = REG[name]
        value = await self.read_reg(name)
        for field_name, v in fields.items():
            f = reg[field_name]
            value = (value & ~f.mask) | f.put(v)
        await self.write_reg(name, value)

    async def state(self):
        return GSV(REG["STS0"]["fn_gsv"].get(await self.read_reg("STS0")))

    async def ring_doorbell(self, cxt_id, value):
        await self.transport.write(BAR_DOORBELLS, doorbell_offset(cxt_id, self._db_stride()),
                                   value, 64)

    def _db_stride(self):
        return REG["CAP0"]["db_stride"].get(self.caps.cap0) if self.caps else 0

    # ---- function state ------------------------------------------------------------------------

    async def wait_state(self, wanted, what):
        """Poll STS0 until the state is in ``wanted``; raise after the time-out."""
        waited = 0.0
        while True:
            gsv = await self.state()
            if gsv in wanted:
                return gsv
            if waited >= self.timing.state_timeout_ns:
                raise SdxiError(f"{what}: function stuck in {gsv.name} after {waited:.0f} ns "
                                f"(waiting for {', '.join(s.name for s in wanted)})")
            await self.transport.sleep_ns(self.timing.poll_ns)
            waited += self.timing.poll_ns

    async def request(self, gsr):
        await self.update_reg("CTL0", fn_gsr=gsr)

    async def stop(self):
        """Bring the function to GSV_STOP from any state (Linux's stop routine)."""
        gsv = await self.state()
        if gsv in (GSV.INIT, GSV.ACTIVE):
            await self.request(GSR.STOP_SF)
        elif gsv == GSV.STOPG_SF:
            await self.request(GSR.STOP_HD)
        elif gsv not in (GSV.STOPG_HD, GSV.ERROR):
            await self.request(GSR.RESET)
        gsv = await self.wait_state({GSV.STOP, GSV.ERROR}, "stop")
        if gsv == GSV.ERROR:
            await self.request(GSR.RESET)
            await self.wait_state({GSV.STOP}, "reset from error")

    # ---- bring-up --------------------------------------------------------------------------

    async def start(self):
        """Bring the function to GSV_ACTIVE with the admin context jump-started."""
        await self.stop()                                                  # known state
        await self.update_reg("CTL0", fn_err_intr_en=0, fn_pasid_vl=0, fn_pasid=0)   # 4
        self.caps = Capabilities(await self.read_reg("CAP0"), await self.read_reg("CAP1"),
                                 await self.read_reg("VERSION"))    # 5, 1.a
        if self.caps.version_major != 1:
            raise SdxiError(f"unsupported SDXI version {self.caps.version_major}."
                            f"{self.caps.version_minor}")
        cap1 = REG["CAP1"].decode(self.caps.cap1)
        await self.write_reg("CTL2", REG["CTL2"].encode(                              # 1.b
            max_buffer=cap1["max_buffer"], max_akey_sz=cap1["max_akey_sz"],
            max_cxt=cap1["max_cxt"], opb_000_avl=cap1["opb_000_cap"]))

        alloc = self.transport.alloc_dma
        self.l2_table = alloc(4096)                                                   # 2
        await self.write_reg("CXT_L2", REG["CXT_L2"].encode(ptr=self.l2_table.addr >> 12))
        self.l1_table = alloc(4096)                                                   # 3
        self.l2_table.write(0, CXT_L2_ENT.encode(vl=1, lv01_ptr=self.l1_table.addr >> 12))

        self.admin = AdminContext(                                                    # 4
            ring=alloc(ADMIN_RING_ENTRIES * 64), cxt_sts=alloc(16, 16),
            write_index=alloc(8, 8), cxt_ctl=alloc(64, 64), akey_table=alloc(4096))
        self.admin.cxt_sts.write(0, CXT_STS.encode(state=CxtState.RUN, read_index=0))
        self._publish(self.admin.cxt_ctl, CXT_CTL.encode(
            vl=1, se=1, csa=1, ds_ring_ptr=self.admin.ring.addr >> 6,
            ds_ring_sz=ADMIN_RING_ENTRIES, cxt_sts_ptr=self.admin.cxt_sts.addr >> 4,
            write_index_ptr=self.admin.write_index.addr >> 3))
        self._publish(self.l1_table, CXT_L1_ENT.encode(
            vl=1, ka=1, cxt_ctl_ptr=self.admin.cxt_ctl.addr >> 6, akey_sz=0,
            akey_ptr=self.admin.akey_table.addr >> 12, max_buffer=cap1["max_buffer"],
            opb_000_enb=cap1["opb_000_cap"]))

        await self._init_error_log()                                                  # 7
        await self.request(GSR.ACTIVE)                                                # 9
        gsv = await self.wait_state({GSV.ACTIVE, GSV.ERROR}, "activation")
        if gsv == GSV.ERROR:
            raise SdxiError("activation failed: function in GSV_ERROR")
        await self.ring_doorbell(0, 0)                                                # 10

    @staticmethod
    def _publish(buffer, raw):
        """Write a structure with its valid bit (in the first qword) last."""
        buffer.write(8, raw[8:])
        buffer.write(0, raw[:8])

    async def _init_error_log(self):
        """Error log initialisation (sdxi-spec.md section 6) with the 64-entry minimum log."""
        await self.write_reg("ERR_CFG", 0)
        await self.write_reg("ERR_STS", REG["ERR_STS"].mask())
        self.error_log = self.transport.alloc_dma(ERRLOG_ENTRIES * 64)
        await self.write_reg("ERR_CTL", REG["ERR_CTL"].encode(en=1))
        await self.update_reg("CTL0", fn_err_intr_en=1)
        await self.write_reg("ERR_WRT", 0)
        await self.write_reg("ERR_RD", 0)
        await self.write_reg("ERR_CFG", REG["ERR_CFG"].encode(
            en=1, sz=(ERRLOG_ENTRIES // 32).bit_length() - 1, ptr=self.error_log.addr >> 12))

    # ---- diagnostics ---------------------------------------------------------------------------

    async def interrupt_self_test(self, vector):
        """Raise ``vector`` through IMPL_MSIX_RAISE and wait for it; return True if it came."""
        self.transport.clear_interrupt(vector)
        await self.write_reg("IMPL_MSIX_RAISE", REG["IMPL_MSIX_RAISE"].encode(vector=vector))
        return await self.transport.wait_interrupt(vector, self.timing.interrupt_timeout_ns)

    async def describe(self):
        caps = self.caps or Capabilities(await self.read_reg("CAP0"), await self.read_reg("CAP1"),
                                         await self.read_reg("VERSION"))
        build = await self.read_reg("IMPL_BUILD_ID")
        return "\n".join([
            f"SDXI function {self.transport.identity}",
            f"  build id           {build:#018x}",
            f"  state              {(await self.state()).name}",
            f"  MSI-X vectors      {self.transport.interrupt_vectors}",
            caps.describe(),
        ])
