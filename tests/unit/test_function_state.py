"""FunctionStateMachine: CTL0.fn_gsr requests and engine events to STS0.fn_gsv states.

The expected transitions are the table of the component's docstring (sdxi-spec.md section 2
and the project's choices): every state against every request and event.
"""

import pytest

from hdl.sdxi.function_state import FunctionStateMachine
from sdxi_defs.regmap import GSR, GSV

from .pcie_helpers import new_sim, run


# Events applied for one clock; every other input idle (no request, not quiesced).
EVENTS = {
    "req RESET": dict(request=1, gsr=GSR.RESET),
    "req STOP_SF": dict(request=1, gsr=GSR.STOP_SF),
    "req STOP_HD": dict(request=1, gsr=GSR.STOP_HD),
    "req ACTIVE": dict(request=1, gsr=GSR.ACTIVE),
    "gsr ACTIVE without request": dict(request=0, gsr=GSR.ACTIVE),
    "activate ok": dict(activate_done=1, activate_ok=1),
    "activate failed": dict(activate_done=1, activate_ok=0),
    "quiesced": dict(quiesced=1),
    "fatal": dict(fatal=1),
    "nothing": dict(),
}

S = GSV
# (state, event) -> next state; anything not listed stays where it is.
TABLE = {
    (S.STOP, "req ACTIVE"): S.INIT,
    (S.INIT, "activate ok"): S.ACTIVE,
    (S.INIT, "activate failed"): S.ERROR,
    (S.INIT, "req STOP_SF"): S.STOPG_SF,
    (S.INIT, "req STOP_HD"): S.STOPG_HD,
    (S.INIT, "req RESET"): S.STOPG_HD,
    (S.INIT, "fatal"): S.ERROR,
    (S.ACTIVE, "req STOP_SF"): S.STOPG_SF,
    (S.ACTIVE, "req STOP_HD"): S.STOPG_HD,
    (S.ACTIVE, "req RESET"): S.STOPG_HD,
    (S.ACTIVE, "fatal"): S.ERROR,
    (S.STOPG_SF, "req STOP_HD"): S.STOPG_HD,
    (S.STOPG_SF, "req RESET"): S.STOPG_HD,
    (S.STOPG_SF, "quiesced"): S.STOP,
    (S.STOPG_SF, "fatal"): S.ERROR,
    (S.STOPG_HD, "quiesced"): S.STOP,
    (S.STOPG_HD, "fatal"): S.ERROR,
    (S.ERROR, "req RESET"): S.STOPG_HD,     # STOP only once the engine has quiesced
}


class Bench:
    def __init__(self):
        self.dut = FunctionStateMachine()
        self.errors = 0          # clocks with entered_error high

    async def count_errors(self, ctx):
        async for _, _, pulse in ctx.tick().sample(self.dut.entered_error):
            self.errors += pulse

    def run(self, tb, name):
        sim = new_sim(self.dut)
        sim.add_process(self.count_errors)
        sim.add_testbench(tb)
        run(sim, name)

    def state(self, ctx):
        return GSV(ctx.get(self.dut.gsv))

    async def apply(self, ctx, **inputs):
        """Hold ``inputs`` for one clock, then return every input to idle; ``quiesced`` goes
        through a register, so it acts a clock later."""
        for k, v in inputs.items():
            ctx.set(getattr(self.dut, k), v)
        await ctx.tick()
        for k in ("request", "activate_done", "activate_ok", "quiesced", "fatal"):
            ctx.set(getattr(self.dut, k), 0)
        if inputs.get("quiesced"):
            await ctx.tick()

    async def request(self, ctx, gsr):
        await self.apply(ctx, request=1, gsr=gsr)

    def check_outputs(self, ctx):
        s = self.state(ctx)
        assert ctx.get(self.dut.activate) == (s == S.INIT), f"activate in {s.name}"
        assert ctx.get(self.dut.soft_stop) == (s == S.STOPG_SF), f"soft_stop in {s.name}"
        # Work is abandoned while hard-stopping and in the error state.
        assert ctx.get(self.dut.hard_stop) == (s in (S.STOPG_HD, S.ERROR)), \
            f"hard_stop in {s.name}"

    async def go_to(self, ctx, target):
        """Reach ``target`` from STOP along the driver's paths."""
        assert self.state(ctx) == S.STOP
        if target == S.STOP:
            return
        await self.request(ctx, GSR.ACTIVE)
        if target == S.INIT:
            return
        await self.apply(ctx, activate_done=1, activate_ok=1)
        if target == S.ACTIVE:
            return
        if target == S.STOPG_SF:
            await self.request(ctx, GSR.STOP_SF)
        elif target == S.STOPG_HD:
            await self.request(ctx, GSR.STOP_HD)
        elif target == S.ERROR:
            await self.apply(ctx, fatal=1)
        assert self.state(ctx) == target

    async def back_to_stop(self, ctx):
        s = self.state(ctx)
        if s == S.ERROR:
            await self.request(ctx, GSR.RESET)
            await self.apply(ctx, quiesced=1)
        elif s in (S.INIT, S.ACTIVE):
            await self.request(ctx, GSR.STOP_HD)
            await self.apply(ctx, quiesced=1)
        elif s in (S.STOPG_SF, S.STOPG_HD):
            await self.apply(ctx, quiesced=1)
        assert self.state(ctx) == S.STOP


def test_reset_state():
    b = Bench()

    async def tb(ctx):
        assert b.state(ctx) == S.STOP
        b.check_outputs(ctx)

    b.run(tb, "fsm_reset")


@pytest.mark.parametrize("start", list(S), ids=[s.name for s in S])
def test_transition_table(start):
    # Every event in ``start``: the next state, the outputs there, and entered_error pulsing
    # exactly on a transition into ERROR.
    b = Bench()

    async def tb(ctx):
        for event, inputs in EVENTS.items():
            await b.go_to(ctx, start)
            b.check_outputs(ctx)
            before = b.errors
            await b.apply(ctx, **inputs)
            want = TABLE.get((start, event), start)
            assert b.state(ctx) == want, \
                f"{start.name} + {event}: {b.state(ctx).name}, want {want.name}"
            b.check_outputs(ctx)
            pulses = b.errors - before
            assert pulses == (want == S.ERROR and start != S.ERROR), \
                f"{start.name} + {event}: entered_error pulsed {pulses} times"
            # Nothing else happens by itself in the following clocks.
            await ctx.tick().repeat(3)
            assert b.state(ctx) == want
            await b.back_to_stop(ctx)

    b.run(tb, f"fsm_table_{start.name}")


def test_driver_bring_up_and_stops():
    b = Bench()

    async def tb(ctx):
        # Linux's init: RESET while stopped is harmless, then ACTIVE.
        await b.request(ctx, GSR.RESET)
        assert b.state(ctx) == S.STOP
        await b.request(ctx, GSR.ACTIVE)
        # INIT holds ``activate`` until activation is done, however long that takes.
        for _ in range(20):
            assert b.state(ctx) == S.INIT and ctx.get(b.dut.activate)
            await ctx.tick()
        await b.apply(ctx, activate_done=1, activate_ok=1)
        assert b.state(ctx) == S.ACTIVE
        # A read-modify-write of another CTL0 field writes ACTIVE again: no-op.
        await b.request(ctx, GSR.ACTIVE)
        assert b.state(ctx) == S.ACTIVE
        # Soft stop waits for quiesced, holding soft_stop.
        await b.request(ctx, GSR.STOP_SF)
        for _ in range(20):
            assert b.state(ctx) == S.STOPG_SF
            b.check_outputs(ctx)
            await ctx.tick()
        # STOP_SF again: no-op; STOP_HD escalates; it too waits for quiesced.
        await b.request(ctx, GSR.STOP_SF)
        assert b.state(ctx) == S.STOPG_SF
        await b.request(ctx, GSR.STOP_HD)
        for _ in range(20):
            assert b.state(ctx) == S.STOPG_HD
            b.check_outputs(ctx)
            await ctx.tick()
        await b.apply(ctx, quiesced=1)
        assert b.state(ctx) == S.STOP
        b.check_outputs(ctx)
        # STOP_SF while stopped: no-op.
        await b.request(ctx, GSR.STOP_SF)
        assert b.state(ctx) == S.STOP
        assert b.errors == 0

    b.run(tb, "fsm_bring_up")


def test_activation_failure_and_recovery():
    b = Bench()

    async def tb(ctx):
        await b.request(ctx, GSR.ACTIVE)
        await b.apply(ctx, activate_done=1, activate_ok=0)
        assert b.state(ctx) == S.ERROR
        # In ERROR only RESET is heard.
        for gsr in (GSR.ACTIVE, GSR.STOP_SF, GSR.STOP_HD):
            await b.request(ctx, gsr)
            assert b.state(ctx) == S.ERROR
        await b.apply(ctx, fatal=1)
        await b.apply(ctx, quiesced=1)
        assert b.state(ctx) == S.ERROR
        await ctx.tick().repeat(5)
        assert b.errors == 1, f"entered_error pulsed {b.errors} times"
        # RESET: a hard stop that reports STOP only once the engine has quiesced.
        await b.request(ctx, GSR.RESET)
        for _ in range(5):
            assert b.state(ctx) == S.STOPG_HD
            assert ctx.get(b.dut.hard_stop) == 1
            await ctx.tick()
        await b.apply(ctx, quiesced=1)
        assert b.state(ctx) == S.STOP
        await b.request(ctx, GSR.ACTIVE)
        await b.apply(ctx, activate_done=1, activate_ok=1)
        assert b.state(ctx) == S.ACTIVE
        # A fatal error while active: ERROR, one more pulse.
        await b.apply(ctx, fatal=1)
        assert b.state(ctx) == S.ERROR
        await ctx.tick().repeat(3)
        assert b.errors == 2

    b.run(tb, "fsm_activation_failure")


def test_fatal_held_for_many_clocks_pulses_entered_error_once():
    b = Bench()

    async def tb(ctx):
        await b.go_to(ctx, S.ACTIVE)
        ctx.set(b.dut.fatal, 1)
        await ctx.tick().repeat(10)
        ctx.set(b.dut.fatal, 0)
        await ctx.tick()
        assert b.state(ctx) == S.ERROR
        assert b.errors == 1

    b.run(tb, "fsm_fatal_held")
