"""One table, two renderings: a rich table for the terminal, markdown for reports.

Every evaluation figure is computed once into a `Grid` and printed or written from it,
so the report a command writes says exactly what the terminal showed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rich import box
from rich.table import Table


@dataclass
class Grid:
    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    caption: str = ""

    def add(self, *cells: str) -> None:
        self.rows.append(list(cells))

    def to_rich(self) -> Table:
        table = Table(title=self.title, caption=self.caption or None, box=box.SIMPLE_HEAD)
        for i, name in enumerate(self.header):
            table.add_column(name, justify="left" if i == 0 else "right", no_wrap=i == 0)
        for row in self.rows:
            table.add_row(*row)
        return table

    def to_markdown(self) -> str:
        lines = [f"**{self.title}**", ""]
        lines.append("| " + " | ".join(self.header) + " |")
        lines.append(
            "|" + "|".join(":--" if i == 0 else "--:" for i in range(len(self.header))) + "|"
        )
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.caption:
            lines += ["", self.caption]
        return "\n".join(lines) + "\n"


def fmt(value: float, digits: int = 2) -> str:
    """A number for a table; NaN (undefined) as a dash."""
    return "-" if math.isnan(value) else f"{value:.{digits}f}"
