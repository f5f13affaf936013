"""``SdxiTb``: the exported engine, the UltraScale+ PCIe model and a root complex, wired from
the export's metadata, brought to the point where a host driver takes over."""

import inspect
import json
import logging
import os
from pathlib import Path

from cocotb.triggers import ClockCycles, FallingEdge, Timer
from cocotbext.axi import AxiStreamBus
from cocotbext.pcie.core.caps import PciCapId
from cocotbext.pcie.xilinx.us import UltraScalePlusPcieDevice

from sdxi_defs.metadata import validate
from sw.cocotb_transport import CocotbTransport
from sw.device import SdxiCard, Timing

from .faults import FaultyRootComplex
from .verilog_ports import module_ports


__all__ = ["SdxiTb", "BoundedWindow", "AXIS_PREFIXES"]

AXIS_PREFIXES = ("s_axis_cq", "m_axis_cc", "m_axis_rq", "s_axis_rc")
_BUS_ARG = {"s_axis_cq": "cq_bus", "m_axis_cc": "cc_bus", "m_axis_rq": "rq_bus",
            "s_axis_rc": "rc_bus"}
_MODEL_ARGS = set(inspect.signature(UltraScalePlusPcieDevice.__init__).parameters)
_QUIET = ("cocotb.pcie", "cocotbext.pcie")


class BoundedWindow:
    """A BAR window whose reads give up after ``timeout_ns`` instead of waiting forever."""

    def __init__(self, window, timeout_ns):
        self._window = window
        self._timeout_ns = timeout_ns

    def __getattr__(self, name):
        attr = getattr(self._window, name)
        if name.startswith("read"):
            def bounded(*args, **kwargs):
                kwargs.setdefault("timeout", self._timeout_ns)
                kwargs.setdefault("timeout_unit", "ns")
                return attr(*args, **kwargs)
            return bounded
        return attr


def _encode_mps(nbytes):
    return (nbytes // 128).bit_length() - 1


class SdxiTb:
    """One simulated card and host.

    The metadata (``sdxi_engine.json``) and the Verilog file sit beside each other; their paths
    come from ``SDXI_METADATA`` and ``SDXI_VERILOG`` (set by ``sim.runner``). Every engine port
    except ``clk``/``rst`` is bound by name, either in one of the four AXI-Stream buses or as a
    keyword of ``UltraScalePlusPcieDevice``; a port that binds to nothing is an error.
    """

    def __init__(self, dut, *, max_payload=256, max_read_request=512, access_timeout_ns=20_000,
                 log_level=logging.WARNING):
        self.dut = dut
        self.access_timeout_ns = access_timeout_ns
        self.log = logging.getLogger("cocotb.tb")
        self.log.setLevel(logging.INFO)
        for name in _QUIET:
            logging.getLogger(name).setLevel(logging.ERROR)
        self.metadata = validate(json.loads(Path(os.environ["SDXI_METADATA"]).read_text()))
        self.ports = module_ports(Path(os.environ["SDXI_VERILOG"]).read_text(),
                                  self.metadata["top"])
        meta, pcie, msix = self.metadata, self.metadata["pcie"], self.metadata["msix"]

        self.rc = FaultyRootComplex()      # transparent until a test asks for faults
        self.rc.max_payload_size = _encode_mps(max_payload)
        self.rc.max_read_request_size = _encode_mps(max_read_request)

        self.bound = {}
        kwargs = {}
        for name in self.ports:
            if name in ("clk", "rst"):
                continue
            prefix = name.rsplit("_", 1)[0]
            if prefix in AXIS_PREFIXES:
                self.bound[name] = _BUS_ARG[prefix]
            elif name in _MODEL_ARGS:
                self.bound[name] = name
                kwargs[name] = getattr(dut, name)
            else:
                raise ValueError(f"engine port {name} matches no port of the hard-block model")
        for prefix in AXIS_PREFIXES:
            kwargs[_BUS_ARG[prefix]] = AxiStreamBus.from_prefix(dut, prefix)

        straddle = pcie["straddle"]
        functions = meta["sdxi"]["functions"]
        for f in range(functions):         # every function has the same MSI-X geometry
            kwargs.update({
                f"pf{f}_msix_enable": True,
                f"pf{f}_msix_table_size": msix["vectors"] - 1,
                f"pf{f}_msix_table_bir": msix["table_bar"],
                f"pf{f}_msix_table_offset": int(msix["table_offset"], 0),
                f"pf{f}_msix_pba_bir": msix["pba_bar"],
                f"pf{f}_msix_pba_offset": int(msix["pba_offset"], 0),
            })
        self.dev = UltraScalePlusPcieDevice(
            pcie_generation=pcie["generation"],
            pcie_link_width=pcie["lanes"],
            user_clk_frequency=pcie["user_clk_mhz"] * 1e6,
            alignment=pcie["alignment"],
            cq_straddle=straddle["cq"], cc_straddle=straddle["cc"],
            rq_straddle=straddle["rq"],
            rc_straddle=straddle["rc"] >= 2, rc_4tlp_straddle=straddle["rc"] == 4,
            enable_client_tag=pcie["client_tag"],
            enable_extended_tag=pcie["extended_tag_supported"],
            max_payload_size=pcie["max_payload_supported"],
            pf_count=functions,
            user_clk=dut.clk,
            user_reset=dut.rst,
            **kwargs,
        )
        for name in ("cocotb.sdxi_engine",):
            logging.getLogger(name).setLevel(log_level)
        self.dev.log.setLevel(logging.ERROR)

        for function in self.dev.functions:
            function.vendor_id = int(meta["pci"]["vendor_id"], 0)
            function.device_id = int(meta["pci"]["device_id"], 0)
            function.class_code = int(meta["pci"]["class_code"], 0)
            for bar in meta["bars"]:
                function.configure_bar(bar["index"], 1 << bar["log2_size"],
                                       ext=bar["is_64bit"], prefetch=bar["prefetchable"])
        self.rc.make_port().connect(self.dev)
        # The engine gives up a read that is never answered after its DMA time-out and uses
        # the tag again later (docs/dma.md); the hard-block model has no completion time-out
        # and would hold the tag forever, failing that reuse ("active tag reused").
        self.rc.on_drop = lambda tlp: self.dev.active_request.__setitem__(tlp.tag, None)
        self.pci = None                    # function 0 as the host sees it
        self.pcis = []                     # every function, by number

    async def wait_reset(self):
        """The hard-block model pulses ``user_reset`` after start-up; wait until it is over."""
        await ClockCycles(self.dut.clk, 4)
        if self.dut.rst.value == 1:
            await FallingEdge(self.dut.rst)
        await ClockCycles(self.dut.clk, 4)

    async def enumerate(self, msix_vectors=None):
        """Reset, enumerate; for every function enable memory and bus mastering and allocate
        MSI-X vectors. Returns function 0 (``pcis`` has them all)."""
        await self.wait_reset()
        await self.rc.enumerate()
        vectors = msix_vectors or self.metadata["msix"]["vectors"]
        self.pcis = [self.rc.find_device(function.pcie_id) for function in self.dev.functions]
        for pci in self.pcis:
            await pci.enable_device()
            await pci.set_master()
            got = await pci.alloc_irq_vectors(vectors, vectors)
            if got != vectors:
                raise RuntimeError(f"MSI-X of {pci.pcie_id}: asked for {vectors} vectors, "
                                   f"got {got}")
        self.pci = self.pcis[0]
        return self.pci

    async def set_device_control(self, *, mps=None, mrrs=None, ext_tag=None):
        """Program Device Control as a host would: Max_Payload_Size (bits 7:5), Extended Tag
        Field Enable (8), Max_Read_Request_Size (14:12); then wait until the engine has seen
        it. The hard block shows MPS and MRRS on its cfg_* pins at once; the engine reads
        Extended Tag Field Enable through cfg_mgmt about every 4 us."""
        ctl = await self.pci.capability_read_dword(PciCapId.EXP, 8)
        if mps is not None:
            ctl = (ctl & ~(7 << 5)) | (((mps // 128).bit_length() - 1) << 5)
        if mrrs is not None:
            ctl = (ctl & ~(7 << 12)) | (((mrrs // 128).bit_length() - 1) << 12)
        if ext_tag is not None:
            ctl = (ctl & ~(1 << 8)) | (int(ext_tag) << 8)
        await self.pci.capability_write_dword(PciCapId.EXP, 8, ctl & 0xFFFF)
        await Timer(6000 if ext_tag is not None else 40, "ns")

    def transport(self, function=0, **kwargs):
        """A host's view of one function: its BARs and host memory of its own."""
        kwargs.setdefault("access_timeout_ns", self.access_timeout_ns)
        return CocotbTransport(self.rc, self.pcis[function], **kwargs)

    async def card(self, timing=None, function=0, **kwargs):
        """Enumerate and return an ``SdxiCard`` driving one function of this simulated card
        (not yet started); each function is a card of its own to the driver."""
        if self.pci is None:
            await self.enumerate()
        return SdxiCard(self.transport(function, **kwargs), timing or Timing.simulation())

    @property
    def bar0(self):
        """BAR0 from the host, every read bounded by ``access_timeout_ns``."""
        return BoundedWindow(self.pci.bar_window[0], self.access_timeout_ns)

    @property
    def bar2(self):
        return BoundedWindow(self.pci.bar_window[2], self.access_timeout_ns)
