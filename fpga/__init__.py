"""FPGA flow: Verilog export, and (with its issue) the Alveo U50 wrapper and Vivado scripts."""
