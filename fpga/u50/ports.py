"""The pcie4c_uscale_plus user-interface port table (``pcie4c_uscale_plus_ports.tsv``)."""

from dataclasses import dataclass
from pathlib import Path


__all__ = ["IpPort", "load_ports", "TABLE"]

TABLE = Path(__file__).with_name("pcie4c_uscale_plus_ports.tsv")


@dataclass(frozen=True)
class IpPort:
    name: str
    direction: str        # "in" or "out", seen from the IP
    widths: dict          # data width (512, 256) -> port width
    kind: str             # "engine", "board", "const" or "open"
    target: str           # engine port, board net or constant value ("" when open)

    def width(self, data_width):
        return self.widths[data_width]


def load_ports(path=TABLE):
    rows = [line for line in Path(path).read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    header, body = rows[0].split("\t"), rows[1:]
    if header != ["port", "dir", "w512", "w256", "connect"]:
        raise ValueError(f"{path}: unexpected header {header}")
    ports = []
    for line in body:
        name, direction, w512, w256, connect = line.split("\t")
        if direction not in ("in", "out"):
            raise ValueError(f"{path}: {name}: direction {direction!r}")
        kind, _, target = connect.partition(":")
        if kind not in ("engine", "board", "const", "open"):
            raise ValueError(f"{path}: {name}: connection {connect!r}")
        if kind == "open" and direction == "in":
            raise ValueError(f"{path}: input {name} must be driven")
        ports.append(IpPort(name, direction, {512: int(w512), 256: int(w256)}, kind, target))
    names = [p.name for p in ports]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicate ports")
    return ports
