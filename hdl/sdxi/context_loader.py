"""Context loader: one context's tables read, checked and translated into the engine's entry."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from sdxi_defs.errors import ErrClass, ErrStep, ErrSubStep
from sdxi_defs.regmap import REGISTERS_BY_NAME
from sdxi_defs.structures import CXT_CTL, CXT_L1_ENT, CXT_L2_ENT, CXT_STS

from ..common.address_range import runs_past_top
from ..common.layouts import layout_of
from ..mmu.tlb import Lookup, Translation
from ..pcie.dma_read import ReadRequest, ReadStatus
from .context_table import CxtEntry
from .control_requests import (read_request, structure_read_states, translate_request,
                               translate_states)
from .error_classes import class_of_fault
from .error_completion import ErrorFound


__all__ = ["ContextLoader", "LoadCommand", "LoadResult", "LoadUpdate"]


class LoadCommand(data.StructLayout):
    """Load context ``cxt``; with ``tables_only`` (a refresh after CXT_UPD or SYNC), keep the
    read index, state and slot the engine has and do not read CXT_STS."""

    def __init__(self):
        super().__init__({"cxt": 16, "tables_only": 1})


class LoadUpdate(data.StructLayout):
    """What of ``entry`` the engine takes in this clock, by group: ``l1`` the L1 entry's fields
    (akey, akey_sz, max_buffer, opb, pv, pasid, user), ``ctl`` CXT_CTL's (ring, ring_sz, qos,
    wi_fault = 0), ``sts_addr`` / ``wi_addr`` the bus addresses of CXT_STS and the write index,
    ``wi_fault`` the write index's translation fault, ``sts`` CXT_STS's read index and state,
    ``slot`` the read index's ring slot."""

    def __init__(self):
        super().__init__({"l1": 1, "ctl": 1, "sts_addr": 1, "wi_addr": 1, "wi_fault": 1,
                          "sts": 1, "slot": 1, "entry": CxtEntry()})


class LoadResult(data.StructLayout):
    """``ok``, or the table error that stops the function (``step``, ``sub_step``,
    ``err_class``); ``sts_lost``: CXT_STS could not be translated, so the context is not to be
    stopped through it."""

    def __init__(self):
        found = ErrorFound()
        super().__init__({"ok": 1, "step": found["step"].shape,
                          "sub_step": found["sub_step"].shape,
                          "err_class": found["err_class"].shape, "sts_lost": 1})


class ContextLoader(wiring.Component):
    """Reads context ``cmd.cxt``'s L2 entry, L1 entry, CXT_CTL and CXT_STS (sdxi-spec.md 3.2
    to 3.5, docs/context-engine.md "Front end"), checks each (error steps CXT_L2 to CXT_STS of
    docs/spec-choices.md "Errors": vl, field bounds, tables that would run past 2^64 - 1),
    translates CXT_STS and the write index of a pv = 1 context, and works out the read
    index's ring slot (one quotient bit per clock). What it learns goes to the engine's entry
    through ``update`` as it lands; ``done`` ends the load.

    Reads and translations go one at a time through ``rd_req`` and ``translate``: the engine
    shares its ports with the loader while it waits for ``done``. A read's structure is taken
    from the engine's RAM read (``land`` asks for it, ``landed`` holds it a clock later).

    Members
    -------
    cmd : In(stream.Signature(LoadCommand))
    done : Out(stream.Signature(LoadResult))
    update : Out(LoadUpdate)
    entry : In(CxtEntry), the engine's entry as updated so far
    rd_req, rd_status : the control read client
    translate, translated : the TLB
    land : Out(1); landed : In(512)
    cxt_l2 : In(layout_of(CXT_L2)); max_akey_sz : In(4), CTL2.max_akey_sz
    """

    def __init__(self, *, config, ram_addr_bits, struct_ram, row_bytes):
        self._cfg = config
        self._struct_ram = struct_ram
        self._row = row_bytes
        super().__init__({
            "cmd": In(stream.Signature(LoadCommand())),
            "done": Out(stream.Signature(LoadResult())),
            "update": Out(LoadUpdate()),
            "entry": In(CxtEntry()),
            "rd_req": Out(stream.Signature(ReadRequest(ram_addr_bits))),
            "rd_status": In(stream.Signature(ReadStatus(), always_ready=True)),
            "translate": Out(stream.Signature(Lookup())),
            "translated": In(stream.Signature(Translation())),
            "land": Out(1),
            "landed": In(512),
            "cxt_l2": In(layout_of(REGISTERS_BY_NAME["CXT_L2"])),
            "max_akey_sz": In(4),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        cx = self.entry
        up = self.update
        landed = self.landed
        job = Signal(LoadCommand())
        result = Signal(LoadResult())
        m.d.comb += [self.done.payload.eq(result), self.translated.ready.eq(1)]

        rq = Signal.like(self.rd_req.payload)
        xq = Signal.like(self.translate.payload)
        wi_virtual = Signal(64)
        m.d.comb += [self.rd_req.payload.eq(rq), self.translate.payload.eq(xq)]

        def start_read(state, addr, length):
            m.d.sync += read_request(rq, addr, length, struct_ram=self._struct_ram,
                                     row_bytes=self._row)
            m.next = state

        def land():
            m.d.comb += self.land.eq(1)

        def read_states(state, ok, step):
            structure_read_states(m, state, self.rd_req, self.rd_status, land=land, ok=ok,
                                  fail=lambda err_class: fail(step, ErrSubStep.DAF, err_class))

        def start_translate(state, vaddr, *, write):
            m.d.sync += translate_request(xq, vaddr, write=write, entry=cx)
            m.next = state

        def fail(step, sub_step, err_class, *, sts_lost=0):
            m.d.sync += [result.ok.eq(0), result.step.eq(step), result.sub_step.eq(sub_step),
                         result.err_class.eq(err_class), result.sts_lost.eq(sts_lost)]
            m.next = "DONE"

        def succeed():
            m.d.sync += [result.ok.eq(1), result.sts_lost.eq(0)]
            m.next = "DONE"

        def akey_table_wraps(l1):
            """The AKey table (16-byte entries, 256 << akey_sz of them, 4 KiB-aligned) runs
            past 2^64 - 1; one of 4 KiB, all a build allows without max_akey_sz, cannot."""
            if cfg.max_akey_sz == 0:
                return Const(0)
            pages = Const(1, cfg.max_akey_sz + 1) << l1.akey_sz
            return runs_past_top(Cat(Const(0, 12), l1.akey_ptr),
                                 Cat(Const(0xFFF, 12), (pages - 1)[:cfg.max_akey_sz + 1]))

        l2 = data.View(layout_of(CXT_L2_ENT), landed[:CXT_L2_ENT.size * 8])
        l1 = data.View(layout_of(CXT_L1_ENT), landed[:CXT_L1_ENT.size * 8])
        ctl = data.View(layout_of(CXT_CTL), landed[:CXT_CTL.size * 8])
        sts = data.View(layout_of(CXT_STS), landed[:CXT_STS.size * 8])
        ctl_sts = Cat(Const(0, 4), ctl.cxt_sts_ptr)
        ctl_wi = Cat(Const(0, 3), ctl.write_index_ptr)
        m.d.comb += [
            up.entry.akey.eq(Cat(Const(0, 12), l1.akey_ptr)), up.entry.akey_sz.eq(l1.akey_sz),
            up.entry.max_buffer.eq(l1.max_buffer), up.entry.opb.eq(l1.opb_000_enb),
            up.entry.pv.eq(l1.pv), up.entry.pasid.eq(l1.cxt_pasid), up.entry.user.eq(~l1.pr),
            up.entry.ring.eq(Cat(Const(0, 6), ctl.ds_ring_ptr)),
            up.entry.ring_sz.eq(ctl.ds_ring_sz), up.entry.qos.eq(ctl.qos),
            up.entry.wi_fault.eq(self.translated.payload.fault),
            up.entry.sts.eq(Mux(cx.pv, self.translated.payload.paddr, ctl_sts)),
            up.entry.wi_ptr.eq(Mux(cx.pv, self.translated.payload.paddr, ctl_wi)),
            up.entry.read_index.eq(sts.read_index), up.entry.state.eq(sts.state),
        ]
        modulo = Signal(data.StructLayout({"count": 7, "remainder": 33}))
        m.d.comb += up.entry.slot.eq(modulo.remainder)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += job.eq(self.cmd.payload)
                    # The tables are 4 KiB-aligned and the offsets below 4 KiB: no carry.
                    start_read("L2", Cat(Const(0, 3), self.cmd.payload.cxt[7:16],
                                         self.cxt_l2.ptr), 8)

            def check_l2():
                with m.If(~l2.vl):
                    fail(ErrStep.CXT_L2, ErrSubStep.DVF, ErrClass.INVALID_ENTRY)
                with m.Else():
                    start_read("L1", Cat(Const(0, 5), job.cxt[0:7], l2.lv01_ptr), 32)

            def check_l1():
                with m.If(~l1.vl):
                    fail(ErrStep.CXT_L1, ErrSubStep.DVF, ErrClass.INVALID_ENTRY)
                with m.Elif(l1.akey_sz > self.max_akey_sz):
                    fail(ErrStep.CXT_L1, ErrSubStep.DVF, ErrClass.BAD_FIELD)
                with m.Elif(akey_table_wraps(l1)):
                    fail(ErrStep.CXT_L1, ErrSubStep.DVF, ErrClass.ADDRESS_WRAP)
                with m.Else():
                    m.d.comb += up.l1.eq(1)
                    start_read("CTL", Cat(Const(0, 6), l1.cxt_ctl_ptr), 64)

            def check_ctl():
                ring_sz = ctl.ds_ring_sz
                with m.If(~ctl.vl):
                    fail(ErrStep.CXT_CTL, ErrSubStep.DVF, ErrClass.INVALID_ENTRY)
                with m.Elif((ring_sz < 1024) | (ring_sz > (1024 << cfg.max_ds_ring_sz))):
                    fail(ErrStep.CXT_CTL, ErrSubStep.DVF, ErrClass.BAD_FIELD)
                with m.Elif(runs_past_top(Cat(Const(0, 6), ctl.ds_ring_ptr),
                                          Cat(Const(0x3F, 6), (ring_sz - 1)[:32]))):
                    fail(ErrStep.CXT_CTL, ErrSubStep.DVF, ErrClass.ADDRESS_WRAP)
                with m.Else():
                    m.d.comb += up.ctl.eq(1)
                    # The entry only ever holds bus addresses of CXT_STS and the write index:
                    # a virtual one would be written to as it is if its translation failed.
                    with m.If(cx.pv):
                        m.d.sync += wi_virtual.eq(ctl_wi)
                        start_translate("XLATE_STS", ctl_sts, write=1)
                    with m.Else():
                        m.d.comb += [up.sts_addr.eq(1), up.wi_addr.eq(1)]
                        tables_done(ctl_sts)

            def tables_done(sts_addr):
                with m.If(job.tables_only):
                    succeed()
                with m.Else():
                    start_read("STS", sts_addr, 16)

            def sts_translated(paddr):
                m.d.comb += up.sts_addr.eq(1)
                start_translate("XLATE_WI", wi_virtual, write=0)

            def wi_translated(paddr):
                m.d.comb += up.wi_addr.eq(1)
                tables_done(cx.sts)

            def wi_refused(fault):
                # Reported when the context next reads its write index, as a read error is.
                m.d.comb += up.wi_fault.eq(1)
                tables_done(cx.sts)

            def sts_refused(fault):
                fail(ErrStep.CXT_STS, ErrSubStep.ATF, class_of_fault(fault), sts_lost=1)

            for state, ok, fault in (("XLATE_STS", sts_translated, sts_refused),
                                     ("XLATE_WI", wi_translated, wi_refused)):
                translate_states(m, state, self.translate, self.translated, ok=ok, fault=fault)

            def check_sts():
                m.d.comb += up.sts.eq(1)
                m.d.sync += [modulo.count.eq(64), modulo.remainder.eq(0)]
                m.next = "MODULO"

            read_states("L2", check_l2, ErrStep.CXT_L2)
            read_states("L1", check_l1, ErrStep.CXT_L1)
            read_states("CTL", check_ctl, ErrStep.CXT_CTL)
            read_states("STS", check_sts, ErrStep.CXT_STS)

            with m.State("MODULO"):
                # slot = read_index mod ring_sz, one quotient bit per clock.
                shifted = Cat(cx.read_index.bit_select((modulo.count - 1)[:6], 1),
                              modulo.remainder[:32])
                with m.If(modulo.count == 0):
                    m.d.comb += up.slot.eq(1)
                    succeed()
                with m.Else():
                    m.d.sync += [modulo.count.eq(modulo.count - 1),
                                 modulo.remainder.eq(Mux(shifted >= cx.ring_sz,
                                                         shifted - cx.ring_sz, shifted))]

            with m.State("DONE"):
                m.d.comb += self.done.valid.eq(1)
                with m.If(self.done.ready):
                    m.next = "IDLE"
        return m
