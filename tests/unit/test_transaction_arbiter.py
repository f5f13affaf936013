"""TransactionArbiter: every client gets the response to its own request, in turn, and an
offered request stays put until the server takes it."""

import random

from amaranth.sim import Simulator

from hdl.common.transaction_arbiter import TransactionArbiter


CLIENTS = 3
PER_CLIENT = 40


async def clock_until(ctx, signal, *others):
    """Wait for the clock edge at which ``signal`` is high; return ``others`` sampled there."""
    while True:
        _, _, high, *values = await ctx.tick().sample(signal, *others)
        if high:
            return values


def run_clients(max_gap):
    """Three clients each ask ``PER_CLIENT`` times, idle for 0 to ``max_gap`` clocks before
    each request; a server takes a request after 0 to 2 clocks and answers value + 1000 after
    0 to 3. Return what each client was answered and the order the server served clients in;
    fail if what the server is offered changes before it takes it."""
    dut = TransactionArbiter(16, 16, clients=CLIENTS)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    rng = random.Random(5)
    answered = {i: [] for i in range(CLIENTS)}
    served = []

    async def server(ctx):
        while True:
            for _ in range(rng.randrange(3)):
                await ctx.tick()
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
        gaps = random.Random(10 + i)

        async def run(ctx):
            for k in range(PER_CLIENT):
                for _ in range(gaps.randrange(max_gap + 1)):
                    await ctx.tick()
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

    async def monitor(ctx):
        waiting = None
        while True:
            _, _, valid, ready, payload = await ctx.tick().sample(
                dut.request.valid, dut.request.ready, dut.request.payload)
            if waiting is not None:
                assert valid and payload == waiting, \
                    "the offered request changed before it was taken"
            waiting = payload if valid and not ready else None

    sim.add_process(server)
    sim.add_process(monitor)
    for i in range(CLIENTS):
        sim.add_process(client(i))
    sim.run_until(5e-5)          # 5 000 clocks: several times what 120 transactions need
    for i in range(CLIENTS):
        assert answered[i] == [((i << 8) | k) + 1000 for k in range(PER_CLIENT)], \
            f"client {i} got other answers than its own (or not all of them)"
    return served


def test_clients_that_keep_asking_are_served_in_turn():
    served = run_clients(max_gap=0)
    # None is served twice before the others have had a turn.
    stretch = served[:CLIENTS * (PER_CLIENT - 1)]
    for start in range(len(stretch) - CLIENTS + 1):
        assert len(set(stretch[start:start + CLIENTS])) == CLIENTS, stretch


def test_a_request_waiting_for_the_server_keeps_the_grant():
    # Clients that come and go: one nearer in the round-robin order asks while another's
    # request waits for the server; the waiting one stays offered.
    run_clients(max_gap=12)
