"""AdminUnit against a model of the context table's flags and an engine that takes each step
after a random time: every context of the range is visited once, in order, and gets a step
exactly where its action applies; the walk ends with the range; an abort drops it."""

import random

from hdl.sdxi.admin_unit import AdminAction, AdminUnit

from .pcie_helpers import new_sim, run, wait_for

CONTEXTS = 64


def expected_steps(action, first, last, running, known):
    applies = {AdminAction.START: lambda c: not running[c],
               AdminAction.STOP: lambda c: known[c],
               AdminAction.MARK: lambda c: True}[action]
    return [c for c in range(first, last + 1) if applies(c)]


def test_walks_visit_the_range_and_step_where_the_action_applies():
    dut = AdminUnit()
    rng = random.Random(5)
    running = [rng.random() < 0.5 for _ in range(CONTEXTS)]
    known = [r or rng.random() < 0.5 for r in running]
    jobs = []
    for _ in range(40):
        first = rng.randrange(1, CONTEXTS)
        jobs.append((rng.choice(list(AdminAction)), first, rng.randrange(first, CONTEXTS)))

    async def bench(ctx):
        walks = 0
        for action, first, last in jobs:
            want = expected_steps(action, first, last, running, known)
            ctx.set(dut.job.payload.action, action)
            ctx.set(dut.job.payload.first, first)
            ctx.set(dut.job.payload.last, last)
            ctx.set(dut.job.valid, 1)
            await wait_for(ctx, lambda: ctx.get(dut.job.ready), max_cycles=10, what="job taken")
            await ctx.tick()
            ctx.set(dut.job.valid, 0)
            seen = []
            for clock in range(20 * CONTEXTS):
                c = ctx.get(dut.query)
                ctx.set(dut.query_running, running[c])
                ctx.set(dut.query_known, known[c])
                if not ctx.get(dut.busy):
                    break
                ready = rng.random() < 0.3
                ctx.set(dut.step.ready, ready)
                if ctx.get(dut.step.valid):
                    step = ctx.get(dut.step.payload)
                    assert AdminAction(step.action) == action
                    if ready:
                        seen.append(step.cxt)
                        # What the engine did: the flags the next contexts are judged by.
                        if action == AdminAction.START:
                            running[step.cxt] = known[step.cxt] = True
                        elif action == AdminAction.STOP:
                            running[step.cxt] = False
                await ctx.tick()
            else:
                raise AssertionError("the walk did not end")
            ctx.set(dut.step.ready, 0)
            assert seen == want, f"{action.name} {first}-{last}: {seen} instead of {want}"
            walks += 1
        assert walks == len(jobs)

    sim = new_sim(dut)
    sim.add_testbench(bench)
    run(sim, "admin_unit_walks")


def test_abort_drops_a_walk():
    dut = AdminUnit()

    async def bench(ctx):
        ctx.set(dut.job.payload.action, AdminAction.MARK)
        ctx.set(dut.job.payload.first, 1)
        ctx.set(dut.job.payload.last, 50)
        ctx.set(dut.job.valid, 1)
        await ctx.tick()
        ctx.set(dut.job.valid, 0)
        await wait_for(ctx, lambda: ctx.get(dut.step.valid), max_cycles=5, what="a step")
        assert ctx.get(dut.step.payload.cxt) == 1
        ctx.set(dut.abort, 1)
        await ctx.tick()
        ctx.set(dut.abort, 0)
        assert not ctx.get(dut.busy) and not ctx.get(dut.step.valid)
        assert ctx.get(dut.job.ready), "idle again, ready for the next job"

    sim = new_sim(dut)
    sim.add_testbench(bench)
    run(sim, "admin_unit_abort")
