"""``geomdl datasets``: list datasets, where they live and whether they are present and verified.

``--verify`` checks the sha256 of every manifest file that is present; ``--download NAME ...``
fetches the manifest files of those datasets (resumable, verified) into the data root.
"""
from __future__ import annotations

HELP = "list datasets, where they live and whether they are present and verified"


def add_arguments(parser) -> None:
    parser.add_argument("--root", help="data root (default: $GEOMDL_DATA or the repository's datasets/)")
    parser.add_argument("--verify", action="store_true", help="check the sha256 of the manifest files that are present")
    parser.add_argument("--download", nargs="+", metavar="NAME", help="fetch and verify the manifest files of these datasets")
    parser.add_argument("--manifest", help="manifest file (default: <data root>/manifest, else the one shipped with geomdl)")


def _status_line(files, root, verify):
    from geomdl.datasets.download import status

    states = [status(e, root, check_hash=verify, progress=True) for e in files]
    good = sum(s in ("present", "verified") for s in states)
    text = f"{good}/{len(files)} files"
    bad = [e.path for e, s in zip(files, states) if s == "corrupt"]
    if bad:
        text += f", {len(bad)} CORRUPT (e.g. {bad[0]})"
    elif good == len(files):
        text += ", verified" if verify else ", sizes ok"
    return text, bool(bad)


def run(args) -> int:
    import pathlib

    from geomdl.cli import CommandError
    from geomdl.datasets.base import data_root
    from geomdl.datasets.download import ChecksumError, download, read_manifest
    from geomdl.datasets.registry import DATASETS

    for option, value, what in (("--root", args.root, "the data folder"),
                                ("--manifest", args.manifest, "the manifest file")):
        if value is not None and not value.strip():  # e.g. --root "$DATA" with DATA unset: was the default root
            raise CommandError(f"{option}: empty path; give {what} (or leave {option} out for the default)")
    # "~" expanded as the datasets' root= and $GEOMDL_DATA are (--root=~/data reaches us unexpanded by the shell)
    root = pathlib.Path(args.root).expanduser() if args.root else data_root()
    if args.root and root.exists() and not root.is_dir():
        raise CommandError(f"--root {args.root}: is a file, expected the data folder")
    if args.root and not args.download and not root.is_dir():
        raise CommandError(f"--root {args.root}: no such folder (it is created by --download NAME)")
    try:
        manifest = read_manifest(args.manifest)
    except (OSError, ValueError) as exc:
        # a manifest named with --manifest, or a malformed one, is an error; only a missing default is fine
        if args.download or args.manifest or not isinstance(exc, FileNotFoundError):
            raise CommandError(str(exc)) from None
        manifest = []
    by_set: dict[str, list] = {}
    for entry in manifest:
        by_set.setdefault(entry.dataset, []).append(entry)

    if args.download:
        for name in args.download:
            try:
                paths = download(name, root, manifest=args.manifest)
            except (ValueError, ChecksumError, OSError) as exc:
                raise CommandError(f"{name}: {exc}") from None
            print(f"{name}: {len(paths)} file(s) present and verified under {root}")
        return 0

    print(f"data root: {root}")
    rows, corrupt = [], False
    for name, info in DATASETS.items():
        if info.subdir is None:
            where, state = "-", "built-in (generated from a seed)" if name.startswith("synthetic_") else "give path=FILE"
        else:
            folder = root / info.subdir
            where = str(folder)
            if info.subdir in by_set:
                state, bad = _status_line(by_set[info.subdir], root, args.verify)
                corrupt |= bad
            else:
                state = "present (no manifest entry)" if folder.is_dir() and any(folder.iterdir()) else "missing"
            if name == "qm9" and (state == "missing" or state.startswith("0/")):
                import importlib.util

                state += "; full QM9 from qm9pack" if importlib.util.find_spec("qm9pack") else "; pip install qm9pack for the full QM9"
        rows.append((name, where, state, info.description))
    extra = sorted(set(by_set) - {i.subdir for i in DATASETS.values()})
    for name in extra:
        state, bad = _status_line(by_set[name], root, args.verify)
        corrupt |= bad
        rows.append((name, str(root / name), state, "sample files in the manifest"))
    widths = [max(len(r[k]) for r in rows) for k in range(3)]
    print(f"{'dataset':<{widths[0]}}  {'status':<{widths[2]}}  folder")
    for name, where, state, desc in rows:
        print(f"{name:<{widths[0]}}  {state:<{widths[2]}}  {where}")
    return 1 if corrupt else 0
