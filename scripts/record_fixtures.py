"""Record a wmbusmeters binary's real output for every case of a recorded fixture set.

    python scripts/record_fixtures.py BINARY OUT_DIR [--cases tests/fixtures/wmbusmeters-2.0.0]

Each case of the source set (`<case>.cmd.txt`, `<case>.input.txt`, `<case>.file.*.txt`; layout in
that folder's README.md) is run again with BINARY, in a fresh folder, with the same arguments, the
same input and the same config files, and its stdout, stderr and exit status are written to
OUT_DIR beside copies of the case's definition. So fixtures of another wmbusmeters version come
from the same telegrams and can be regenerated at any time (`scripts/record-fixtures`).

Also recorded: --version, --help, the driver list (--listdrivers where the binary's --help
offers it, else --listmeters), --listunits and units.tsv parsed from it, and --listfields of
every driver the source set documents or the recorded telegrams report. Stdlib only.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys
import tempfile
import time

TIMEOUT = 60
#: What the kernel names (in /proc/PID/task/TID/wchan) where a thread sleeps in usleep().
_NANOSLEEP = "nanosleep"
#: What a case's input is saved as, when no argument names it (a --useconfig case).
_DEVICE_LINE = re.compile(r"^device=(\S+?)(?::.*)?$", re.MULTILINE)
_INPUT_NAME = re.compile(r"^(simulation\S*|\S+\.(?:msg|hex))$")
_UNIT_HEADING = re.compile(r"^(\S+) ─")
_UNIT_LINE = re.compile(r"^(\S+)\s+(.*?\))")


def run(
    binary: str, args: list[str], cwd: Path, stdin: bytes | None = None
) -> tuple[bytes, bytes, int]:
    """Run the binary as the recordings do: no tty, UTC, an empty HOME (no ~/.config)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), "LANG": "C.UTF-8"}
    with subprocess.Popen(
        [binary, *args],
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as proc:
        if stdin:
            await_main_loop(proc)
        # Then all of the input and its end at once. Nothing needs to wait for the output: at
        # the end of its input wmbusmeters still decodes every line it has read (its reader
        # takes the bytes up to the end, closes, then hands them to the decoder; the loop drops
        # the device, and the program stops, only after that: serial.cc receive(), eventLoop()).
        stdout, stderr = proc.communicate(stdin, timeout=TIMEOUT)
    return stdout, stderr, proc.returncode


def await_main_loop(proc: subprocess.Popen[bytes]) -> None:
    """Wait until wmbusmeters' main thread sleeps in its wait loop, or the program has ended.

    wmbusmeters lets the thread that reads and decodes its input run before main() is done
    setting up. With no meter configured, the listener that reports every telegram heard is
    added after that (main.cc: startEventLoop(), later "No meters configured..." and
    onTelegram()), so input that is already there can be decoded and dropped first, and a
    dropped telegram still counts as heard (a repeat of it is skipped as a duplicate). The
    output says nothing once the listener is in place; but with a stdin device the only place
    main() sleeps is the usleep() loop of waitForStop(), which it enters after all of that, and
    the kernel shows where a thread sleeps. Until then stdout and stderr are not read: what
    wmbusmeters prints before its main loop (a notice or two) fits in the pipes.
    """
    wchan = Path(f"/proc/{proc.pid}/task/{proc.pid}/wchan")
    deadline = time.monotonic() + TIMEOUT
    while proc.poll() is None:
        try:
            sleeping_in = wchan.read_text().strip()
        except OSError:  # it ended between the two looks; communicate() collects what it said
            return
        if _NANOSLEEP in sleeping_in:
            return
        if time.monotonic() > deadline:
            proc.kill()
            raise TimeoutError(
                f"{proc.args!r} did not reach its main loop within {TIMEOUT} s"
                f" ({wchan}: {sleeping_in!r})"
            )
        time.sleep(0.001)


def input_name(case_dir: Path, args: list[str]) -> str | None:
    """The file name the case's input is read under (None: standard input or no input)."""
    for arg in args:
        value = arg.split("=", 1)[1] if arg.startswith("--overridedevice=") else arg
        if _INPUT_NAME.match(value):
            return value
    for conf in sorted(case_dir.rglob("wmbusmeters.conf")):
        if match := _DEVICE_LINE.search(conf.read_text()):
            return match.group(1)
    return None


def record_case(binary: str, source: Path, out: Path, case: str) -> set[str]:
    """Replay one case; returns the drivers its telegrams reported."""
    args = (source / f"{case}.cmd.txt").read_text().split("\n")
    args = [a for a in args if a]
    input_file = source / f"{case}.input.txt"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for extra in source.glob(f"{case}.file.*.txt"):
            relative = (
                extra.name.removeprefix(f"{case}.file.").removesuffix(".txt").replace("__", "/")
            )
            (work / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(extra, work / relative)
            shutil.copy(extra, out / extra.name)
        stdin = None
        if input_file.exists():
            shutil.copy(input_file, out / input_file.name)
            if any(a.startswith("stdin:") for a in args):
                stdin = input_file.read_bytes()
            elif name := input_name(work, args):
                shutil.copy(input_file, work / name)
        shutil.copy(source / f"{case}.cmd.txt", out / f"{case}.cmd.txt")
        stdout, stderr, rc = run(binary, args, work, stdin)
    (out / f"{case}.stdout.jsonl").write_bytes(stdout)
    (out / f"{case}.stderr.txt").write_bytes(stderr)
    (out / f"{case}.rc.txt").write_text(f"{rc}\n")
    drivers = set()
    for line in stdout.splitlines():
        if line.startswith(b"{"):
            drivers.add(str(json.loads(line).get("meter", "")))
    return drivers - {""}


def units_tsv(listunits: str, version: str) -> str:
    """suffix, quantity, unit text: the --listunits table without its SI-conversion column."""
    rows = [
        f"# suffix\tquantity\tunit_text (from wmbusmeters {version} --listunits;"
        " the SI-conversion column is left out)"
    ]
    quantity = ""
    for line in listunits.splitlines():
        if heading := _UNIT_HEADING.match(line):
            quantity = heading.group(1)
        elif quantity and (unit := _UNIT_LINE.match(line)):
            rows.append(f"{unit.group(1)}\t{quantity}\t{unit.group(2)}")
    return "\n".join(rows) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("binary")
    parser.add_argument("out", type=Path)
    parser.add_argument(
        "--cases",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "wmbusmeters-2.0.0",
    )
    opts = parser.parse_args()
    binary = shutil.which(opts.binary) or opts.binary
    source: Path = opts.cases
    out: Path = opts.out
    out.mkdir(parents=True, exist_ok=True)
    here = Path(tempfile.mkdtemp())
    try:
        version_text = run(binary, ["--version"], here)[0].decode()
        version = version_text.split(":", 1)[1].split()[0].split("-")[0]  # no Debian revision
        (out / "version.txt").write_text(version_text)
        help_text = run(binary, ["--help"], here)[0].decode()
        (out / "help.txt").write_text(help_text)
        # Ask the binary which listing option it has (3.0.0 renamed --listmeters).
        option = (
            "--listdrivers"
            if re.search(r"^\s*--listdrivers\b", help_text, re.M)
            else "--listmeters"
        )
        (out / f"{option.removeprefix('--')}.txt").write_bytes(run(binary, [option], here)[0])
        listunits = run(binary, ["--listunits"], here)[0].decode()
        (out / "listunits.txt").write_text(listunits)
        (out / "units.tsv").write_text(units_tsv(listunits, version))

        cases = sorted(p.name.removesuffix(".cmd.txt") for p in source.glob("*.cmd.txt"))
        drivers = {
            p.name.removeprefix("listfields-").removesuffix(".txt")
            for p in source.glob("listfields-*.txt")
        }
        for case in cases:
            drivers |= record_case(binary, source, out, case)
            print(f"  {case}", file=sys.stderr)
        for driver in sorted(drivers):
            stdout, _, rc = run(binary, [f"--listfields={driver}"], here)
            if rc == 0 and stdout.strip():
                (out / f"listfields-{driver}.txt").write_bytes(stdout)
            else:
                print(f"  --listfields={driver}: not known to {version}", file=sys.stderr)
    finally:
        shutil.rmtree(here, ignore_errors=True)
    print(f"recorded {len(cases)} cases of wmbusmeters {version} in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
