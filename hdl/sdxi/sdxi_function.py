"""One SDXI function's own state: BAR0 registers, BAR2 doorbells, function state machine,
MSI-X, and the implementation registers that count what happened to it."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from sdxi_defs import regmap

from ..common.layouts import layout_of
from ..common.regbus import RegisterBus
from ..common.regfile import RegisterFile
from ..mmu.walker import PASID_BITS
from ..pcie.msix import MsixController
from .doorbells import DoorbellArray
from .function_state import FunctionStateMachine


__all__ = ["SdxiFunction"]

_REG = regmap.REGISTERS_BY_NAME


class SdxiFunction(wiring.Component):
    """The parts of an SDXI function that are its alone (docs/spec-choices.md, "Functions"):
    everything the host reaches through the function's BARs, its state (MMIO_STS0), and its
    interrupts. The context engine, the DMA engines and the TLB are shared: they see this
    function through the ports below.

    CAP0.sfunc is ``function``, the PCIe function number. Reads inside BAR0 or BAR2 but outside
    implemented registers return 0; writes there are dropped and counted (IMPL_DROPPED_WRITES),
    as are the requests the completer answers UR (``unsupported``).

    Members
    -------
    bar0 : In(RegisterBus), the registers, MSI-X table and PBA (other BAR0 ranges decode
        elsewhere and report their hits in ``bar0_other_hit``)
    bar0_other_hit : In(1)
    bar2 : In(RegisterBus), the doorbells
    unsupported : In(1), a request to this function answered UR or dropped
    pending, take_valid, take_cxt : the doorbells (DoorbellArray)
    activate, activate_done, activate_ok, soft_stop, hard_stop, quiesced, fatal, gsv : the
        function state machine (FunctionStateMachine)
    ctl2, cxt_l2, rkey, err_ctl, err_cfg, err_wrt, err_rd, err_sts : Out, register values
    err_wrt_load, err_wrt_value, err_sts_set, raise_vector0 : In, the error log's updates
    pasid_table, pasid_count : Out, IMPL_PASID_TABLE decoded (count 0: no table)
    tlb_inv, tlb_inv_kind, tlb_inv_pasid, tlb_inv_vaddr : Out, an IMPL_TLB_INV write
    tlb_inv_busy : In(1)
    raise_vectors : In(vectors), from the retire unit
    cycles : In(64); perf_decode : In(64); perf_tlb : In(64); perf_walk : In(32): shared
        counters, read through this function's implementation registers
    bus_master, msix_enable, msix_mask : In(1), from the hard block's view of this function
    msix_address, msix_data, msix_int, msix_sent, msix_fail, may_send, msix_busy : the hard
        block's MSI-X port, shared in turns (MsixController)
    """

    def __init__(self, *, config, function):
        self._cfg = config
        self._function = function
        c = config.contexts
        super().__init__({
            "bar0": In(RegisterBus(regmap.BAR0_LOG2_SIZE - 3)),
            "bar0_other_hit": In(1),
            "bar2": In(RegisterBus(config.bar2_log2_size - 3)),
            "unsupported": In(1),
            "pending": Out(c), "take_valid": In(1), "take_cxt": In(range(c)),
            "activate": Out(1), "activate_done": In(1), "activate_ok": In(1),
            "soft_stop": Out(1), "hard_stop": Out(1), "quiesced": In(1), "fatal": In(1),
            "gsv": Out(3),
            "ctl2": Out(layout_of(_REG["CTL2"])), "cxt_l2": Out(layout_of(_REG["CXT_L2"])),
            "rkey": Out(layout_of(_REG["RKEY"])),
            "err_ctl": Out(64), "err_cfg": Out(64), "err_wrt": Out(64), "err_rd": Out(64),
            "err_sts": Out(64),
            "err_wrt_load": In(1), "err_wrt_value": In(64), "err_sts_set": In(64),
            "raise_vector0": In(1),
            "pasid_table": Out(64), "pasid_count": Out(PASID_BITS + 1),
            "tlb_inv": Out(1), "tlb_inv_kind": Out(2), "tlb_inv_pasid": Out(PASID_BITS),
            "tlb_inv_vaddr": Out(64), "tlb_inv_busy": In(1),
            "raise_vectors": In(config.msix_vectors),
            "cycles": In(64), "perf_decode": In(64), "perf_tlb": In(64), "perf_walk": In(32),
            "bus_master": In(1), "msix_enable": In(1), "msix_mask": In(1),
            "msix_address": Out(64), "msix_data": Out(32), "msix_int": Out(1),
            "msix_sent": In(1), "msix_fail": In(1), "may_send": In(1), "msix_busy": Out(1),
        })

    def elaborate(self, platform):
        cfg = self._cfg
        m = Module()
        m.submodules.registers = registers = RegisterFile(
            regmap.BAR0_REGISTERS, addr_width=regmap.BAR0_LOG2_SIZE - 3, loadable=("ERR_WRT",),
            limits=cfg.capability_limits())
        m.submodules.function = fsm = FunctionStateMachine()
        m.submodules.doorbells = doorbells = DoorbellArray(
            contexts=cfg.contexts, db_stride=cfg.db_stride, bar_log2_size=cfg.bar2_log2_size)
        m.submodules.msix = msix = MsixController(
            vectors=cfg.msix_vectors, table_offset=regmap.MSIX_TABLE_OFFSET,
            pba_offset=regmap.MSIX_PBA_OFFSET, addr_width=regmap.BAR0_LOG2_SIZE - 3)

        # ---- BAR0: the registers and MSI-X decode their own addresses --------------------------
        bar0 = self.bar0
        for bus in (registers.bus, msix.bus):
            m.d.comb += [bus.addr.eq(bar0.addr), bus.w_stb.eq(bar0.w_stb),
                         bus.r_stb.eq(bar0.r_stb), bus.w_data.eq(bar0.w_data),
                         bus.w_be.eq(bar0.w_be)]
        m.d.comb += [bar0.r_data.eq(registers.bus.r_data | msix.bus.r_data),
                     bar0.w_hit.eq(registers.bus.w_hit | msix.bus.w_hit)]
        wiring.connect(m, wiring.flipped(self.bar2), doorbells.bus)

        # ---- doorbells and the state machine --------------------------------------------------
        stored, ro = registers.stored, registers.ro
        m.d.comb += [
            self.pending.eq(doorbells.pending),
            doorbells.take_valid.eq(self.take_valid),
            doorbells.take_cxt.eq(self.take_cxt),
            self.activate.eq(fsm.activate),
            fsm.activate_done.eq(self.activate_done),
            fsm.activate_ok.eq(self.activate_ok),
            self.soft_stop.eq(fsm.soft_stop),
            self.hard_stop.eq(fsm.hard_stop),
            fsm.quiesced.eq(self.quiesced),
            fsm.fatal.eq(self.fatal),
            self.gsv.eq(fsm.gsv),
            fsm.request.eq(registers.written.CTL0 & registers.write_be[0]),
            fsm.gsr.eq(_REG["CTL0"]["fn_gsr"].bits(registers.write_data)),
        ]

        # ---- register values out, the error log's updates in -------------------------------------
        m.d.comb += [
            self.ctl2.eq(stored.CTL2), self.cxt_l2.eq(stored.CXT_L2), self.rkey.eq(stored.RKEY),
            self.err_ctl.eq(stored.ERR_CTL), self.err_cfg.eq(stored.ERR_CFG),
            self.err_wrt.eq(stored.ERR_WRT), self.err_rd.eq(stored.ERR_RD),
            self.err_sts.eq(stored.ERR_STS),
            registers.load.ERR_WRT.eq(self.err_wrt_load),
            registers.load_value.ERR_WRT.eq(self.err_wrt_value),
            registers.set.ERR_STS.eq(self.err_sts_set),
        ]

        # ---- counters and read-only registers ---------------------------------------------------
        dropped_writes = Signal(64)
        unsupported = Signal(64)
        bar0_dropped = bar0.w_stb & bar0.w_be.any() & ~bar0.w_hit & ~self.bar0_other_hit
        bar2_dropped = self.bar2.w_stb & self.bar2.w_be.any() & ~self.bar2.w_hit
        with m.If(bar0_dropped | bar2_dropped | doorbells.dropped):
            m.d.sync += dropped_writes.eq(dropped_writes + 1)
        with m.If(self.unsupported):
            m.d.sync += unsupported.eq(unsupported + 1)
        m.d.comb += [
            ro.STS0.eq(fsm.gsv),
            ro.CAP0.eq(cfg.cap0_of(self._function)),
            ro.CAP1.eq(cfg.cap1),
            ro.VERSION.eq(cfg.version),
            ro.IMPL_BUILD_ID.eq(cfg.build_id),
            ro.IMPL_CYCLES.eq(self.cycles),
            ro.IMPL_DROPPED_WRITES.eq(dropped_writes),
            ro.IMPL_UNSUPPORTED_REQS.eq(unsupported),
            ro.IMPL_PERF_DECODE.eq(self.perf_decode),
            ro.IMPL_PERF_TLB.eq(self.perf_tlb),
            ro.IMPL_PERF_WALK.eq(self.perf_walk),
        ]

        # ---- address spaces: the PASID table and TLB invalidation --------------------------------
        table = _REG["IMPL_PASID_TABLE"]
        inv = _REG["IMPL_TLB_INV"]
        pasid_table = stored.IMPL_PASID_TABLE
        m.d.comb += [
            self.pasid_table.eq(Cat(Const(0, 12), table["ptr"].bits(pasid_table))),
            self.pasid_count.eq(Mux(table["en"].bits(pasid_table),
                                    Const(1, PASID_BITS + 1) << table["sz"].bits(pasid_table),
                                    0)),
            self.tlb_inv.eq(registers.written.IMPL_TLB_INV),
            self.tlb_inv_kind.eq(inv["kind"].bits(registers.write_data)),
            self.tlb_inv_pasid.eq(inv["pasid"].bits(registers.write_data)),
            self.tlb_inv_vaddr.eq(stored.IMPL_TLB_INV_ADDR),
            ro.IMPL_TLB_INV.eq(self.tlb_inv_busy << inv["busy"].lsb),
        ]

        # ---- MSI-X ------------------------------------------------------------------------------
        raised_vector = _REG["IMPL_MSIX_RAISE"]["vector"].bits(registers.write_data)
        self_test = Signal(cfg.msix_vectors)
        with m.If(registers.written.IMPL_MSIX_RAISE & (raised_vector < cfg.msix_vectors)):
            m.d.comb += self_test.eq(1 << raised_vector)
        error_vector = fsm.entered_error & _REG["CTL0"]["fn_err_intr_en"].bits(stored.CTL0)
        m.d.comb += [
            msix.raise_vectors.eq(self_test | error_vector | self.raise_vectors |
                                  self.raise_vector0),
            msix.msix_enable.eq(self.msix_enable),
            # An MSI-X message is a memory write: none goes out while bus mastering is off;
            # vectors raised meanwhile stay pending, as under the Function Mask.
            msix.msix_function_mask.eq(self.msix_mask | ~self.bus_master),
            self.msix_address.eq(msix.msix_address),
            self.msix_data.eq(msix.msix_data),
            self.msix_int.eq(msix.msix_int),
            msix.msix_sent.eq(self.msix_sent),
            msix.msix_fail.eq(self.msix_fail),
            msix.may_send.eq(self.may_send),
            self.msix_busy.eq(msix.busy),
        ]
        return m
