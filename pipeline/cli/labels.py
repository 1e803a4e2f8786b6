"""`vigil labels export`: what people said about episodes, as labelled data (JSON lines).

One line per labelled episode: stream, episode id, start, peak score, whether it was
acknowledged and by whom, and `label` = "false_positive", "true_positive" or null when
nobody judged it. This is the start of learning from feedback: a file a training or
evaluation run can join with the alerts topic by episode id.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pipeline.cli.flags import add_settings_flags, settings_from_args
from pipeline.contracts.alerts import iso_utc
from pipeline.state.labels import Label, all_labels


def label_record(label: Label) -> dict[str, Any]:
    verdict = {True: "false_positive", False: "true_positive", None: None}[label.false_positive]
    return {**asdict(label), "start": iso_utc(label.start_ms), "label": verdict}


def cmd_labels_export(args: argparse.Namespace) -> int:
    from pipeline.errors import UserError
    from pipeline.state.redis import connect_redis

    settings = settings_from_args(args)
    client = connect_redis(settings.redis_address())
    labels = all_labels(client, settings.redis_prefix, args.since_ms)
    lines = "".join(json.dumps(label_record(x), separators=(",", ":")) + "\n" for x in labels)
    if args.out in (None, "-"):
        sys.stdout.write(lines)
        return 0
    out = Path(args.out)
    if not out.parent.is_dir():
        raise UserError(f"cannot write {out}: folder {out.parent} does not exist")
    out.write_text(lines)
    print(f"{len(labels)} labelled episodes written to {out}", file=sys.stderr)
    return 0


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected epoch milliseconds, got {text!r}")
    return int(text)


def add_commands(sub: Any) -> None:
    p = sub.add_parser("labels", help="labels people gave episodes (acknowledged, false positive)")
    actions = p.add_subparsers(dest="labels_action", required=True, parser_class=type(p))
    e = actions.add_parser("export", help="write the labelled episodes as JSON lines")
    add_settings_flags(e)
    e.add_argument("--out", help="file to write (default: standard output)")
    e.add_argument("--since-ms", type=_non_negative_int, default=0,
                   help="only labels changed at or after this epoch ms")  # fmt: skip
    e.set_defaults(func=cmd_labels_export)
