"""An SDXI function, brought up in the Linux SDXI driver's order (sdxi-spec.md section 7)."""

from dataclasses import dataclass

from sdxi_defs.descriptors import SyncFilter
from sdxi_defs.errors import ERRLOG_TYPE
from sdxi_defs.regmap import GSR, GSV, REGISTERS_BY_NAME, TlbInvalidateKind, doorbell_offset
from sdxi_defs.structures import CXT_L2_ENT, CXT_STS, ERRLOG_HD_ENT, RKEY_ENT, CxtState

from .address_space import AddressSpace, PasidTable
from .caps import Capabilities
from .context import Completion, Context, ContextMemory
from .descriptors import BUFFER_AKEY, admin_rkey_update, admin_start, admin_stop, admin_sync
from .errors import ErrorLogEntry, ErrorLogLoss, SdxiError


__all__ = ["SdxiCard", "Timing", "BAR_REGS", "BAR_DOORBELLS"]

REG = REGISTERS_BY_NAME
BAR_REGS = 0
BAR_DOORBELLS = 2
ADMIN_RING_ENTRIES = 1024
ERRLOG_ENTRIES = 64          # the spec minimum; ERR_CFG.sz = 1


@dataclass(frozen=True)
class Timing:
    """Poll period and time-outs, in nanoseconds (Linux: 1 ms polls, 1 s time-out)."""
    poll_ns: float = 1_000_000
    state_timeout_ns: float = 1_000_000_000
    interrupt_timeout_ns: float = 1_000_000_000
    completion_timeout_ns: float = 1_000_000_000
    ns_per_byte: float = 0.0      #: added to a completion's time-out for each byte it moves

    @classmethod
    def simulation(cls):
        """Microsecond-scale waits: simulated idle time costs wall time."""
        return cls(poll_ns=40, state_timeout_ns=20_000, interrupt_timeout_ns=20_000,
                   completion_timeout_ns=40_000, ns_per_byte=1.0)

    def completion_timeout(self, nbytes=0):
        return self.completion_timeout_ns + self.ns_per_byte * nbytes


RKEY_ENTRIES = 256      #: the RKey table the driver gives a function (RKEY.sz = 0)


@dataclass(frozen=True)
class RemoteKey:
    """Entry ``index`` of the RKey table of function ``sfunc``: what an AKey of another
    function names to reach the memory that entry grants (``Context.akey_for``)."""
    sfunc: int
    index: int


class SdxiCard:
    """One SDXI function behind a ``Transport``.

    ``await card.start()`` performs the bring-up; ``describe()`` prints what a user wants to
    see. Every wait is bounded by ``timing``. ``error_log_lost`` lists what ERR_STS said
    about entries lost (``ErrorLogLoss``) at the last ``read_error_log()``.
    """

    def __init__(self, transport, timing=Timing()):
        self.transport = transport
        self.timing = timing
        self.caps = None
        self.l2_table = None
        self.l1_table = None
        self.admin = None
        self.error_log = None
        self.contexts = {}
        self._errlog_read = 0
        self.pasid_table = None
        self.rkey_table = None
        self._rkeys_granted = 0
        self.error_log_lost = []

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

        mem = ContextMemory.allocate(alloc, ADMIN_RING_ENTRIES)                       # 4
        mem.cxt_sts.write(0, CXT_STS.encode(state=CxtState.RUN, read_index=0))
        self._publish(mem.cxt_ctl, mem.cxt_ctl_bytes())
        self._publish(self.l1_table, mem.l1_entry(cap1["max_buffer"], cap1["opb_000_cap"]))
        self.admin = Context(self, 0, mem)
        self.contexts = {0: self.admin}

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

    # ---- contexts (sdxi-spec.md 7, steps 11-17) -------------------------------------------------

    async def create_context(self, cxt_id=None, *, ring_entries=1024, qos=0, vector=None,
                             opb=None, start_index=0, max_buffer=None, akey_table=None,
                             space=None, privileged=False):
        """Allocate, describe and start a client context; return it (libsdxi's create).

        AKey entry ``BUFFER_AKEY`` covers buffers in the default address space; with ``vector``,
        entry 1 raises that MSI-X vector (for ``Context.interrupt``). ``opb`` limits the
        operation groups (default: all the function has) and ``max_buffer`` the buffer size
        (default: the function's); ``start_index`` is the read and write index the ring
        starts at; ``akey_table`` a 4 KiB buffer to use as the AKey table. With ``space`` (an
        ``AddressSpace``), the ring, CXT_STS, write index and CSTs are virtual memory of that
        space, reached as a user unless ``privileged`` (L1 pv = 1, pr).
        """
        if cxt_id is None:
            free = [i for i in range(1, self.caps.max_cxt + 1) if i not in self.contexts]
            if not free:
                raise SdxiError("no free context")
            cxt_id = free[0]
        if not 1 <= cxt_id <= self.caps.max_cxt or cxt_id in self.contexts:
            raise ValueError(f"context id {cxt_id} is taken or out of range")
        if cxt_id >= 128:
            raise ValueError("this driver uses one L1 table: context ids 1 to 127")
        mem = ContextMemory.allocate(self.transport.alloc_dma, ring_entries,
                                     akey_table=akey_table, space=space, privileged=privileged)
        mem.cxt_sts.write(0, CXT_STS.encode(state=CxtState.STOP_SW, read_index=start_index))
        mem.write_index.write_u64(0, start_index)
        cxt = Context(self, cxt_id, mem)
        cxt.set_akey(BUFFER_AKEY, vl=1)
        if vector is not None:
            cxt.set_akey(1, vl=1, iv=1, intr_num=vector)
        self._publish(mem.cxt_ctl, mem.cxt_ctl_bytes(qos))
        cap1 = REG["CAP1"].decode(self.caps.cap1)
        l1 = self.l1_table
        raw = mem.l1_entry(cap1["max_buffer"] if max_buffer is None else max_buffer,
                           cap1["opb_000_cap"] if opb is None else opb)
        l1.write(32 * cxt_id + 8, raw[8:])
        l1.write(32 * cxt_id, raw[:8])
        self.contexts[cxt_id] = cxt
        await self.start_context(cxt)
        return cxt

    async def start_context(self, cxt):
        cst = Completion(self)
        await self.admin.submit([admin_start(cxt.id, cst)])
        await cst.wait(f"start of context {cxt.id}", self.timing.completion_timeout())
        cxt.write_index = cxt.mem.write_index.read_u64(0)

    async def stop_context(self, cxt, *, hard=False):
        """CXT_STOP then SYNC(STOP) with the CST on the SYNC (Linux's two-slot stop)."""
        cst = Completion(self)
        await self.admin.submit([admin_stop(cxt.id, cxt.id, hard=hard),
                                 admin_sync(cxt.id, cxt.id, SyncFilter.STOP, cst)])
        await cst.wait(f"stop of context {cxt.id}", self.timing.completion_timeout())

    async def destroy_context(self, cxt):
        """Stop the context and rescind its L1 entry (valid bit first); libsdxi's close."""
        await self.stop_context(cxt)
        self.l1_table.write(32 * cxt.id, bytes(8))
        self.l1_table.write(32 * cxt.id + 8, bytes(24))
        del self.contexts[cxt.id]

    # ---- address spaces (docs/spec-choices.md, "Address spaces") ---------------------------------

    async def enable_address_spaces(self, pasid_bits=6):
        """Give the function a PASID table of ``1 << pasid_bits`` entries (IMPL_PASID_TABLE)."""
        self.pasid_table = PasidTable(self.transport.alloc_dma, 1 << pasid_bits)
        await self.write_reg("IMPL_PASID_TABLE", REG["IMPL_PASID_TABLE"].encode(
            en=1, sz=pasid_bits, ptr=self.pasid_table.buffer.addr >> 12))

    # ---- RKeys: this function's memory for another function of the group ----------------------

    async def grant_rkey(self, requester_sfunc, space=None, *, privileged=False, vector=None):
        """Let function ``requester_sfunc`` of the group reach ``space`` (an ``AddressSpace``
        of this function, or None: this function's bus addresses) through a new entry of this
        function's RKey table, and with ``vector`` raise that MSI-X vector of this function
        (an INTR through the key); return the ``RemoteKey`` that function's AKeys name."""
        if not self.caps.rkey:
            raise SdxiError("this function has no RKeys (CAP1.rkey_cap = 0)")
        if self.rkey_table is None:
            self.rkey_table = self.transport.alloc_dma(RKEY_ENTRIES * RKEY_ENT.size)
            await self.write_reg("RKEY", REG["RKEY"].encode(
                en=1, sz=0, ptr=self.rkey_table.addr >> 12))
        index = self._rkeys_granted
        if index >= RKEY_ENTRIES:
            raise SdxiError("RKey table full")
        self._rkeys_granted += 1
        fields = dict(vl=1, req_sfunc=requester_sfunc)
        if space is not None:
            fields.update(pv=1, pasid=space.pasid, pr=int(privileged))
        if vector is not None:
            fields.update(iv=1, intr_num=vector)
        self.rkey_table.write(index * RKEY_ENT.size, RKEY_ENT.encode(**fields))
        return RemoteKey(self.caps.sfunc, index)

    async def revoke_rkey(self, key):
        """Invalidate RKey ``key`` (one this function granted) and wait until no descriptor
        that starts from now on can use it: the entry's vl is cleared, then RKEY_UPD runs on
        the admin context and completes."""
        if key.sfunc != self.caps.sfunc:
            raise ValueError(f"RKey of function {key.sfunc}, not of this one ({self.caps.sfunc})")
        self.rkey_table.write(key.index * RKEY_ENT.size, bytes(RKEY_ENT.size))
        cst = Completion(self)
        await self.admin.submit([admin_rkey_update(key.index, key.index, cst)])
        await cst.wait(f"revocation of RKey {key.index}", self.timing.completion_timeout())

    async def create_address_space(self, pasid):
        """A new, empty address space bound to ``pasid`` in the PASID table."""
        if self.pasid_table is None:
            await self.enable_address_spaces()
        space = AddressSpace(self.transport.alloc_dma, pasid, memory=self.transport.host_memory())
        self.pasid_table.bind(space)
        return space

    async def invalidate_tlb(self, pasid=None, vaddr=None):
        """Drop cached translations: all of them, ``pasid``'s, or the 4 KiB page at ``vaddr``
        in ``pasid``; return once the TLB has done it (bounded by the state time-out)."""
        if vaddr is not None:
            if pasid is None:
                raise ValueError("a page invalidation needs its PASID")
            await self.write_reg("IMPL_TLB_INV_ADDR", vaddr)
            kind = TlbInvalidateKind.PAGE
        else:
            kind = TlbInvalidateKind.ALL if pasid is None else TlbInvalidateKind.PASID
        await self.write_reg("IMPL_TLB_INV", REG["IMPL_TLB_INV"].encode(kind=kind,
                                                                        pasid=pasid or 0))
        waited = 0.0
        while REG["IMPL_TLB_INV"]["busy"].get(await self.read_reg("IMPL_TLB_INV")):
            if waited >= self.timing.state_timeout_ns:
                raise SdxiError(f"TLB invalidation still busy after {waited:.0f} ns")
            await self.transport.sleep_ns(self.timing.poll_ns)
            waited += self.timing.poll_ns

    async def tlb_counters(self):
        """(hits, misses, clocks spent walking) since reset."""
        tlb = REG["IMPL_PERF_TLB"].decode(await self.read_reg("IMPL_PERF_TLB"))
        walk = REG["IMPL_PERF_WALK"].decode(await self.read_reg("IMPL_PERF_WALK"))
        return tlb["hits"], tlb["misses"], walk["cycles"]

    # ---- error log (sdxi-spec.md section 6, "Processing") ----------------------------------------

    async def read_error_log(self):
        """The entries logged since the last call (``ErrorLogEntry``), oldest first; advances
        ERR_RD and clears ERR_STS. What ERR_STS said about lost entries is left in
        ``error_log_lost``."""
        err_sts = REG["ERR_STS"]
        raw = await self.read_reg("ERR_STS")
        sts = err_sts.decode(raw)
        self.error_log_lost = [loss for loss in ErrorLogLoss if sts[loss.field]]
        if raw:
            await self.write_reg("ERR_STS", raw)
        if not sts["sts"]:
            return []
        rd = await self.read_reg("ERR_RD")
        wrt = await self.read_reg("ERR_WRT")
        entries = []
        for index in range(rd, wrt):
            raw = self.error_log.read((index % ERRLOG_ENTRIES) * 64, 64)
            fields = ERRLOG_HD_ENT.decode(raw)
            if not fields["vl"] or fields["type"] != ERRLOG_TYPE:
                raise SdxiError(f"error log slot {index % ERRLOG_ENTRIES} is not a valid entry")
            entries.append(ErrorLogEntry(index, fields))
        await self.write_reg("ERR_RD", wrt)
        return entries

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
