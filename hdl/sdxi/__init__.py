"""SDXI function: registers, function state machine, doorbells, the context engine (front end,
data mover, retire, error log). The register map, structures and descriptors it implements are
the definitions' (``sdxi_defs``)."""
