"""``sdxi_engine``: the top level that binds to the UltraScale+ PCIe hard block by port name."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from sdxi_defs import regmap
from sdxi_defs.ram_map import RamLayout

from .config import EngineConfig
from .common.client_mux import ClientMux
from .common.packet_arbiter import PacketArbiter
from .common.priority import lowest_set
from .common.regbus import RegisterBus
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
from .pcie.rc_parser import RcParser
from .pcie.rq_framer import RqFramer
from .sdxi.context_engine import FETCHERS, ContextEngine
from .sdxi.data_mover import DataMover
from .sdxi.error_completion import ErrorCompletion
from .sdxi.error_log import ErrorLogWriter
from .sdxi.retire import CST_WRITERS, Retire
from .sdxi.sdxi_function import SdxiFunction


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


def _by_function(m, initiator, function, count):
    """Split one register bus into ``count``, one per function: each sees the accesses whose
    ``function`` (driven with the bus) is its own; a read's data comes from the function that
    was read."""
    buses = [RegisterBus(len(initiator.addr)).create(path=(f"bus_f{f}",)) for f in range(count)]
    read_function = Signal(max(1, (count - 1).bit_length()))
    with m.If(initiator.r_stb):
        m.d.sync += read_function.eq(function)
    r_data = 0
    w_hit = 0
    for f, bus in enumerate(buses):
        mine = function == f
        m.d.comb += [bus.addr.eq(initiator.addr), bus.w_data.eq(initiator.w_data),
                     bus.w_be.eq(initiator.w_be), bus.w_stb.eq(initiator.w_stb & mine),
                     bus.r_stb.eq(initiator.r_stb & mine)]
        r_data = r_data | Mux(read_function == f, bus.r_data, 0)
        w_hit = w_hit | (mine & bus.w_hit)
    m.d.comb += [initiator.r_data.eq(r_data), initiator.w_hit.eq(w_hit)]
    return buses


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
        fns = cfg.functions
        functions = []
        for f in range(fns):
            functions.append(SdxiFunction(config=cfg, function=f))
            m.submodules[f"function{f}"] = functions[f]

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
        # PG213: cfg_function_status has a nibble per function; bit 2 is Bus Master Enable.
        bus_master = Cat(self.cfg_function_status[4 * f + 2] for f in range(fns))
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

        # Each function's BARs see the accesses to that function (the request's target
        # function); the DMA exerciser is function 0's.
        bar0_buses = _by_function(m, completer.bar0, completer.function, fns)
        bar2_buses = _by_function(m, completer.bar2, completer.function, fns)
        exerciser_bus = RegisterBus(regmap.BAR0_LOG2_SIZE - 3).create(path=("exerciser_bar0",))
        _fan_out(m, bar0_buses[0], [
            functions[0].bar0, exerciser_bus])
        _fan_out(m, exerciser_bus, [
            (exerciser.regs, regmap.DMA_EXERCISER_BASE, regmap.DMA_EXERCISER_BYTES),
            (exerciser.window, regmap.DMA_RAM_WINDOW, regmap.DMA_RAM_BYTES),
        ])
        m.d.comb += functions[0].bar0_other_hit.eq(exerciser_bus.w_hit)
        for f in range(1, fns):
            wiring.connect(m, bar0_buses[f], functions[f].bar0)
        for f in range(fns):
            wiring.connect(m, bar2_buses[f], functions[f].bar2)
            m.d.comb += functions[f].unsupported.eq(completer.unsupported &
                                                    (completer.function == f))

        # ---- context engine, data mover, retire unit, error log ----------------------------------
        m.submodules.context_engine = ce = ContextEngine(config=cfg, ram_addr_bits=ram_bits,
                                                         row_bytes=row_bytes)
        m.submodules.data_mover = mover = DataMover(ram_addr_bits=ram_bits, row_bytes=row_bytes,
                                                    slot_base=layout.slots)
        m.submodules.retire = retire = Retire(
            contexts=cfg.contexts * fns, vectors=cfg.msix_vectors, data_width=w,
            ram_rows=ram_rows, ram_addr_bits=ram_bits, layout=layout,
            context_bits=cfg.context_bits)
        m.submodules.error_log = errlog = ErrorLogWriter(
            data_width=w, ram_rows=ram_rows, ram_addr_bits=ram_bits, staging=layout.errlog,
            functions=fns)
        m.submodules.error_completion = completion = ErrorCompletion(
            ram_addr_bits=ram_bits, row_bytes=row_bytes, context_bits=cfg.context_bits)
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

        # The RAM's second ports: the engine's units while a function is out of STOP, else
        # the exerciser's window.
        engine_on = Signal()
        m.d.comb += [engine_on.eq(Cat(fn.gsv != regmap.GSV.STOP for fn in functions).any()),
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

        # ---- the functions: doorbells, state, registers, error logs, interrupts ---------------
        cycles = Signal(64)
        m.d.sync += cycles.eq(cycles + 1)
        # STOP is reported only once nothing is in flight on either DMA engine either.
        dma_idle = Signal()
        m.d.comb += dma_idle.eq(rd.idle & ~write_slice.busy & wr.idle)
        m.d.comb += ce.pending.eq(Cat(fn.pending for fn in functions))
        for f, fn in enumerate(functions):
            this = ce.function == f
            m.d.comb += [
                fn.take_valid.eq(ce.take_valid & (ce.take_cxt >> cfg.context_bits == f)),
                fn.take_cxt.eq(ce.take_cxt[:cfg.context_bits]),
                ce.activate[f].eq(fn.activate),
                fn.activate_done.eq(ce.activate_done & this),
                fn.activate_ok.eq(ce.activate_ok),
                ce.soft_stop[f].eq(fn.soft_stop),
                ce.hard_stop[f].eq(fn.hard_stop),
                fn.quiesced.eq(ce.quiesced[f] & dma_idle),
                fn.fatal.eq(ce.fatal & this),
                ce.ctl2[f].eq(fn.ctl2),
                ce.cxt_l2[f].eq(fn.cxt_l2),
                ce.rkey[f].eq(fn.rkey),
                errlog.err_ctl[f].eq(fn.err_ctl), errlog.err_cfg[f].eq(fn.err_cfg),
                errlog.err_wrt[f].eq(fn.err_wrt), errlog.err_rd[f].eq(fn.err_rd),
                errlog.err_sts[f].eq(fn.err_sts),
                fn.err_wrt_load.eq(errlog.err_wrt_load[f]),
                fn.err_wrt_value.eq(errlog.err_wrt_value),
                fn.err_sts_set.eq(errlog.err_sts_set[f]),
                fn.raise_vector0.eq(errlog.raise_vector0[f]),
                fn.raise_vectors.eq(Mux(retire.raise_function == f, retire.raise_vectors, 0)),
                tu.pasid_table[f].eq(fn.pasid_table),
                tu.pasid_count[f].eq(fn.pasid_count),
                fn.tlb_inv_busy.eq(tu.inv_busy),
                fn.cycles.eq(cycles),
                fn.perf_decode.eq(Cat(ce.decoded, ce.decode_cycles)),
                fn.perf_tlb.eq(Cat(tu.hits, tu.misses)),
                fn.perf_walk.eq(tu.walk_cycles),
                fn.bus_master.eq(bus_master[f]),
                fn.msix_enable.eq(self.cfg_interrupt_msix_enable[f]),
                fn.msix_mask.eq(self.cfg_interrupt_msix_mask[f]),
            ]
        # TLB invalidations through any function's IMPL_TLB_INV (taken one at a time: the
        # lowest function's write wins a clock another writes in; the others are dropped).
        inv_function, inv_any = lowest_set(m, Cat(fn.tlb_inv for fn in functions),
                                           name="inv_function")
        with m.Switch(inv_function):
            for f, fn in enumerate(functions):
                with m.Case(f):
                    m.d.comb += [tu.inv_kind.eq(fn.tlb_inv_kind),
                                 tu.inv_pasid.eq(fn.tlb_inv_pasid),
                                 tu.inv_vaddr.eq(fn.tlb_inv_vaddr)]
        m.d.comb += tu.inv_request.eq(inv_any)

        # ---- MSI-X: the hard block's one interrupt port, in turns ----------------------------
        # ``msix_owner`` may start a send; the turn moves on while its owner has none going.
        msix_owner = Signal(max(1, (fns - 1).bit_length()))
        owner_busy = Signal()
        with m.Switch(msix_owner):
            for f, fn in enumerate(functions):
                with m.Case(f):
                    m.d.comb += [owner_busy.eq(fn.msix_busy),
                                 self.cfg_interrupt_msix_address.eq(fn.msix_address),
                                 self.cfg_interrupt_msix_data.eq(fn.msix_data),
                                 self.cfg_interrupt_msix_int.eq(fn.msix_int)]
        for f, fn in enumerate(functions):
            m.d.comb += [fn.may_send.eq(msix_owner == f),
                         fn.msix_sent.eq(self.cfg_interrupt_msix_sent & (msix_owner == f)),
                         fn.msix_fail.eq(self.cfg_interrupt_msix_fail & (msix_owner == f))]
        with m.If(~owner_busy):
            m.d.sync += msix_owner.eq(Mux(msix_owner == fns - 1, 0, msix_owner + 1))
        m.d.comb += [self.cfg_interrupt_msi_function_number.eq(msix_owner),
                     self.cfg_interrupt_msix_vec_pending.eq(0)]

        return m
