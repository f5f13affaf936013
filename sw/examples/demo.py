"""Demo: bring the simulated SDXI card up the way Linux does and show what it offers."""

from hdl.sdxi.regmap import GSV


async def main(card):
    t = card.transport
    print(f"[demo] found {t.identity} with {t.interrupt_vectors} MSI-X vectors")
    print(f"[demo] state before bring-up: {(await card.state()).name}")
    await card.start()
    state = await card.state()
    print(f"[demo] bring-up done: function {state.name}, admin context jump-started")
    print(await card.describe())
    ok = await card.interrupt_self_test(1)
    print(f"[demo] MSI-X self-test on vector 1: {'delivered' if ok else 'NOT delivered'}")
    await card.stop()
    print(f"[demo] function stopped: {(await card.state()).name}")
    if state != GSV.ACTIVE or not ok:
        raise SystemExit("demo failed")
