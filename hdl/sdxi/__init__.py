"""SDXI function: register map, registers, function state machine, doorbells."""
