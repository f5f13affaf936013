"""Simulation harness: the exported Verilog in Icarus, bound to cocotbext-pcie's root complex
and UltraScale+ hard-block model."""
