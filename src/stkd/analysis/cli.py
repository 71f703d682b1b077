"""``stkd analyze``: the spatio-temporal analysis report of a data set, from the command line."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from stkd.names import BUILTIN_DATASETS

ANALYSIS_MODULES = ("statsmodels",)  # what the `analysis` extra brings that `stkd analyze` cannot run without

EPILOG = """examples:
  stkd analyze akl-pedestrians --out runs/akl-analysis
  stkd analyze my.yaml --out runs/la-analysis --nodes 773869,767541
  stkd analyze my.yaml --set data.time_range='["2012-03-01","2012-03-05"]' --out runs/week1 --overwrite

writes DIR/analysis.md (report with plots), DIR/analysis.json (every number) and DIR/plots/*.png:
missing data, daily/weekly periods (autocorrelation + periodogram), MSTL trend and seasonality
(one component per detected cycle, with its strength), Moran's I and hot/cold spots, lagged
correlation between neighbours, anomalies.
"""


def cmd_analyze(args) -> int:
    from stkd.deploy.cli import require_extra

    require_extra("analysis", ANALYSIS_MODULES, "stkd analyze")
    from stkd.analysis.report import NUMBERS, REPORT, analyze
    from stkd.cli import resolve_config
    from stkd.data.loaders import load_data

    cfg = resolve_config(args.source, args.set)
    data = load_data(cfg.data)
    out = Path(args.out) if args.out else Path("runs") / time.strftime("analysis-%Y%m%d-%H%M%S")
    quiet = getattr(args, "quiet", False)
    say = None if quiet else (lambda section: print(f"  {section} ...", flush=True))
    if not quiet:
        print(f"analysing {data.name}: {data.num_nodes} nodes x {data.num_steps} steps ({data.freq_str})")
    result = analyze(data, out, nodes=args.nodes, max_pairs=args.max_pairs, seed=args.seed,
                     overwrite=args.overwrite, feature=args.feature, plots=not args.no_plots, progress=say)
    print("\n".join(f"- {line}" for line in result["headline"]))
    for note in result["notes"]:
        print(f"  note: {note}")
    print(f"\nreport: {out / REPORT}\nnumbers: {out / NUMBERS}")
    if result["plots"]:
        print(f"plots: {out / 'plots'}")
    return 0


def register(subparsers, formatter_class=argparse.RawDescriptionHelpFormatter) -> None:
    """Add the ``analyze`` subcommand to ``stkd``'s subparsers."""
    p = subparsers.add_parser(
        "analyze", help="spatio-temporal analysis report: periods, trend, Moran's I, lags, anomalies",
        description="Analyse a data set given by a config file or a builtin name: missing data, dominant "
                    "periods (daily and weekly cycles), MSTL trend and seasonality with every detected period, "
                    "spatial autocorrelation (global Moran's I over time, local hot and cold spots), lagged "
                    "cross-correlation between neighbouring sensors and the lag at which it peaks, and anomalies "
                    "(extreme decomposition residuals).",
        epilog=EPILOG, formatter_class=formatter_class)
    p.add_argument("source", nargs="?", default="akl-pedestrians",
                   help="config YAML (its data section is used) or builtin name: "
                        f"{', '.join(BUILTIN_DATASETS)} (default: akl-pedestrians)")
    p.add_argument("--out", help="report directory to create (default: runs/analysis-<timestamp>)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config value, e.g. --set data.time_range='[\"2024-01-01\",\"2024-06-30\"]' "
                        "(repeatable)")
    p.add_argument("--nodes", help="comma-separated node ids whose MSTL/STL decomposition is plotted "
                                   "(default: the 3 most complete nodes)")
    p.add_argument("--feature", help="feature to analyse (default: the first target)")
    p.add_argument("--max-pairs", type=int, default=200,
                   help="neighbour pairs whose lagged cross-correlation is computed (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the permutation tests and the pair sample")
    p.add_argument("--overwrite", action="store_true",
                   help="write into an existing non-empty directory (files of the same names are replaced)")
    p.add_argument("--no-plots", action="store_true", help="numbers and report text only (faster)")
    p.add_argument("--quiet", action="store_true", help="no progress lines or bars")
    p.set_defaults(func=cmd_analyze)
