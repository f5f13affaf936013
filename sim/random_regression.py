"""The seeded random regression: thousands of random descriptors over 16 contexts, every
destination byte, CST, read index, context state, error-log entry and interrupt scored by the
reference model (``sim/reference_model.py``), every write the engine sends checked by a
monitor (``sim/write_monitor.py``).

It runs in rounds. In each, every context gets a batch of random descriptors
(``sim/random_traffic.py``), the model executes them, the host places them and rings every
doorbell, and the contexts run at once while the admin context stops and restarts some of
them and issues SYNC, AKEY_UPD and CXT_UPD. A context that fails a descriptor is recovered as
the Linux driver does it (a NOP in the failed slot, stop, start); then the round is scored.
Rings have sizes that are not powers of two and start a few slots before a wrap; after a
round, some contexts are stopped and started again just before another, so rings wrap many
times.

``./sdxi random`` runs it from the command line (``--seed`` reproduces a run, ``--shards``
spreads it over processes); ``tests/system/cocotb_random_regression.py`` runs it as tests.
"""

import argparse
import os
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cocotb
from cocotb.triggers import Timer, gather

from sdxi_defs.descriptors import AdminOp, OpGroup, SyncFilter
from sdxi_defs import descriptors as dsc
from sdxi_defs.structures import CST_BLK, CXT_STS, CxtState
from sw.context import Completion
from sw.descriptors import admin_sync, admin_update, encode, nop_descriptor
from sw.device import Timing
from sw.exerciser import DmaExerciser

from .random_traffic import (GIB, MAX_BYTES, MIB, PAGE, TRAP_ERRORS, TRAP_KINDS,
                             ContextLayout, TrafficGenerator, akey_entries, map_windows)
from .reference_model import ContextModel, FlatMemory
from .tb import SdxiTb
from .write_monitor import WriteMonitor


__all__ = ["Settings", "RandomRegression", "DEFAULT_SEED"]

DEFAULT_SEED = 2026
RING_SIZES = (1024, 1031, 1500, 2048)        #: any integer from 1024 is a valid ring size
MAX_BATCH = 32
DMA_TIMEOUT_CLOCKS = 4000                    #: a lost completion ends its read in 16 us
#: Waits of the driver calls: a soft stop waits for the context's ring, megabytes under load.
TIMING = Timing(poll_ns=200, state_timeout_ns=2_000_000, interrupt_timeout_ns=2_000_000,
                completion_timeout_ns=2_000_000, ns_per_byte=1.0)


class _BusReader:
    """Host memory read by bus address (the AKey tables, which the driver keeps)."""

    def __init__(self, memory):
        self._memory = memory

    def read(self, addr, n):
        return self._memory.read(addr - self._memory.addr, n)


@dataclass(frozen=True)
class Settings:
    """One run: ``descriptors`` over ``contexts`` contexts from ``seed`` (``shard`` draws a
    different stream from the same seed)."""
    seed: int = DEFAULT_SEED
    descriptors: int = 1000
    contexts: int = 16
    shard: int = 0
    fault_rate: float = 0.02
    stop_rate: float = 0.08
    reseat_rate: float = 0.25

    @classmethod
    def from_env(cls, **defaults):
        """Defaults overridden by SDXI_RANDOM_SEED / _DESCRIPTORS / _SHARD."""
        values = dict(defaults)
        for name in ("seed", "descriptors", "shard"):
            text = os.environ.get(f"SDXI_RANDOM_{name.upper()}")
            if text:
                values[name] = int(text, 0)
        return cls(**values)


class RandomRegression:
    """One card, ``settings.contexts`` client contexts and their model."""

    def __init__(self, dut, settings, log=print):
        self.settings = settings
        self.rng = random.Random(f"{settings.seed}/{settings.shard}")
        self.log = log
        self.tb = SdxiTb(dut)
        self.contexts = []        # (context, layout, generator, model)
        self.stats = {"descriptors": 0, "errors": 0, "stops": 0, "wraps": 0, "bytes": 0,
                      "rounds": 0, "faults": {}}

    # ---- set-up --------------------------------------------------------------------------

    async def setup(self):
        per_context = 6 * MIB       # 2 MiB-aligned areas leave about 1 MiB unused each

        self.card = card = await self.tb.card(
            timing=TIMING, host_memory_bytes=self.settings.contexts * per_context + 16 * MIB)
        await card.start()
        t = card.transport
        self.memory = t.host_memory()
        self.frame = self.memory.addr & ~(GIB - 1)
        if self.memory.addr + self.memory.size > self.frame + GIB:
            raise RuntimeError("host memory crosses a 1 GiB boundary: no 1 GiB page covers it")
        await DmaExerciser(t).set_timeout(DMA_TIMEOUT_CLOCKS)
        await card.enable_address_spaces(pasid_bits=6)
        for _ in range(self.settings.contexts):
            await self._add_context()
        self.model_memory = FlatMemory(self.memory.addr, self.memory.read(0, self.memory.size))
        for *_, model in self.contexts:
            model.mem = self.model_memory
        self.cst_pool = t.alloc_dma(32, 32).addr     # only CSTs are allocated from here on
        rc = self.tb.rc
        fixed = [(self.cst_pool, self.memory.addr + self.memory.size - self.cst_pool),
                 (card.error_log.addr, card.error_log.size),
                 (card.admin.mem.cxt_sts.addr, 16),
                 (rc.msi_region.get_absolute_address(0), rc.msi_region.size)]
        fixed += [(cxt.mem.cxt_sts.addr, 16) for cxt, *_ in self.contexts]
        self.monitor = WriteMonitor(fixed)
        rc.on_write = self.monitor
        rc.fault = self._host_fault

    async def _add_context(self):
        card, rng = self.card, self.rng
        t = card.transport
        layout = ContextLayout(
            cxt_id=0, src=t.alloc_dma(2 * MIB, 2 * MIB).addr,
            dst=t.alloc_dma(2 * MIB, 2 * MIB).addr,
            dst4k=t.alloc_dma(ContextLayout.DST4K_BYTES).addr,
            spare=t.alloc_dma(ContextLayout.SPARE_BYTES).addr,
            traps={kind: t.alloc_dma(PAGE).addr for kind in TRAP_KINDS},
            frame_1g=self.frame, vector=1 + len(self.contexts) % 15)
        entries = rng.choice(RING_SIZES)
        start = rng.randrange(1, 1 << 30) * entries - rng.randrange(MAX_BATCH)  # wraps soon
        cxt = await card.create_context(ring_entries=entries, start_index=start,
                                        vector=layout.vector)
        layout.cxt_id = cxt.id
        space = await card.create_address_space(cxt.id)
        map_windows(space, layout, rng)
        for key, fields in akey_entries(layout).items():
            cxt.set_akey(key, **fields)
        for addr, size in layout.areas():
            self.memory.write(addr - self.memory.addr, rng.randbytes(size))
        model = ContextModel(None, akey_table=cxt.mem.akey_table.addr,
                             akey_mem=_BusReader(self.memory),
                             spaces={space.pasid: space}, read_fault=self._read_fault)
        generator = TrafficGenerator(rng, layout, lambda: Completion(card),
                                     fault_rate=self.settings.fault_rate,
                                     first_sizes=() if self.contexts else (1, MAX_BYTES))
        self.contexts.append((cxt, layout, generator, model))

    def _trap_kind(self, addr, n):
        for _, layout, _, _ in self.contexts:
            for kind, base in layout.traps.items():
                if addr < base + PAGE and base < addr + n:
                    return kind
        return None

    def _read_fault(self, addr, n):
        kind = self._trap_kind(addr, n)
        return TRAP_ERRORS[kind] if kind else None

    def _host_fault(self, tlp):
        return self._trap_kind(tlp.address, tlp.length * 4)

    # ---- rounds --------------------------------------------------------------------------

    async def run(self):
        start = time.monotonic()
        await self.setup()
        self.log(f"[random] seed {self.settings.seed} shard {self.settings.shard}: "
                 f"{len(self.contexts)} contexts set up in {time.monotonic() - start:.1f} s")
        start = time.monotonic()
        while self.stats["descriptors"] < self.settings.descriptors:
            await self._round()
            self._progress(start)
        await self.card.stop()
        return self.stats

    def _progress(self, start):
        s = self.stats
        rate = s["descriptors"] / max(time.monotonic() - start, 1e-9)
        self.log(f"[random] seed {self.settings.seed} shard {self.settings.shard}: "
                 f"{s['descriptors']}/{self.settings.descriptors} descriptors, "
                 f"{s['errors']} errors as the model predicted, {s['stops']} stops, "
                 f"{s['wraps']} ring wraps, {s['bytes'] / MIB:.1f} MiB, "
                 f"{rate:.1f} descriptors/s, {cocotb.utils.get_sim_time('us'):.0f} us simulated; "
                 f"failed on purpose: {dict(sorted(s['faults'].items()))}")

    async def _round(self):
        left = self.settings.descriptors - self.stats["descriptors"]
        plans = []
        for cxt, layout, generator, model in self.contexts:
            if left <= 0:
                break
            batch = generator.batch(min(left, self.rng.randrange(1, MAX_BATCH + 1)))
            left -= len(batch)
            effects = [model.execute_effect(p.raw) for p in batch]
            for planned, effect in zip(batch, effects):
                if bool(planned.fault) != bool(effect.error):
                    raise AssertionError(f"context {cxt.id}: a {planned.fault or planned.kind} "
                                         f"descriptor the model gives {effect.error}")
            plans.append((cxt, layout, batch, effects))
        ranges = [(p.cst.addr, 32) for *_, batch, _ in plans for p in batch if p.cst]
        total = 0
        for *_, effects in plans:
            for effect in effects:
                ranges += effect.written + effect.unknown
                total += sum(n for _, n in effect.written)
        self.monitor.allow(ranges)
        for vector in range(1, 16):
            self.card.transport.clear_interrupt(vector)
        bound_ns = 200_000 + 2.0 * total
        stopped, firsts = set(), {}
        await gather(*(self._run_context(cxt, batch, effects, bound_ns, stopped, firsts)
                       for cxt, _, batch, effects in plans), self._admin_noise())
        await self._score(plans, stopped, firsts)
        self.stats["rounds"] += 1
        self.stats["bytes"] += total
        for cxt, *_ in plans:
            if self.rng.random() < self.settings.reseat_rate:
                await self._reseat(cxt)

    async def _reseat(self, cxt):
        """Stop the context and start it again at a read index a few slots before a wrap, so
        that every ring wraps many times in a run (a ring has at least 1024 slots)."""
        await self.card.stop_context(cxt)
        index = self.rng.randrange(1, 1 << 30) * cxt.mem.entries - self.rng.randrange(MAX_BATCH)
        cxt.mem.cxt_sts.write(0, CXT_STS.encode(state=CxtState.STOP_SW, read_index=index))
        cxt.mem.write_index.write_u64(0, index)
        await self.card.start_context(cxt)
        assert cxt.read_index() == cxt.write_index == index, (cxt.id, cxt.read_index(), index)

    async def _run_context(self, cxt, batch, effects, bound_ns, stopped, firsts):
        first = firsts[cxt.id] = cxt.reserve(len(batch))
        if first % cxt.mem.entries + len(batch) > cxt.mem.entries:
            self.stats["wraps"] += 1
        for i, planned in enumerate(batch):
            cxt.place(first + i, planned.raw)
        await cxt.ring_doorbell()
        failures = [i for i, e in enumerate(effects) if e.error]
        if self.rng.random() < self.settings.stop_rate:
            await Timer(self.rng.randrange(1, 3000), "ns")
            await self._stop_and_check(cxt, first, batch, failures, stopped)
        waited, poll = 0, self.card.timing.poll_ns
        while True:
            done, state = cxt.read_index() - first, cxt.state()
            if failures and done > failures[0]:
                raise AssertionError(f"context {cxt.id}: read index passed descriptor "
                                     f"{first + failures[0]}, which must fail")
            if state == CxtState.ERR_FN and failures and done == failures[0]:
                await self._recover(cxt, first, batch, failures.pop(0))
                continue
            if state == CxtState.ERR_FN:
                expected = first + failures[0] if failures else "no error"
                raise AssertionError(f"context {cxt.id} failed at {first + done}; the model "
                                     f"expects {expected}")
            if done == len(batch) and state == CxtState.RUN:
                return
            if waited > bound_ns:
                raise AssertionError(f"context {cxt.id}: read index {first + done} of "
                                     f"{first + len(batch)}, state {state.name}, after "
                                     f"{waited:.0f} ns")
            await Timer(poll, "ns")
            waited += poll

    async def _recover(self, cxt, first, batch, index):
        """Linux's recovery: the failed slot becomes a NOP, the context is stopped and
        started again (once the failed descriptor's CST is written)."""
        cst = batch[index].cst
        if cst is not None:
            await cst.settle(f"context {cxt.id}'s failed descriptor", 20_000)
        cxt.place(first + index, nop_descriptor())
        await self.card.stop_context(cxt)
        await self.card.start_context(cxt)
        await cxt.ring_doorbell()

    async def _stop_and_check(self, cxt, first, batch, failures, stopped):
        """Stop the context while it runs (hard or soft), check that what it completed is a
        prefix of the batch, and start it again."""
        hard = self.rng.random() < 0.5
        await self.card.stop_context(cxt, hard=hard)
        self.stats["stops"] += 1
        stopped.add(cxt.id)
        state, done = cxt.state(), cxt.read_index() - first
        assert state == CxtState.STOP_SW, (cxt.id, state)
        assert 0 <= done <= len(batch), (cxt.id, done)
        if failures:
            assert done <= failures[0], (cxt.id, done, failures[0])
        for i, planned in enumerate(batch):
            if planned.cst is None or (failures and i == done == failures[0]):
                continue
            fields = CST_BLK.decode(planned.cst.buf.read(0, 32))
            if i < done:
                assert fields["signal"] == 0 and fields["er"] == 0, (cxt.id, i, fields)
            else:
                assert fields["signal"] == 1, f"context {cxt.id}: CST of {first + i} written " \
                                              f"after a stop at {first + done}"
        await self.card.start_context(cxt)
        await cxt.ring_doorbell()

    async def _admin_noise(self):
        """Admin operations on other contexts while they run: SYNC (AKey caches), AKEY_UPD
        and CXT_UPD of a random range; none may change what the contexts do."""
        for _ in range(self.rng.randrange(3)):
            await Timer(self.rng.randrange(1, 4000), "ns")
            ids = sorted(self.rng.sample([c.id for c, *_ in self.contexts], 2))
            cst = Completion(self.card)
            what = self.rng.choice(("sync", "akey_upd", "cxt_upd"))
            if what == "sync":
                raw = admin_sync(ids[0], ids[1], SyncFilter.AKEY, cst)
            elif what == "akey_upd":
                raw = encode(dsc.DSC_AKEY_UPD, OpGroup.ADMIN, AdminOp.AKEY_UPD, cst=cst,
                             cxt_start=ids[0], cxt_end=ids[1], key_start=0, key_end=255)
            else:
                raw = admin_update(ids[0], ids[1], cst)
            await self.card.admin.submit([raw])
            assert not await cst.settle(f"admin {what}", self.card.timing.completion_timeout()), \
                f"admin {what} of contexts {ids} failed"

    # ---- scoring -------------------------------------------------------------------------

    async def _score(self, plans, stopped, firsts):
        expected_log, vectors = {}, set()
        for cxt, layout, batch, effects in plans:
            first = firsts[cxt.id]
            assert cxt.read_index() == first + len(batch), (cxt.id, cxt.read_index())
            assert cxt.state() == CxtState.RUN, (cxt.id, cxt.state())
            for i, (planned, effect) in enumerate(zip(batch, effects)):
                if effect.error:
                    expected_log[(cxt.id, int(effect.error), first + i)] = planned.fault
                    self.stats["errors"] += 1
                    kind = planned.fault or "unplanned"
                    self.stats["faults"][kind] = self.stats["faults"].get(kind, 0) + 1
                elif effect.vector is not None:
                    vectors.add(effect.vector)
                if planned.cst is not None:
                    fields = CST_BLK.decode(planned.cst.buf.read(0, 32))
                    assert fields["signal"] == 0 and fields["er"] == int(bool(effect.error)), \
                        (f"context {cxt.id}, descriptor {first + i} ({planned.kind} "
                         f"{planned.fault or ''}): CST {fields}, model error {effect.error}")
                for addr, n in effect.unknown:       # undefined bytes: take the engine's
                    self.model_memory.write(addr, self.memory.read(addr - self.memory.addr, n))
            for addr, size in layout.areas():
                got = self.memory.read(addr - self.memory.addr, size)
                if got != self.model_memory.read(addr, size):
                    raise AssertionError(self._first_difference(cxt, addr, got))
            self.stats["descriptors"] += len(batch)
        assert not self.monitor.violations, self.monitor.violations[:5]
        log = await self.card.read_error_log()
        assert not self.card.error_log_lost, self.card.error_log_lost
        seen = set()
        for entry in log:
            key = (entry.cxt_num, entry.err_class, entry.dsc_index)
            assert key in expected_log, f"unexpected {entry}"
            assert key not in seen or key[0] in stopped, f"{entry} logged twice"
            seen.add(key)
        assert seen == set(expected_log), f"not logged: {set(expected_log) - seen}"
        for vector in range(1, 16):
            raised = await self.card.transport.wait_interrupt(vector, 1)
            assert raised == (vector in vectors), f"MSI-X vector {vector}: raised {raised}"

    def _first_difference(self, cxt, addr, got):
        want = self.model_memory.read(addr, len(got))
        i = next(k for k in range(len(got)) if got[k] != want[k])
        return (f"context {cxt.id}: host memory differs from the reference model at "
                f"{addr + i:#x}: {got[i:i + 8].hex()} instead of {want[i:i + 8].hex()}")


async def run_regression(dut, settings):
    """Run ``settings`` on the simulated card; fail on the first difference from the model."""
    def log(line):
        print(line, flush=True)
    stats = await RandomRegression(dut, settings, log=log).run()
    log(f"[random] descriptors that failed, by kind: {stats['faults']}")
    assert stats["descriptors"] >= settings.descriptors


@cocotb.test(timeout_time=10_000, timeout_unit="ms")
async def random_run(dut):
    """What ``./sdxi random`` starts: everything from the environment."""
    await run_regression(dut, Settings.from_env())


# ---- command line --------------------------------------------------------------------------

def main(argv=None):
    from sim.runner import run

    parser = argparse.ArgumentParser(description="The seeded random regression (16 contexts, "
                                     "every operation, injected faults), scored by the "
                                     "reference model.")
    parser.add_argument("--seed", type=lambda s: int(s, 0), default=DEFAULT_SEED)
    parser.add_argument("--descriptors", type=int, default=10_000)
    parser.add_argument("--shards", type=int, default=2,
                        help="simulations run at once, each with 16 contexts and its share "
                             "of the descriptors (default 2, one per core)")
    args = parser.parse_args(argv)
    share = -(-args.descriptors // args.shards)

    def shard(index):
        env = {"SDXI_RANDOM_SEED": str(args.seed), "SDXI_RANDOM_SHARD": str(index),
               "SDXI_RANDOM_DESCRIPTORS": str(share),
               "COCOTB_LOG_LEVEL": os.environ.get("COCOTB_LOG_LEVEL", "WARNING"),
               "PYTHONWARNINGS": "ignore::DeprecationWarning"}
        results = run("sim.random_regression", testcase="random_run",
                      extra_env=env,
                      test_dir=Path("build") / "random" / f"seed{args.seed}-shard{index}")
        from cocotb_tools.check_results import get_results
        tests, failed = get_results(results)
        return tests and not failed

    started = time.monotonic()
    with ThreadPoolExecutor(args.shards) as pool:
        passed = list(pool.map(shard, range(args.shards)))
    minutes = (time.monotonic() - started) / 60
    verdict = "passed" if all(passed) else "FAILED"
    print(f"[random] seed {args.seed}: {share * args.shards} descriptors in {args.shards} "
          f"shards {verdict} in {minutes:.1f} minutes", file=sys.stderr)
    return 0 if all(passed) else 1


if __name__ == "__main__":
    sys.exit(main())
