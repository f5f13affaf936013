"""TransactionArbiter: every client gets the response to its own request, in turn."""

import random

from amaranth.sim import Simulator

from hdl.common.transaction_arbiter import TransactionArbiter


CLIENTS = 3


def test_each_client_gets_its_own_answer_in_turn():
    dut = TransactionArbiter(16, 16, clients=CLIENTS)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    rng = random.Random(5)
    per_client = 40
    answered = {i: [] for i in range(CLIENTS)}
    served = []

    async def clock_until(ctx, signal, *others):
        """Wait for the clock edge at which ``signal`` is high; return ``others`` sampled there."""
        while True:
            _, _, high, *values = await ctx.tick().sample(signal, *others)
            if high:
                return values

    async def server(ctx):
        # Answers a request with its value + 1000, after 0 to 3 idle clocks.
        while True:
            ctx.set(dut.request.ready, 1)
            value, = await clock_until(ctx, dut.request.valid, dut.request.payload)
            served.append(value >> 8)
            ctx.set(dut.request.ready, 0)
            for _ in range(rng.randrange(4)):
                await ctx.tick()
            ctx.set(dut.response.payload, value + 1000)
            ctx.set(dut.response.valid, 1)
            await clock_until(ctx, dut.response.ready)
            ctx.set(dut.response.valid, 0)

    def client(i):
        async def run(ctx):
            for k in range(per_client):
                ctx.set(dut.requests[i].payload, (i << 8) | k)
                ctx.set(dut.requests[i].valid, 1)
                await clock_until(ctx, dut.requests[i].ready)
                ctx.set(dut.requests[i].valid, 0)
                ctx.set(dut.responses[i].ready, 1)
                payload, = await clock_until(ctx, dut.responses[i].valid,
                                             dut.responses[i].payload)
                answered[i].append(payload)
                ctx.set(dut.responses[i].ready, 0)
        return run

    sim.add_process(server)
    for i in range(CLIENTS):
        sim.add_process(client(i))

    sim.run_until(1e-4)          # 10 000 clocks: far more than 120 transactions need

    for i in range(CLIENTS):
        assert answered[i] == [((i << 8) | k) + 1000 for k in range(per_client)]
    # While all three keep asking, none is served twice before the others have had a turn.
    busy_stretch = served[:3 * (per_client - 1)]
    for start in range(0, len(busy_stretch) - CLIENTS + 1):
        assert len(set(busy_stretch[start:start + CLIENTS])) == CLIENTS, busy_stretch
