"""DMA exerciser: host-programmed reads and writes through the DMA engines, for tests and
benchmarks, with a window onto the DMA RAM."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from sdxi_defs.regmap import DMA_TIMEOUT_DEFAULT, EXERCISER_REGISTERS

from ..common.regbus import RegisterBus
from ..common.regfile import RegisterFile
from .dma_ram import RamReadPairSignature, RamWriteSignature, ram_addr_bits
from .dma_read import ReadRequest, ReadStatus
from .dma_write import WriteRequest, WriteStatus


__all__ = ["DmaExerciser"]

class DmaExerciser(wiring.Component):
    """One read client and one write client driven from registers.

    Writing DMA_RD_GO (or DMA_WR_GO) starts a transfer with the ADDR/LEN/RAM registers if
    that direction is idle and ``enable`` is set (the context engine, which shares the engines
    and the RAM, is stopped); its STATUS shows busy, then the engine's error code and the
    clocks it took. The RAM window maps the DMA RAM (with byte enables, through the RAM's host
    ports) while ``enable`` is set and neither direction is busy; otherwise window reads return
    0 and writes are dropped. A window write reaches the RAM one clock after its access.

    Members
    -------
    regs : In(RegisterBus)
        Accesses to the registers, at qword addresses relative to the exerciser's base.
    window : In(RegisterBus)
        Accesses to the RAM window, qword addresses relative to its base.
    rd_req, rd_status, wr_req, wr_status : client ports of the engines
    ram_wr, ram_rd : the RAM's host ports, for the window (a write is one qword, repeated
        across the row, as the RAM's host port takes it)
    enable : In(1)
    ext_tag, outstanding : In, shown in DMA_INFO
    timeout, read_size : Out: DMA_TIMEOUT (0 selects the default) and DMA_RD_SPLIT
    """

    def __init__(self, *, data_width, ram_rows, regs_addr_width, window_addr_width):
        ram_bits = ram_addr_bits(data_width, ram_rows)
        self._w = data_width
        self._rows = ram_rows
        super().__init__({
            "regs": In(RegisterBus(regs_addr_width)),
            "window": In(RegisterBus(window_addr_width)),
            "rd_req": Out(stream.Signature(ReadRequest(ram_bits))),
            "rd_status": In(stream.Signature(ReadStatus(), always_ready=True)),
            "wr_req": Out(stream.Signature(WriteRequest(ram_bits))),
            "wr_status": In(stream.Signature(WriteStatus(), always_ready=True)),
            "ram_wr": Out(RamWriteSignature(data_width, ram_rows)),
            "ram_rd": Out(RamReadPairSignature(data_width, ram_rows)),
            "enable": In(1),
            "ext_tag": In(1),
            "outstanding": In(16),
            "timeout": Out(32),
            "read_size": Out(4),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.file = regs = RegisterFile(EXERCISER_REGISTERS, addr_width=len(self.regs.addr))
        wiring.connect(m, wiring.flipped(self.regs), regs.bus)
        now = Signal(32)
        m.d.sync += now.eq(now + 1)

        timeout = regs.stored.DMA_TIMEOUT[:32]
        m.d.comb += [
            self.timeout.eq(Mux(timeout == 0, DMA_TIMEOUT_DEFAULT, timeout)),
            self.read_size.eq(regs.stored.DMA_RD_SPLIT[:4]),
            regs.ro.DMA_INFO.eq(Cat(self.ext_tag, Signal(15), self.outstanding)),
        ]

        busy = {}
        for name, req, status in (("DMA_RD", self.rd_req, self.rd_status),
                                  ("DMA_WR", self.wr_req, self.wr_status)):
            running = Signal(name=f"{name.lower()}_running")
            requested = Signal(name=f"{name.lower()}_requested")
            start = Signal(32, name=f"{name.lower()}_start")
            error = Signal(3, name=f"{name.lower()}_error")
            cycles = Signal(32, name=f"{name.lower()}_cycles")
            busy[name] = running
            stored = regs.stored
            m.d.comb += [
                req.valid.eq(requested),
                req.payload.addr.eq(getattr(stored, f"{name}_ADDR")),
                req.payload.length.eq(getattr(stored, f"{name}_LEN")[:24]),
                req.payload.ram_addr.eq(getattr(stored, f"{name}_RAM")),
                req.payload.id.eq(0),
                getattr(regs.ro, f"{name}_STATUS").eq(Cat(running, Signal(7), error, Signal(21),
                                                          cycles)),
            ]
            go = getattr(regs.written, f"{name}_GO") & regs.write_data[0]
            with m.If(go & ~running & self.enable):
                m.d.sync += [running.eq(1), requested.eq(1), start.eq(now)]
            with m.If(req.valid & req.ready):
                m.d.sync += requested.eq(0)
            with m.If(status.valid & running & ~requested):
                m.d.sync += [running.eq(0), error.eq(status.payload.error),
                             cycles.eq(now - start)]

        # ---- RAM window --------------------------------------------------------------------------
        idle = ~busy["DMA_RD"] & ~busy["DMA_WR"] & self.enable
        win = self.window
        row_qwords = self._w // 64
        q_bits = row_qwords.bit_length() - 1
        win_row = win.addr[q_bits:]
        win_q = win.addr[:q_bits]
        in_window = win_row < self._rows
        m.d.comb += win.w_hit.eq(idle & in_window)
        # A write is taken into registers as it comes (no logic before them) and reaches the RAM
        # in the next clock, so the path from the completer's decode ends here and the RAM's
        # port starts from flip-flops. (The completer strobes a read two clocks after a write
        # at the earliest, so a read always finds the write done.)
        w_stb, w_addr = Signal(), Signal.like(win.addr)
        w_data, w_be = Signal.like(win.w_data), Signal.like(win.w_be)
        m.d.sync += [w_stb.eq(win.w_stb), w_addr.eq(win.addr),
                     w_data.eq(win.w_data), w_be.eq(win.w_be)]
        w_row = w_addr[q_bits:]
        m.d.comb += [
            self.ram_wr.row.eq(w_row),
            self.ram_wr.data.eq(w_data.replicate(row_qwords)),
            self.ram_wr.en.eq(Mux(w_stb & idle & (w_row < self._rows),
                                  w_be << (8 * w_addr[:q_bits]), 0)),
            self.ram_rd.en.eq(win.r_stb),
            self.ram_rd.row.eq(win_row),
        ]
        read_q = Signal(q_bits)
        read_ok = Signal()
        with m.If(win.r_stb):
            m.d.sync += [read_q.eq(win_q), read_ok.eq(idle & in_window)]
        m.d.comb += win.r_data.eq(Mux(read_ok, self.ram_rd.lo.word_select(read_q, 64), 0))
        return m
