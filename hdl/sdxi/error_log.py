"""Error log writer: appends ERRLOG_HD_ENT entries to the host's error-log ring (sdxi-spec.md 6)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from sdxi_defs.regmap import REGISTERS_BY_NAME

from ..common.address_range import runs_past_top
from ..common.fsm import request_states
from ..config import FUNCTION_BITS
from ..pcie.dma_ram import RamWriteSignature
from ..pcie.dma_write import WriteRequest, WriteStatus
from .error_completion import LogRequest


__all__ = ["ErrorLogWriter"]

ERR_CFG = REGISTERS_BY_NAME["ERR_CFG"]
ERR_CTL = REGISTERS_BY_NAME["ERR_CTL"]
ERR_STS = REGISTERS_BY_NAME["ERR_STS"]
LOGGED = ERR_STS.encode(sts=1)                  # ERR_STS bits set per outcome of a request
OVERFLOWED = ERR_STS.encode(sts=1, ovf=1)       # disabled or full: discarded
NOT_LOGGED = ERR_STS.encode(sts=1, err=1)       # the write failed (or would wrap)


class ErrorLogWriter(wiring.Component):
    """Writes one entry per request; the request is accepted once the entry is settled.

    An entry goes to slot ERR_WRT mod (32 << ERR_CFG.sz): bytes 8-63 first, then bytes 0-7 (with
    vl), then ERR_WRT advances and ERR_STS.sts is set. With the log disabled or full
    (ERR_WRT - ERR_RD >= entries) the entry is discarded and ERR_STS.ovf set; a failed write, or
    a log ring that would run past 2^64 - 1 (nothing is written then), sets ERR_STS.err.
    Vector 0 is raised when ERR_CTL.en is set and ERR_STS.sts was 0 (docs/spec-choices.md,
    "Errors").

    Each of ``functions`` functions has its own log: an entry goes to the log of the function
    the request names, whose registers the writer copies into its own (a clock behind them, so
    a function's register logic and the writer's never form one path), and whose requester ID
    the writes carry.

    Members
    -------
    req : In(stream.Signature(LogRequest))
        The entry (its 64 bytes, little-endian, are written as they are) and the function whose
        log it goes to.
    wr_req, wr_status : a write client
    ram_wr, ram_wr_taken : where the entry is staged (``staging``, a RAM byte address)
    err_ctl, err_cfg, err_wrt, err_rd, err_sts : In(64), per function, the registers
    err_wrt_load : Out(functions), err_wrt_value : Out(64), err_sts_set : Out(64) per
        function: register updates
    raise_vector0 : Out(functions)
    """

    def __init__(self, *, data_width, ram_rows, ram_addr_bits, staging, functions=1):
        self._fns = functions
        self._w = data_width
        self._row = data_width // 8
        self._staging = staging
        if staging % self._row:
            raise ValueError("the staging area must start on a RAM row")
        super().__init__({
            "req": In(stream.Signature(LogRequest())),
            "wr_req": Out(stream.Signature(WriteRequest(ram_addr_bits))),
            "wr_status": In(stream.Signature(WriteStatus(), always_ready=True)),
            "ram_wr": Out(RamWriteSignature(data_width, ram_rows)),
            "ram_wr_taken": In(1),
            "err_ctl": In(64).array(functions), "err_cfg": In(64).array(functions),
            "err_wrt": In(64).array(functions), "err_rd": In(64).array(functions),
            "err_sts": In(64).array(functions),
            "err_wrt_load": Out(functions), "err_wrt_value": Out(64),
            "err_sts_set": Out(64).array(functions), "raise_vector0": Out(functions),
        })

    def elaborate(self, platform):
        m = Module()
        row = self._row
        rows = 64 // row
        entry = Signal(512)
        sts_before = Signal()
        part = Signal(range(max(rows, 2)))

        # The registers of the entry's function, a clock behind them.
        function = Signal(FUNCTION_BITS)
        err = Signal(data.StructLayout({name: 64 for name in
                                        ("ctl", "cfg", "wrt", "rd", "sts")}))
        with m.Switch(function):
            for f in range(self._fns):
                with m.Case(f):
                    m.d.sync += [err.ctl.eq(self.err_ctl[f]), err.cfg.eq(self.err_cfg[f]),
                                 err.wrt.eq(self.err_wrt[f]), err.rd.eq(self.err_rd[f]),
                                 err.sts.eq(self.err_sts[f])]
        # Updates, to that function's registers only.
        sts_set = Signal(64)
        wrt_load = Signal()
        raise_vector0 = Signal()
        for f in range(self._fns):
            mine = function == f
            m.d.comb += [self.err_sts_set[f].eq(Mux(mine, sts_set, 0)),
                         self.err_wrt_load[f].eq(mine & wrt_load),
                         self.raise_vector0[f].eq(mine & raise_vector0)]

        entries = Signal(64)
        m.d.comb += entries.eq(Const(32, 64) << ERR_CFG["sz"].bits(err.cfg))
        slot = Signal(64)
        m.d.comb += slot.eq(err.wrt & (entries - 1))
        ring = Signal(64)
        m.d.comb += ring.eq(Cat(Const(0, 12), ERR_CFG["ptr"].bits(err.cfg)))
        base = Signal(64)
        m.d.comb += base.eq(ring + (slot << 6))
        # A log that would run past 2^64 - 1 is never written (docs/spec-choices.md, "Errors").
        wraps = Signal()
        m.d.comb += wraps.eq(runs_past_top(ring, ((entries << 6) - 1)[:64 - 12]))
        full = Signal()
        m.d.comb += full.eq((err.wrt - err.rd) >= entries)

        wq = Signal.like(self.wr_req.payload)
        m.d.comb += [self.wr_req.payload.eq(wq), wq.function.eq(function)]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.req.valid):
                    m.d.sync += [entry.eq(self.req.payload.entry),
                                 function.eq(self.req.payload.function), part.eq(0)]
                    m.next = "SELECT"
            with m.State("SELECT"):
                m.next = "LATCH"                # ``err`` is the function's from the next clock
            with m.State("LATCH"):
                m.d.sync += sts_before.eq(ERR_STS["sts"].bits(err.sts))
                m.next = "CHECK"
            with m.State("CHECK"):
                with m.If(~ERR_CFG["en"].bits(err.cfg) | full):
                    m.d.comb += sts_set.eq(OVERFLOWED)
                    m.next = "RAISE"
                with m.Elif(wraps):
                    m.d.comb += sts_set.eq(NOT_LOGGED)      # nothing written
                    m.next = "RAISE"
                with m.Else():
                    m.next = "STAGE"
            with m.State("STAGE"):
                m.d.comb += [self.ram_wr.row.eq(self._staging // row + part),
                             self.ram_wr.data.eq(entry.word_select(part, self._w)
                                                 if rows > 1 else entry),
                             self.ram_wr.en.eq((1 << row) - 1)]
                with m.If(self.ram_wr_taken):
                    m.d.sync += part.eq(part + 1)
                    with m.If(part == rows - 1):
                        m.d.sync += [wq.addr.eq(base + 8), wq.length.eq(56),
                                     wq.ram_addr.eq(self._staging + 8)]
                        m.next = "BODY"
            for state, then in (("BODY", "HEAD"), ("HEAD", "ADVANCE")):
                def written(then=then):
                    with m.If(self.wr_status.payload.error != 0):
                        m.d.comb += sts_set.eq(NOT_LOGGED)
                        m.next = "RAISE"
                    with m.Else():
                        m.d.sync += [wq.addr.eq(base), wq.length.eq(8),
                                     wq.ram_addr.eq(self._staging)]
                        m.next = then

                request_states(m, state, self.wr_req, self.wr_status, written)
            with m.State("ADVANCE"):
                m.d.comb += [wrt_load.eq(1), self.err_wrt_value.eq(err.wrt + 1),
                             sts_set.eq(LOGGED)]
                m.next = "RAISE"
            with m.State("RAISE"):
                m.d.comb += [raise_vector0.eq(ERR_CTL["en"].bits(err.ctl) & ~sts_before),
                             self.req.ready.eq(1)]
                m.next = "IDLE"
        return m
