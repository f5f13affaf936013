"""ClientMux: clients as id prefixes on one request stream, with random stalls everywhere."""

import random

from amaranth.lib import data

from hdl.common.client_mux import ClientMux

from .pcie_helpers import new_sim, run, transfer, wait_for


class Request(data.StructLayout):
    def __init__(self, id_bits):
        super().__init__({"value": 16, "id": id_bits})


class Status(data.StructLayout):
    def __init__(self, id_bits):
        super().__init__({"id": id_bits, "echo": 16})


class Notice(data.StructLayout):
    def __init__(self, id_bits):
        super().__init__({"id": id_bits})


def test_every_request_is_forwarded_once_and_answered_to_its_client():
    clients, per_client = 5, 40
    mux = ClientMux(request=Request, status=Status, notice=Notice, clients=clients,
                    client_id_bits=4)
    assert mux.id_bits == 4 + 3
    rng = random.Random(7)
    sent = {c: [] for c in range(clients)}
    forwarded = []            # (full id, value) in the order the engine took them
    answered = {c: [] for c in range(clients)}
    noticed = {c: [] for c in range(clients)}

    def client(c):
        async def process(ctx):
            req = mux.requests[c]
            for k in range(per_client):
                await ctx.tick().repeat(rng.randrange(1, 4))
                value = c * 1000 + k
                ctx.set(req.payload.value, value)
                ctx.set(req.payload.id, k % 16)
                await transfer(ctx, req, max_cycles=500, what="taken")
                sent[c].append((k % 16, value))
        return process

    async def engine(ctx):
        out, st, note = mux.request, mux.status, mux.notice
        queue = []
        async for _, _, valid, ready, p in ctx.tick().sample(out.valid, out.ready, out.payload):
            ctx.set(st.valid, 0)
            ctx.set(note.valid, 0)
            if valid and ready:
                forwarded.append((p.id, p.value))
                queue.append((p.id, p.value))
            if queue and rng.random() < 0.5:       # answered in any order
                ident, value = queue.pop(rng.randrange(len(queue)))
                ctx.set(st.payload.id, ident)
                ctx.set(st.payload.echo, value)
                ctx.set(st.valid, 1)
                ctx.set(note.payload.id, ident)
                ctx.set(note.valid, 1)
            ctx.set(out.ready, rng.random() < 0.6)

    async def statuses(ctx):
        async for _, _, *seen in ctx.tick().sample(
                *[x for c in range(clients) for x in (mux.statuses[c].valid,
                                                      mux.statuses[c].payload,
                                                      mux.notices[c].valid,
                                                      mux.notices[c].payload)]):
            for c in range(clients):
                valid, p, n_valid, n = seen[4 * c: 4 * c + 4]
                if valid:
                    answered[c].append((p.id, p.echo))
                if n_valid:
                    noticed[c].append(n.id)

    async def tb(ctx):
        await wait_for(ctx, lambda: all(len(answered[c]) == per_client for c in range(clients)),
                       max_cycles=20_000, what="all answered")

    sim = new_sim(mux)
    for c in range(clients):
        sim.add_testbench(client(c), background=True)
    sim.add_testbench(engine, background=True)
    sim.add_testbench(statuses, background=True)
    sim.add_testbench(tb)
    run(sim, "client_mux")

    assert len(forwarded) == clients * per_client, "each request forwarded exactly once"
    for c in range(clients):
        mine = [(ident & 15, value) for ident, value in forwarded if ident >> 4 == c]
        assert mine == sent[c], f"client {c}'s requests, in its order, with its prefix"
        assert sorted(answered[c]) == sorted(sent[c]), f"client {c} got exactly its statuses"
        assert sorted(noticed[c]) == sorted(i for i, _ in sent[c])


def test_clients_that_all_wait_are_served_in_turn():
    clients = 3
    mux = ClientMux(request=Request, status=Status, clients=clients, client_id_bits=2)
    grants = []

    async def tb(ctx):
        for c in range(clients):
            ctx.set(mux.requests[c].payload.value, c)
            ctx.set(mux.requests[c].valid, 1)
        ctx.set(mux.request.ready, 1)
        async for _, _, valid, p in ctx.tick().sample(mux.request.valid, mux.request.payload):
            if valid:
                grants.append(p.id >> 2)
            if len(grants) == 4 * clients:
                break

    sim = new_sim(mux)
    sim.add_testbench(tb)
    run(sim, "client_mux_turns")
    assert grants == [g % clients for g in range(grants[0], grants[0] + 4 * clients)], grants


def test_grant_is_a_register_and_a_lone_client_streams():
    """A client's ready never changes without a clock edge (no path from another client's
    logic into it), and one client alone hands over a request every clock."""
    clients = 3
    mux = ClientMux(request=Request, status=Status, clients=clients, client_id_bits=2)
    taken = []

    async def tb(ctx):
        ctx.set(mux.request.ready, 1)
        await ctx.tick()
        readies = [ctx.get(r.ready) for r in mux.requests]
        for c in range(clients):                 # valids move, readies do not
            ctx.set(mux.requests[c].valid, 1)
            assert [ctx.get(r.ready) for r in mux.requests] == readies
            ctx.set(mux.requests[c].valid, 0)
            assert [ctx.get(r.ready) for r in mux.requests] == readies
        ctx.set(mux.requests[1].valid, 1)
        for k in range(12):
            ctx.set(mux.requests[1].payload.value, k)
            await ctx.tick()
            if ctx.get(mux.request.valid):
                taken.append(ctx.get(mux.request.payload.value))

    sim = new_sim(mux)
    sim.add_testbench(tb)
    run(sim, "client_mux_registered_grant")
    # After at most one clock to move the grant, one request a clock, none lost.
    assert len(taken) >= 10 and taken == list(range(taken[0], taken[0] + len(taken))), taken
