"""Record what a wmbusmeters binary prints for the telegrams of upstream's own driver tests.

    python scripts/record_driver_tests.py extract TARBALL OUT        inputs.jsonl from a release
    python scripts/record_driver_tests.py record BINARY INPUTS OUT   one binary's telegrams

wmbusmeters' release source carries a test telegram for most of its drivers (`tests {...}` in
drivers/src/*.xmq, `// Test:` comments in src/driver_*.cc). `extract` lists them as
{"args": [name, driver, id, key], "telegram": hex}; `record` hands each to BINARY on its command
line (`wmbusmeters --format=json HEX NAME DRIVER ID KEY`) and keeps the JSON telegrams it prints,
one per line, in input order. A driver the binary lacks prints nothing. The tests use these as
telegrams of drivers the integration was not written against (tests/test_units.py). Stdlib only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import re
import subprocess
import sys
import tarfile

TIMEOUT = 20
_XMQ_TEST = re.compile(r"args\s*=\s*'([^']*)'.*?telegram\s*=\s*([0-9A-Fa-f_|]+)", re.DOTALL)
_CC_TEST = re.compile(r"// Test:\s*(.+?)\s*\n// telegram=\|?([0-9A-Fa-f_|]+?)\|?\s*$", re.MULTILINE)


def extract(tarball: Path) -> list[dict[str, object]]:
    """The driver tests of a release tarball, in file order."""
    cases: list[dict[str, object]] = []
    with tarfile.open(tarball) as tar:
        members = sorted(
            (m for m in tar.getmembers() if m.isfile()),
            key=lambda m: m.name,
        )
        for member in members:
            name = member.name
            if not (
                re.search(r"/drivers/src/[^/]+\.xmq$", name)
                or re.search(r"/src/driver_[^/]+\.cc$", name)
            ):
                continue
            file = tar.extractfile(member)
            assert file is not None
            text = file.read().decode("utf-8", "replace")
            pattern = _XMQ_TEST if name.endswith(".xmq") else _CC_TEST
            for match in pattern.finditer(text):
                args = match.group(1).split()
                telegram = match.group(2).replace("|", "")
                if len(args) == 4 and telegram:
                    cases.append({"args": args, "telegram": telegram})
    return cases


def record(binary: str, cases: list[dict[str, object]]) -> list[str]:
    """The JSON telegrams the binary prints for each case (none for a driver it lacks)."""
    lines: list[str] = []
    for case in cases:
        args = [str(a) for a in case["args"]]  # type: ignore[attr-defined]
        try:
            done = subprocess.run(
                [binary, "--format=json", str(case["telegram"]), *args],
                capture_output=True,
                timeout=TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            continue
        for line in done.stdout.decode("utf-8", "replace").splitlines():
            if line.startswith('{"_":"telegram"'):
                lines.append(line)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("extract")
    ex.add_argument("tarball", type=Path)
    ex.add_argument("out", type=Path)
    rec = sub.add_parser("record")
    rec.add_argument("binary")
    rec.add_argument("inputs", type=Path)
    rec.add_argument("out", type=Path)
    args = parser.parse_args()
    if args.command == "extract":
        cases = extract(args.tarball)
        args.out.write_text("".join(json.dumps(case) + "\n" for case in cases))
        print(f"{len(cases)} driver tests", file=sys.stderr)
    else:
        cases = [json.loads(line) for line in args.inputs.read_text().splitlines() if line]
        lines = record(args.binary, cases)
        args.out.write_text("".join(line + "\n" for line in lines))
        print(f"{len(lines)} telegrams from {len(cases)} driver tests", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
