"""Gateware of the SDXI engine (Amaranth 0.5)."""
