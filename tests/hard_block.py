"""Facts about the UltraScale+ PCIe hard block the tests compare the project against, written
out here (from PG213 and the asserts in cocotbext-pcie's interface.py), not taken from the
project's own definitions."""

# tuser widths of the four AXI-Stream interfaces of pcie4c_uscale_plus, engine-side names.
TUSER = {
    512: {"s_axis_cq": 183, "m_axis_cc": 81, "m_axis_rq": 137, "s_axis_rc": 161},
    256: {"s_axis_cq": 88, "m_axis_cc": 33, "m_axis_rq": 62, "s_axis_rc": 75},
}
