"""Alveo U50 build: board wrapper, IP configuration, constraints and Vivado scripts."""
