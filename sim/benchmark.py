"""What the SDXI benchmarks share: a started card and the doorbell-to-completion clock count,
and how a benchmark module is run."""

from cocotb.utils import get_sim_time

CLOCK_NS = 4.0                  #: the 250 MHz user clock


async def started_card(dut):
    """The card brought up by the driver with one client context, at Max_Payload_Size 256,
    Max_Read_Request_Size 512 and extended tags; returns (tb, card, context)."""
    from sim.tb import SdxiTb

    tb = SdxiTb(dut)
    card = await tb.card()
    await tb.set_device_control(mps=256, mrrs=512, ext_tag=True)
    await card.start()
    return tb, card, await card.create_context()


async def doorbell_to_completion(tb, cxt, descriptors, last_cst, timeout_ns=40_000_000):
    """Clocks from the doorbell write to ``last_cst``'s signal write at the root complex."""
    arrived = []
    tb.rc.on_write = lambda tlp: arrived.append(get_sim_time("ns")) if (
        tlp.address == last_cst.addr) else None
    first = cxt.reserve(len(descriptors))
    for i, raw in enumerate(descriptors):
        cxt.place(first + i, raw)
    start = get_sim_time("ns")
    await cxt.ring_doorbell()
    await cxt.wait_read_index(first + len(descriptors), timeout_ns=timeout_ns)
    tb.rc.on_write = None
    assert last_cst.done() and not last_cst.error()
    return (arrived[-1] - start) / CLOCK_NS


def run_quietly(module, variant, **env):
    """Run benchmark ``module`` on ``variant`` with only warnings logged."""
    from sim.runner import run

    run(module, variant=variant, extra_env={
        "COCOTB_LOG_LEVEL": "WARNING", "GPI_LOG_LEVEL": "WARNING",
        "PYTHONWARNINGS": "ignore::DeprecationWarning", **env})
