"""python3 -m pyspy_dask: record snapshot files on a Dask cluster."""
import argparse
import os
import sys

from pyspy_dask.driver import FORMATS, FleetError, expand_inputs, profile

MAX_WARNINGS = 10


def parse(argv):
    p = argparse.ArgumentParser(
        prog="python3 -m pyspy_dask",
        description="Profiles a set of pyspy snapshot or core files on a "
        "Dask cluster: the files are cut into partitions in the order "
        "given, each recorded by pyspy-analyze on a worker, and the "
        "partial profiles merged here with pyspy merge, the same as one "
        "'pyspy record' over all of them.")
    p.add_argument("inputs", nargs="+", metavar="PATH_OR_GLOB",
                   help="snapshot/core files, directories of them or "
                   "globs (quote them), as the workers see them")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="the cluster's scheduler, e.g. tcp://HOST:8786 "
                   "(default: start a LocalCluster here)")
    p.add_argument("-o", "--output", required=True, help="file to write")
    p.add_argument("-f", "--format", default="flamegraph", choices=FORMATS,
                   type=str.lower, help="output format (default: "
                   "flamegraph)")
    p.add_argument("--partitions", type=int, metavar="N",
                   help="partitions (tasks) to cut the files into "
                   "(default: 4 per worker)")
    p.add_argument("--workers", type=int, default=2, metavar="N",
                   help="worker processes of the LocalCluster (default 2)")
    p.add_argument("--pyspy", default=os.environ.get("PYSPY_ANALYZE",
                                                     "pyspy-analyze"),
                   metavar="PATH",
                   help="pyspy-analyze on the workers and here: a path, or "
                   "a name looked up on each host's PATH (default: "
                   "$PYSPY_ANALYZE, else pyspy-analyze)")
    p.add_argument("--retries", type=int, default=3, metavar="N",
                   help="times a failed partition is run again (a lost "
                   "worker's partitions are rescheduled by Dask itself; "
                   "default 3)")
    g = p.add_argument_group("options of pyspy record, given to every "
                             "worker")
    g.add_argument("-r", "--rate", type=int)
    for flag in ("--idle", "--gil", "--threads", "--nolineno", "--function",
                 "--full-filenames", "--native"):
        g.add_argument(flag, action="store_true")
    args = p.parse_args(argv)
    if args.partitions is not None and args.partitions < 1:
        p.error("--partitions must be at least 1")
    if args.workers < 1:
        p.error("--workers must be at least 1")
    if args.retries < 0:
        p.error("--retries must be 0 or more")
    record_args = []
    if args.rate is not None:
        record_args += ["--rate", str(args.rate)]
    for flag in ("idle", "gil", "threads", "nolineno", "function",
                 "full_filenames", "native"):
        if getattr(args, flag):
            record_args.append("--" + flag.replace("_", "-"))
    return args, record_args


def main(argv=None):
    args, record_args = parse(sys.argv[1:] if argv is None else argv)
    try:
        files = expand_inputs(args.inputs)
        res = profile(files, args.output, args.format,
                      scheduler=args.scheduler, partitions=args.partitions,
                      workers=args.workers, pyspy=args.pyspy,
                      record_args=record_args, retries=args.retries)
    except FleetError as e:
        print(f"pyspy_dask: error: {e}", file=sys.stderr)
        return 1
    for w in res["warnings"][:MAX_WARNINGS]:
        print(w, file=sys.stderr)
    if len(res["warnings"]) > MAX_WARNINGS:
        print(f"warning: {len(res['warnings']) - MAX_WARNINGS} more "
              "warnings from the workers", file=sys.stderr)
    sys.stdout.write(res["merge_output"])
    print(f"{res['files']} files in {res['partitions']} partitions on "
          f"{res['workers']} workers; {res['errors']} could not be read")
    return 0


if __name__ == "__main__":
    sys.exit(main())
