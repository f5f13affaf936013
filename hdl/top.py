"""``sdxi_engine``: the top level that binds to the UltraScale+ PCIe hard block by port name."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from sdxi_defs import regmap
from sdxi_defs.ram_map import RamLayout

from .config import EngineConfig
from .common.client_mux import ClientMux
from .common.packet_arbiter import PacketArbiter
from .common.regfile import RegisterFile
from .common.register_slice import RegisterSlice
from .common.transaction_arbiter import TransactionArbiter
from .mmu.tlb import Lookup, Translation
from .mmu.translation_unit import TranslationUnit
from .pcie.cfg_mgmt import DeviceControlMonitor
from .pcie.completer import MmioCompleter
from .pcie.dma_exerciser import DmaExerciser
from .pcie.dma_layouts import RqTlpBeat
from .pcie.layouts import RqDescriptor
from .pcie.dma_ram import DmaRam, ram_addr_bits
from .pcie.dma_read import DmaReadEngine, ReadRequest, ReadStatus
from .pcie.dma_write import DmaWriteEngine, WriteRelease, WriteRequest, WriteStatus
from .pcie.msix import MsixController
from .pcie.rc_parser import RcParser
from .pcie.rq_framer import RqFramer
from .sdxi.context_engine import FETCHERS, ContextEngine
from .sdxi.data_mover import DataMover
from .sdxi.doorbells import DoorbellArray
from .sdxi.error_completion import ErrorCompletion
from .sdxi.error_log import ErrorLogWriter
from .sdxi.retire import CST_WRITERS, Retire
from .sdxi.function_state import FunctionStateMachine


__all__ = ["SdxiEngine", "hard_block_ports"]


def _axis_ports(prefix, direction, data_width, user_width):
    """AXI-Stream ports named as the hard block's user side (``s_axis_cq_tdata``, ...)."""
    back = In if direction is Out else Out
    return {
        f"{prefix}_tdata": direction(data_width),
        f"{prefix}_tkeep": direction(data_width // 32),
        f"{prefix}_tlast": direction(1),
        f"{prefix}_tuser": direction(user_width),
        f"{prefix}_tvalid": direction(1),
        f"{prefix}_tready": back(1),
    }


def hard_block_ports(config):
    """Every port of ``sdxi_engine`` except ``clk``/``rst``, with direction and width.

    Names and widths are the pcie4c_uscale_plus user interface (PG213) seen from the user side,
    so a Vivado instance and cocotbext-pcie's ``UltraScalePlusPcieDevice`` bind by name.
    """
    w = config.data_width
    tu = config.tuser_widths
    ports = {}
    ports.update(_axis_ports("s_axis_cq", In, w, tu["cq"]))
    ports.update(_axis_ports("m_axis_cc", Out, w, tu["cc"]))
    ports.update(_axis_ports("m_axis_rq", Out, w, tu["rq"]))
    ports.update(_axis_ports("s_axis_rc", In, w, tu["rc"]))
    ports.update({
        "pcie_rq_seq_num0": In(6), "pcie_rq_seq_num_vld0": In(1),
        "pcie_rq_seq_num1": In(6), "pcie_rq_seq_num_vld1": In(1),
        "pcie_cq_np_req": Out(2), "pcie_cq_np_req_count": In(6),
        "cfg_max_payload": In(2), "cfg_max_read_req": In(3), "cfg_function_status": In(16),
        "cfg_mgmt_addr": Out(10), "cfg_mgmt_function_number": Out(8),
        "cfg_mgmt_write": Out(1), "cfg_mgmt_write_data": Out(32),
        "cfg_mgmt_byte_enable": Out(4), "cfg_mgmt_read": Out(1),
        "cfg_mgmt_read_data": In(32), "cfg_mgmt_read_write_done": In(1),
        "cfg_interrupt_msix_enable": In(4), "cfg_interrupt_msix_mask": In(4),
        "cfg_interrupt_msix_address": Out(64), "cfg_interrupt_msix_data": Out(32),
        "cfg_interrupt_msix_int": Out(1), "cfg_interrupt_msix_vec_pending": Out(2),
        "cfg_interrupt_msix_vec_pending_status": In(1),
        "cfg_interrupt_msix_sent": In(1), "cfg_interrupt_msix_fail": In(1),
        "cfg_interrupt_msi_function_number": Out(8),
    })
    return ports


def _bind_axis(m, top, prefix, stream, *, incoming):
    """Connect ``top``'s flat AXI-Stream ports to an ``axi_stream`` interface."""
    p = stream.payload
    pairs = [("tdata", p.data), ("tkeep", p.keep), ("tlast", p.last), ("tuser", p.user),
             ("tvalid", stream.valid)]
    for suffix, inner in pairs:
        port = getattr(top, f"{prefix}_{suffix}")
        m.d.comb += (inner.eq(port) if incoming else port.eq(inner))
    ready = getattr(top, f"{prefix}_tready")
    m.d.comb += (ready.eq(stream.ready) if incoming else stream.ready.eq(ready))


def _fan_out(m, initiator, targets):
    """Share one register bus among targets.

    ``targets`` holds buses, which see every access and decode their own addresses (reading 0
    elsewhere), and ``(bus, base, size)`` ranges in bytes, which see only accesses inside the
    range, at addresses relative to ``base``.
    """
    r_data = 0
    w_hit = 0
    for t in targets:
        if isinstance(t, tuple):
            bus, base, size = t
            inside = (initiator.addr >= base >> 3) & (initiator.addr < (base + size) >> 3)
            was_inside = Signal()
            with m.If(initiator.r_stb):
                m.d.sync += was_inside.eq(inside)
            m.d.comb += [bus.addr.eq(initiator.addr - (base >> 3)),
                         bus.w_stb.eq(initiator.w_stb & inside),
                         bus.r_stb.eq(initiator.r_stb & inside)]
            r_data = r_data | Mux(was_inside, bus.r_data, 0)
            w_hit = w_hit | (inside & bus.w_hit)
        else:
            bus = t
            m.d.comb += [bus.addr.eq(initiator.addr), bus.w_stb.eq(initiator.w_stb),
                         bus.r_stb.eq(initiator.r_stb)]
            r_data = r_data | bus.r_data
            w_hit = w_hit | bus.w_hit
        m.d.comb += [bus.w_data.eq(initiator.w_data), bus.w_be.eq(initiator.w_be)]
    m.d.comb += [initiator.r_data.eq(r_data), initiator.w_hit.eq(w_hit)]


class SdxiEngine(wiring.Component):
    """The SDXI engine as exported to ``sdxi_engine.v`` (DESIGN.md section 2).

    The MMIO completer, the SDXI function registers and state machine, BAR2 doorbells, MSI-X,
    the DMA read and write engines (docs/dma.md) and their clients: the context engine and its
    data mover (docs/context-engine.md), and the DMA exerciser, which may run only while the
    function is stopped.
    """

    def __init__(self, config=EngineConfig()):
        self._config = config
        super().__init__(hard_block_ports(config))

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        cfg = self._config
        m = Module()

        m.submodules.completer = completer = MmioCompleter(
            data_width=cfg.data_width, cq_user_width=cfg.tuser_widths["cq"],
            cc_user_width=cfg.tuser_widths["cc"], bar0_log2_size=regmap.BAR0_LOG2_SIZE,
            bar2_log2_size=cfg.bar2_log2_size)
        m.submodules.registers = registers = RegisterFile(
            regmap.BAR0_REGISTERS, addr_width=regmap.BAR0_LOG2_SIZE - 3, loadable=("ERR_WRT",),
            limits=cfg.capability_limits())
        m.submodules.function = function = FunctionStateMachine()
        m.submodules.doorbells = doorbells = DoorbellArray(
            contexts=cfg.contexts, db_stride=cfg.db_stride, bar_log2_size=cfg.bar2_log2_size)
        m.submodules.msix = msix = MsixController(
            vectors=cfg.msix_vectors, table_offset=regmap.MSIX_TABLE_OFFSET,
            pba_offset=regmap.MSIX_PBA_OFFSET, addr_width=regmap.BAR0_LOG2_SIZE - 3)

        # ---- PCIe completer side ---------------------------------------------------------------
        _bind_axis(m, self, "s_axis_cq", completer.cq, incoming=True)
        _bind_axis(m, self, "m_axis_cc", completer.cc, incoming=False)
        m.d.comb += [
            completer.cfg_max_payload.eq(self.cfg_max_payload),
            self.pcie_cq_np_req.eq(0b11),
        ]
        # ---- DMA engines and their exerciser ---------------------------------------------------
        w = cfg.data_width
        row_bytes = w // 8
        layout = RamLayout(row_bytes)
        ram_bytes = 1 << (max(layout.bytes, regmap.DMA_RAM_BYTES) - 1).bit_length()
        ram_rows = ram_bytes // row_bytes
        ram_bits = ram_addr_bits(w, ram_rows)
        # The side port reads control structures (at most 64 bytes, aligned to their size).
        # Side writers: the error log, the retire unit and the context engine (below).
        m.submodules.dma_ram = ram = DmaRam(data_width=w, rows=ram_rows, side_writers=3,
                                            qword_writers=(1,), side_pair=row_bytes < 64)
        # Read clients: exerciser, context engine (tables, ring), page tables, mover. Write
        # clients: exerciser, context engine, retire (read index, CSTs), error log, error
        # completion, mover. Each is an id prefix on its engine's one request stream.
        m.submodules.read_clients = read_mux = ClientMux(
            request=lambda bits: ReadRequest(ram_bits, bits), status=ReadStatus,
            clients=3 + FETCHERS + 1, client_id_bits=8)
        m.submodules.write_clients = write_mux = ClientMux(
            request=lambda bits: WriteRequest(ram_bits, bits), status=WriteStatus,
            notice=WriteRelease, clients=5 + CST_WRITERS + 1, client_id_bits=8)
        m.submodules.dma_read = rd = DmaReadEngine(
            data_width=w, ram_rows=ram_rows, id_bits=read_mux.id_bits,
            credit_bytes=cfg.cpl_credit_bytes, credit_headers=cfg.cpl_credit_headers)
        m.submodules.dma_write = wr = DmaWriteEngine(data_width=w, ram_rows=ram_rows,
                                                     id_bits=write_mux.id_bits)
        wiring.connect(m, read_mux.request, rd.req)
        wiring.connect(m, rd.status, read_mux.status)
        # Register cut between the clients and the write engine, whose readiness comes from
        # its TLP cutting: without it, that logic would reach through the client multiplexer
        # into every client.
        m.submodules.write_req_slice = write_slice = RegisterSlice(
            write_mux.request.payload.shape())
        wiring.connect(m, write_mux.request, write_slice.i)
        wiring.connect(m, write_slice.o, wr.req)
        wiring.connect(m, wr.status, write_mux.status)
        wiring.connect(m, wr.released, write_mux.notice)
        # The arbiter merges the beats' control fields; the data lanes bypass it (below).
        rq_control = data.StructLayout({name: field.shape for name, field in RqTlpBeat(w)
                                        if name != "data"})
        m.submodules.rq_arbiter = arbiter = PacketArbiter(rq_control, 2)
        m.submodules.rq_framer = framer = RqFramer(data_width=w, straddle=cfg.rq_straddle)
        m.submodules.rc_parser = parser = RcParser(data_width=w, straddle=cfg.rc_straddle)
        m.submodules.devctl = devctl = DeviceControlMonitor()
        m.submodules.exerciser = exerciser = DmaExerciser(
            data_width=w, ram_rows=ram_rows,
            regs_addr_width=(regmap.DMA_EXERCISER_BYTES - 1).bit_length() - 3,
            window_addr_width=(regmap.DMA_RAM_BYTES - 1).bit_length() - 3)

        # The read engine's splitter arithmetic on one side, the arbiter and framer on the other.
        # A read request is one beat without payload: only its header crosses the slice.
        read_header = data.StructLayout({"desc": RqDescriptor, "first_be": 4, "last_be": 4,
                                         "seq_num": 6})
        m.submodules.read_tlp_slice = read_tlp_slice = RegisterSlice(read_header)
        into, out = read_tlp_slice.i, read_tlp_slice.o
        m.d.comb += [into.valid.eq(rd.tlp.valid), rd.tlp.ready.eq(into.ready),
                     arbiter.i[0].valid.eq(out.valid), out.ready.eq(arbiter.i[0].ready),
                     arbiter.i[0].payload.first.eq(1), arbiter.i[0].payload.last.eq(1)]
        for name in read_header.members:
            m.d.comb += [into.payload[name].eq(rd.tlp.payload[name]),
                         arbiter.i[0].payload[name].eq(out.payload[name])]
        # Only the write engine's beats have payload (a read request's ``keep`` is 0), so the
        # data lanes go around the arbiter, straight from the write engine to the framer.
        into, out = arbiter.i[1], arbiter.o
        m.d.comb += [into.valid.eq(wr.tlp.valid), wr.tlp.ready.eq(into.ready),
                     framer.tlp.valid.eq(out.valid), out.ready.eq(framer.tlp.ready),
                     framer.tlp.payload.data.eq(wr.tlp.payload.data)]
        for name in rq_control.members:
            m.d.comb += [into.payload[name].eq(wr.tlp.payload[name]),
                         framer.tlp.payload[name].eq(out.payload[name])]
        _bind_axis(m, self, "m_axis_rq", framer.rq, incoming=False)
        _bind_axis(m, self, "s_axis_rc", parser.rc, incoming=True)
        wiring.connect(m, parser.cpl, rd.cpl)
        wiring.connect(m, rd.ram, ram.wr)
        wiring.connect(m, wr.ram, ram.rd)
        wiring.connect(m, exerciser.rd_req, read_mux.requests[0])
        wiring.connect(m, read_mux.statuses[0], exerciser.rd_status)
        wiring.connect(m, exerciser.wr_req, write_mux.requests[0])
        wiring.connect(m, write_mux.statuses[0], exerciser.wr_status)
        bus_master = self.cfg_function_status[2]     # PG213: bit 2 of function 0's nibble
        m.d.comb += [
            rd.max_read_req.eq(self.cfg_max_read_req),
            rd.ext_tag.eq(devctl.ext_tag),
            rd.bus_master.eq(bus_master),
            rd.timeout.eq(exerciser.timeout),
            rd.read_size.eq(exerciser.read_size),
            wr.max_payload.eq(self.cfg_max_payload),
            wr.timeout.eq(exerciser.timeout),
            wr.bus_master.eq(bus_master),
            wr.seq_num0.eq(self.pcie_rq_seq_num0),
            wr.seq_num_vld0.eq(self.pcie_rq_seq_num_vld0),
            wr.seq_num1.eq(self.pcie_rq_seq_num1),
            wr.seq_num_vld1.eq(self.pcie_rq_seq_num_vld1),
            exerciser.ext_tag.eq(devctl.ext_tag),
            exerciser.outstanding.eq(rd.outstanding_bytes),
        ]
        for name in ("addr", "function_number", "write", "write_data", "byte_enable", "read"):
            m.d.comb += getattr(self, f"cfg_mgmt_{name}").eq(getattr(devctl, f"cfg_mgmt_{name}"))
        m.d.comb += [devctl.cfg_mgmt_read_data.eq(self.cfg_mgmt_read_data),
                     devctl.cfg_mgmt_read_write_done.eq(self.cfg_mgmt_read_write_done)]

        _fan_out(m, completer.bar0, [
            registers.bus, msix.bus,
            (exerciser.regs, regmap.DMA_EXERCISER_BASE, regmap.DMA_EXERCISER_BYTES),
            (exerciser.window, regmap.DMA_RAM_WINDOW, regmap.DMA_RAM_BYTES),
        ])
        wiring.connect(m, completer.bar2, doorbells.bus)

        # ---- context engine, data mover, retire unit, error log ----------------------------------
        m.submodules.context_engine = ce = ContextEngine(config=cfg, ram_addr_bits=ram_bits,
                                                         row_bytes=row_bytes)
        m.submodules.data_mover = mover = DataMover(ram_addr_bits=ram_bits, row_bytes=row_bytes,
                                                    slot_base=layout.slots)
        m.submodules.retire = retire = Retire(
            contexts=cfg.contexts, vectors=cfg.msix_vectors, data_width=w, ram_rows=ram_rows,
            ram_addr_bits=ram_bits, layout=layout)
        m.submodules.error_log = errlog = ErrorLogWriter(
            data_width=w, ram_rows=ram_rows, ram_addr_bits=ram_bits, staging=layout.errlog)
        m.submodules.error_completion = completion = ErrorCompletion(ram_addr_bits=ram_bits,
                                                                     row_bytes=row_bytes)
        m.submodules.translation = tu = TranslationUnit(
            data_width=w, ram_rows=ram_rows, ram_addr_bits=ram_bits, landing=layout.walk)
        read_clients = [(ce.rd_req, ce.rd_status)]
        read_clients += [(ce.fetch_req[f], ce.fetch_status[f]) for f in range(FETCHERS)]
        read_clients += [(tu.rd_req, tu.rd_status)]
        read_clients += [(mover.rd_req, mover.rd_status)]
        write_clients = [(ce.wr_req, ce.wr_status), (retire.ri_req, retire.ri_status),
                         (errlog.wr_req, errlog.wr_status),
                         (completion.wr_req, completion.wr_status)]
        write_clients += [(retire.cst_req[c], retire.cst_status[c]) for c in range(CST_WRITERS)]
        write_clients += [(mover.wr_req, mover.wr_status)]
        for i, (req, status) in enumerate(read_clients, start=1):
            wiring.connect(m, req, read_mux.requests[i])
            wiring.connect(m, read_mux.statuses[i], status)
        for i, (req, status) in enumerate(write_clients, start=1):
            wiring.connect(m, req, write_mux.requests[i])
            wiring.connect(m, write_mux.statuses[i], status)
        wiring.connect(m, write_mux.notices[len(write_clients)], mover.wr_released)
        # Decode logic on one side, the mover's cutting and TLB requests on the other.
        m.submodules.mover_cmd_slice = cmd_slice = RegisterSlice(mover.cmd.payload.shape())
        wiring.connect(m, ce.mover_cmd, cmd_slice.i)
        wiring.connect(m, cmd_slice.o, mover.cmd)
        # The TLB serves the mover's buffer pages and a pv = 1 context's own structures.
        m.submodules.lookup_arbiter = lookups = TransactionArbiter(Lookup(), Translation(),
                                                                   clients=3)
        for i, (ask, answer) in enumerate([(mover.translate, mover.translated),
                                           (ce.translate, ce.translated),
                                           (ce.ring_translate, ce.ring_translated)]):
            wiring.connect(m, ask, lookups.requests[i])
            wiring.connect(m, lookups.responses[i], answer)
        wiring.connect(m, lookups.request, tu.lookup)
        wiring.connect(m, tu.result, lookups.response)
        m.d.comb += [tu.ram_snoop.row.eq(rd.ram.row), tu.ram_snoop.data.eq(rd.ram.data),
                     tu.ram_snoop.en.eq(rd.ram.en), tu.flush.eq(ce.tlb_flush)]
        wiring.connect(m, mover.result, retire.results)
        wiring.connect(m, ce.records, retire.records)
        wiring.connect(m, retire.failure, ce.failure)
        wiring.connect(m, retire.error_report, completion.reports[0])
        wiring.connect(m, ce.error_report, completion.reports[1])
        wiring.connect(m, completion.log, errlog.req)
        mover_idle = Signal()
        m.d.sync += mover_idle.eq(mover.idle & ~cmd_slice.busy)
        m.d.comb += [
            mover.abort.eq(ce.mover_abort),
            # Both from registers: the mover leaves idle only by taking a command from the slice.
            ce.mover_idle.eq(mover_idle & ~cmd_slice.busy),
            ce.retire_idle.eq(retire.idle),
            retire.clear_failed.eq(ce.clear_failed),
            retire.restart.eq(ce.retire_restart),
        ]

        # The RAM's second ports: the engine's units while the function is out of STOP, else
        # the exerciser's window.
        engine_on = Signal()
        m.d.comb += [engine_on.eq(function.gsv != regmap.GSV.STOP),
                     exerciser.enable.eq(~engine_on)]
        side_writers = (errlog, retire, ce)      # in the RAM's order of priority; retire
                                                 # writes one qword (the RAM's qword_writers)
        assert len(side_writers) == len(ram.side_wr_taken)
        m.d.comb += ram.host_owns.eq(~engine_on)
        for i, unit in enumerate(side_writers):
            wiring.connect(m, unit.ram_wr, ram.side_wr[i])
            m.d.comb += unit.ram_wr_taken.eq(ram.side_wr_taken[i])
        wiring.connect(m, ce.ram_rd, ram.side_rd)
        wiring.connect(m, exerciser.ram_wr, ram.host_wr)
        wiring.connect(m, exerciser.ram_rd, ram.host_rd)

        stored = registers.stored
        m.d.comb += [
            ce.pending.eq(doorbells.pending),
            doorbells.take_valid.eq(ce.take_valid),
            doorbells.take_cxt.eq(ce.take_cxt),
            ce.activate.eq(function.activate),
            function.activate_done.eq(ce.activate_done),
            function.activate_ok.eq(ce.activate_ok),
            ce.soft_stop.eq(function.soft_stop),
            ce.hard_stop.eq(function.hard_stop),
            # STOP is reported only once nothing is in flight on either DMA engine either.
            function.quiesced.eq(ce.quiesced & rd.idle & ~write_slice.busy & wr.idle),
            function.fatal.eq(ce.fatal),
            ce.ctl2.eq(stored.CTL2),
            ce.cxt_l2.eq(stored.CXT_L2),
            errlog.err_ctl.eq(stored.ERR_CTL),
            errlog.err_cfg.eq(stored.ERR_CFG),
            errlog.err_wrt.eq(stored.ERR_WRT),
            errlog.err_rd.eq(stored.ERR_RD),
            errlog.err_sts.eq(stored.ERR_STS),
            registers.load.ERR_WRT.eq(errlog.err_wrt_load),
            registers.load_value.ERR_WRT.eq(errlog.err_wrt_value),
            registers.set.ERR_STS.eq(errlog.err_sts_set),
        ]

        # ---- function registers -------------------------------------------------------------
        cycles = Signal(64)
        dropped_writes = Signal(64)
        unsupported = Signal(64)
        m.d.sync += cycles.eq(cycles + 1)
        bar0_dropped = completer.bar0.w_stb & completer.bar0.w_be.any() & ~completer.bar0.w_hit
        bar2_dropped = completer.bar2.w_stb & completer.bar2.w_be.any() & ~completer.bar2.w_hit
        with m.If(bar0_dropped | bar2_dropped | doorbells.dropped):
            m.d.sync += dropped_writes.eq(dropped_writes + 1)
        with m.If(completer.unsupported):
            m.d.sync += unsupported.eq(unsupported + 1)

        ro = registers.ro
        m.d.comb += [
            ro.STS0.eq(function.gsv),
            ro.CAP0.eq(cfg.cap0),
            ro.CAP1.eq(cfg.cap1),
            ro.VERSION.eq(cfg.version),
            ro.IMPL_BUILD_ID.eq(cfg.build_id),
            ro.IMPL_CYCLES.eq(cycles),
            ro.IMPL_DROPPED_WRITES.eq(dropped_writes),
            ro.IMPL_UNSUPPORTED_REQS.eq(unsupported),
            ro.IMPL_PERF_DECODE.eq(Cat(ce.decoded, ce.decode_cycles)),
            ro.IMPL_PERF_TLB.eq(Cat(tu.hits, tu.misses)),
            ro.IMPL_PERF_WALK.eq(tu.walk_cycles),
        ]

        # ---- address spaces: the PASID table and TLB invalidation --------------------------------
        reg = regmap.REGISTERS_BY_NAME
        pasid_table = stored.IMPL_PASID_TABLE
        pasid_sz = reg["IMPL_PASID_TABLE"]["sz"].bits(pasid_table)
        m.d.comb += [
            tu.pasid_table.eq(Cat(Const(0, 12), reg["IMPL_PASID_TABLE"]["ptr"].bits(pasid_table))),
            tu.pasid_count.eq(Mux(reg["IMPL_PASID_TABLE"]["en"].bits(pasid_table),
                                  Const(1, 21) << pasid_sz, 0)),
            tu.inv_request.eq(registers.written.IMPL_TLB_INV),
            tu.inv_kind.eq(reg["IMPL_TLB_INV"]["kind"].bits(registers.write_data)),
            tu.inv_pasid.eq(reg["IMPL_TLB_INV"]["pasid"].bits(registers.write_data)),
            tu.inv_vaddr.eq(stored.IMPL_TLB_INV_ADDR),
            ro.IMPL_TLB_INV.eq(tu.inv_busy << reg["IMPL_TLB_INV"]["busy"].lsb),
        ]

        ctl0 = registers.stored.CTL0
        m.d.comb += [
            function.request.eq(registers.written.CTL0 & registers.write_be[0]),
            function.gsr.eq(reg["CTL0"]["fn_gsr"].bits(registers.write_data)),
        ]

        # ---- MSI-X -------------------------------------------------------------------------
        raised_vector = reg["IMPL_MSIX_RAISE"]["vector"].bits(registers.write_data)
        self_test = Signal(cfg.msix_vectors)
        with m.If(registers.written.IMPL_MSIX_RAISE & (raised_vector < cfg.msix_vectors)):
            m.d.comb += self_test.eq(1 << raised_vector)
        error_vector = function.entered_error & reg["CTL0"]["fn_err_intr_en"].bits(ctl0)
        m.d.comb += [
            msix.raise_vectors.eq(self_test | error_vector | retire.raise_vectors |
                                  errlog.raise_vector0),
            msix.msix_enable.eq(self.cfg_interrupt_msix_enable[0]),
            # An MSI-X message is a memory write: none goes out while bus mastering is off;
            # vectors raised meanwhile stay pending, as under the Function Mask.
            msix.msix_function_mask.eq(self.cfg_interrupt_msix_mask[0] | ~bus_master),
            self.cfg_interrupt_msix_address.eq(msix.msix_address),
            self.cfg_interrupt_msix_data.eq(msix.msix_data),
            self.cfg_interrupt_msix_int.eq(msix.msix_int),
            msix.msix_sent.eq(self.cfg_interrupt_msix_sent),
            msix.msix_fail.eq(self.cfg_interrupt_msix_fail),
            self.cfg_interrupt_msi_function_number.eq(0),
            self.cfg_interrupt_msix_vec_pending.eq(0),
        ]

        return m
