"""SDXI function state machine: MMIO_CTL0.fn_gsr requests to MMIO_STS0.fn_gsv states."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from sdxi_defs.regmap import GSR, GSV


__all__ = ["FunctionStateMachine"]


class FunctionStateMachine(wiring.Component):
    """Function states of SDXI 1.0 section 4.1 (sdxi-spec.md section 2).

    A request is acted on only if the current state accepts it; every other request is a
    no-op. So a read-modify-write of another CTL0 field, which writes back the current request,
    never starts a transition, and RESET while stopped is harmless
    (docs/spec-choices.md, "Function state").

    ========== ============================== ==============================================
    state      accepted request / event       next
    ========== ============================== ==============================================
    STOP       ACTIVE                         INIT
    INIT       activation done (ok / failed)  ACTIVE / ERROR
    INIT       STOP_SF                        STOPG_SF
    INIT       STOP_HD, RESET                 STOPG_HD
    ACTIVE     STOP_SF                        STOPG_SF
    ACTIVE     STOP_HD, RESET                 STOPG_HD
    STOPG_SF   STOP_HD, RESET                 STOPG_HD
    STOPG_SF   engine quiesced                STOP
    STOPG_HD   engine quiesced                STOP
    ERROR      RESET                          STOPG_HD
    any but    fatal function error           ERROR
    STOP/ERROR
    ========== ============================== ==============================================

    Every way into STOP passes through STOPG_SF or STOPG_HD and waits there for ``quiesced``:
    RESET out of ERROR too, since the engine may still be stopping its contexts when the host
    reacts to the error. So STOP is reported only once nothing is in flight and nothing more
    will be written.

    Members
    -------
    request : In(1)
        A CTL0 write covering fn_gsr, with the requested value in ``gsr``.
    gsr : In(2)
    gsv : Out(3)
        MMIO_STS0.fn_gsv.
    activate : Out(1)
        Held in INIT: read and validate the context tables (the context engine's hook).
    activate_done, activate_ok : In(1)
        Activation finished, and whether it succeeded.
    soft_stop, hard_stop : Out(1)
        Held while stopping: drain outstanding work, or abandon it.
    quiesced : In(1)
        The engine holds no work (ends a stop). Taken through a register: the engine's
        logic does not run on into this state machine, and a stop ends one clock later.
    fatal : In(1)
        A function-level error (ends in ERROR).
    entered_error : Out(1)
        One-clock strobe on the transition to ERROR.
    """

    request: In(1)
    gsr: In(2)
    gsv: Out(3)
    activate: Out(1)
    activate_done: In(1)
    activate_ok: In(1)
    soft_stop: Out(1)
    hard_stop: Out(1)
    quiesced: In(1)
    fatal: In(1)
    entered_error: Out(1)

    def elaborate(self, platform):
        m = Module()
        quiesced = Signal()
        m.d.sync += quiesced.eq(self.quiesced)

        def stop_requests():
            with m.If(self.request & (self.gsr == GSR.STOP_SF)):
                m.next = "STOPG_SF"
            with m.Elif(self.request & ((self.gsr == GSR.STOP_HD) | (self.gsr == GSR.RESET))):
                m.next = "STOPG_HD"

        def to_error():
            m.d.comb += self.entered_error.eq(1)
            m.next = "ERROR"

        with m.FSM(init="STOP"):
            with m.State("STOP"):
                m.d.comb += self.gsv.eq(GSV.STOP)
                with m.If(self.request & (self.gsr == GSR.ACTIVE)):
                    m.next = "INIT"

            with m.State("INIT"):
                m.d.comb += [self.gsv.eq(GSV.INIT), self.activate.eq(1)]
                with m.If(self.fatal):
                    to_error()
                with m.Elif(self.activate_done):
                    with m.If(self.activate_ok):
                        m.next = "ACTIVE"
                    with m.Else():
                        to_error()
                with m.Else():
                    stop_requests()

            with m.State("ACTIVE"):
                m.d.comb += self.gsv.eq(GSV.ACTIVE)
                with m.If(self.fatal):
                    to_error()
                with m.Else():
                    stop_requests()

            with m.State("STOPG_SF"):
                m.d.comb += [self.gsv.eq(GSV.STOPG_SF), self.soft_stop.eq(1)]
                with m.If(self.fatal):
                    to_error()
                with m.Elif(self.request & ((self.gsr == GSR.STOP_HD) | (self.gsr == GSR.RESET))):
                    m.next = "STOPG_HD"
                with m.Elif(quiesced):
                    m.next = "STOP"

            with m.State("STOPG_HD"):
                m.d.comb += [self.gsv.eq(GSV.STOPG_HD), self.hard_stop.eq(1)]
                with m.If(self.fatal):
                    to_error()
                with m.Elif(quiesced):
                    m.next = "STOP"

            with m.State("ERROR"):
                # Work is abandoned in the error state, as in a hard stop.
                m.d.comb += [self.gsv.eq(GSV.ERROR), self.hard_stop.eq(1)]
                with m.If(self.request & (self.gsr == GSR.RESET)):
                    m.next = "STOPG_HD"

        return m
