"""`vigil report`: every evaluation figure of issue 12 in one markdown file, regenerated.

One command backtests and scores, then writes the tables it printed:

- NAB (a NAB-layout folder): Vigil and the River baselines through the same replay and
  policy; the swept score of each profile, the score at the product's alert threshold,
  and leave-one-category-out;
- MGAB (a Mackey-Glass folder in the same layout): event-wise figures at the alert
  threshold, with the shipped model alone and with the trainer's loop replayed
  (`--retrain-every`), and the loop's training runs;
- the synthetic suite (`--suite-size`): the recall matrix and false alerts per
  stream-week.

Backtests go to ``--work`` (kept); ``--reuse`` skips a backtest whose output folder is
already there, so a report can be rewritten from earlier runs. Wall times are printed in
the report: this machine's load decides them as much as the code does.
"""

from __future__ import annotations

import argparse
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from detectors.evaluation.comparison import fold_summary, leave_one_category_out
from detectors.evaluation.nab_sample import SAMPLE_DIR
from detectors.evaluation.nab_scoring import PROFILES
from detectors.evaluation.suite_matrix import verdict
from pipeline.evaluation.backtest import find_files, run_files
from pipeline.evaluation.evaluate import evaluate_detectors, load_corpora
from pipeline.evaluation.reports import alerted_grid, event_grid, false_alert_grid, loco_grid
from pipeline.evaluation.retrain import runs_grid
from pipeline.evaluation.tables import Grid, fmt
from pipeline.settings import Settings

BASELINE_NAMES = ("hst", "snarimax")


@dataclass
class Section:
    title: str
    commands: list[str] = field(default_factory=list)
    grids: list[Grid] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    bars: list[tuple[str, str, str, bool]] = field(default_factory=list)  # what, got, bar, met

    def markdown(self) -> str:
        parts = ["", f"## {self.title}", ""]
        if self.commands:
            parts += ["```sh", *self.commands, "```", ""]
        parts += [g.to_markdown() for g in self.grids]
        parts += [f"{n}\n" for n in self.notes]
        return "\n".join(parts)


def _backtest(
    settings: Settings,
    data: Path,
    out: Path,
    reuse: bool,
    detector: str = "vigil",
    every_s: float | None = None,
) -> float:
    """One backtest in NAB layout unless ``reuse`` finds it done; -> wall seconds."""
    if reuse and out.is_dir() and any(out.rglob(f"{detector}_*.csv")):
        return float("nan")
    started = time.perf_counter()
    files = find_files([data])
    run_files(settings, files, out, "nab", detector, console=Console(stderr=True), every_s=every_s)
    return time.perf_counter() - started


def _seconds(value: float) -> str:
    return "reused" if value != value else f"{value:.0f} s"


def nab_section(settings: Settings, data: Path, work: Path, reuse: bool) -> Section:
    section = Section(f"NAB-layout corpus: {data.name}")
    folders = []
    for name in ("vigil", *BASELINE_NAMES):
        out = work / f"nab-{name}"
        took = _backtest(settings, data, out, reuse, name)
        folders.append(out)
        section.commands.append(
            f"vigil backtest {shlex.quote(str(data))} --format nab --detector {name} --out {out}"
        )
        section.notes.append(f"backtest {name}: {_seconds(took)}")
    section.commands.append(
        f"vigil evaluate --data {shlex.quote(str(data))} --scores " + " ".join(map(str, folders))
    )
    swept = Grid(
        "NAB score, threshold swept per profile (sees the labels)", ["detector", *PROFILES]
    )
    reports = evaluate_detectors(data, None, folders)
    for report in reports:
        swept.add(report.detector, *(fmt(r.score, 1) for r in report.results.values()))
    section.grids.append(swept)
    corpora = load_corpora(data, None, folders)
    section.grids.append(alerted_grid(corpora))
    section.grids.append(false_alert_grid(corpora))
    section.grids += [loco_grid(detector, files) for detector, files in corpora.items()]
    if "vigil" in corpora:
        score = next(r for r in reports if r.detector == "vigil").results["standard"].score
        mean = fold_summary(leave_one_category_out(corpora["vigil"], PROFILES["standard"]))[0]
        what = f"{data.name}: NAB standard, swept"
        section.bars.append((what, fmt(score, 1), ">= 72.7", score >= 72.7))
        what = f"{data.name}: leave-one-category-out mean (standard)"
        section.bars.append(
            (what, fmt(mean, 1), f">= {score - 5:.1f} (swept - 5)", mean >= score - 5)
        )
    return section


def mgab_section(
    settings: Settings, data: Path, work: Path, reuse: bool, every_s: float, every: str
) -> Section:
    section = Section(f"Mackey-Glass corpus: {data.name} (event-wise, alert threshold)")
    for label, out, loop in (
        ("shipped model", work / "mgab", None),
        (f"trainer's loop every {every}", work / "mgab-retrain", every_s),
    ):
        took = _backtest(settings, data, out, reuse, every_s=loop)
        flag = "" if loop is None else f" --retrain-every {every}"
        section.commands.append(
            f"vigil backtest {shlex.quote(str(data))} --format nab --out {out}{flag}"
        )
        section.commands.append(
            f"vigil evaluate --data {shlex.quote(str(data))} --scores {out} --event-wise"
        )
        [(detector, files)] = load_corpora(data, None, [out]).items()
        grid, total = event_grid(f"{detector}, {label}", files, 256)
        section.grids.append(grid)
        section.notes.append(
            f"{label}: {total.found} of {total.windows} windows found, precision "
            f"{fmt(total.precision)}; backtest {_seconds(took)}"
        )
        if loop is not None:
            met = total.found >= 35 and total.precision >= 0.8
            got = f"{total.found}/{total.windows}, precision {fmt(total.precision)}"
            what = f"{data.name}: windows found with the loop"
            section.bars.append((what, got, ">= 35/50, precision >= 0.8", met))
        if loop is not None and (out / "retrain.json").exists():
            section.grids.append(runs_grid(out))
    return section


def suite_section(settings: Settings, size: str, work: Path, reuse: bool) -> Section:
    from pipeline.evaluation.suite import run_suite, suite_grids

    section = Section(f"Synthetic anomaly suite ({size})")
    section.commands.append(f"vigil evaluate --suite synthetic --size {size}")
    outcomes, seconds = run_suite(settings, size, work / f"suite-{size}", reuse=reuse)
    section.grids += suite_grids(outcomes, size)
    v = verdict(outcomes)
    what = f"suite ({size}): generated kinds at recall >= 0.8"
    section.bars.append((what, str(v.kinds_at_bar), ">= 8 of 10", v.kinds_at_bar >= 8))
    what, worst = f"suite ({size}): worst false alerts / stream-week", v.worst_false_alerts
    section.bars.append((what, fmt(worst), "<= 1", worst <= 1.0))
    section.notes.append(
        f"{len(outcomes)} streams, generated, back-tested and scored in {seconds:.0f} s"
    )
    return section


def _command_line(args: argparse.Namespace) -> str:
    parts = ["vigil report", "--out", args.out, "--work", args.work]
    every = args.retrain_every if args.mgab else None
    chosen = [("--nab", args.nab), ("--mgab", args.mgab), ("--retrain-every", every)]
    for flag, value in [*chosen, ("--suite-size", args.suite_size)]:
        if value:
            parts += [flag, value]
    return " ".join(shlex.quote(p) if i else p for i, p in enumerate(parts))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="reports/evaluation.md", help="markdown file to write")
    p.add_argument("--work", default="reports/work", help="backtest outputs (kept)")
    p.add_argument("--nab", help="a NAB-layout data folder to score (e.g. ../shared/data/nab-dev)")
    p.add_argument("--mgab", help="a Mackey-Glass folder in the same layout (MGAB)")
    p.add_argument("--retrain-every", default="6h", help="the trainer's interval for --mgab")
    p.add_argument("--suite-size", choices=["small", "full"], help="run the synthetic suite")
    p.add_argument("--reuse", action="store_true", help="skip backtests already in --work")


def run_report(settings: Settings, args: argparse.Namespace) -> int:
    """The `vigil report` command: run what was asked, write the markdown, print where."""
    from pipeline.evaluation.retrain import parse_duration

    if not (args.nab or args.mgab or args.suite_size):
        raise ValueError(
            "nothing to report: give --nab DIR (e.g. the shipped NAB sample, "
            f"{SAMPLE_DIR}), --mgab DIR or --suite-size small|full"
        )
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    sections = []
    if args.nab:
        sections.append(nab_section(settings, Path(args.nab), work, args.reuse))
    if args.mgab:
        every_s = parse_duration(args.retrain_every)
        sections.append(
            mgab_section(settings, Path(args.mgab), work, args.reuse, every_s, args.retrain_every)
        )
    if args.suite_size:
        sections.append(suite_section(settings, args.suite_size, work, args.reuse))
    command = _command_line(args)
    head = [
        "# Evaluation report",
        "",
        "Written by the command below; every table is what the named `vigil` commands print.",
        "",
        "```sh",
        command,
        "```",
        "",
    ]
    bars = Grid("Issue 12's bar", ["criterion", "measured", "bar", "met"])
    for section in sections:
        for what, got, bar, met in section.bars:
            bars.add(what, got, bar, "yes" if met else "**no**")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    body = "\n".join(s.markdown() for s in sections)
    out.write_text("\n".join(head) + bars.to_markdown() + body)
    Console().print(f"report written to {out}")
    return 0
