"""The release's sources archive (scripts/release --sources): every source that
bin/<machine>/licenses/SOURCES.txt names, gathered and checked, with the build recipe.

    release_sources.py [--allow-missing] STATIC_DIR ARCHIVE MIRROR CACHE FILE...

- `file` lines: a file with its sha256, found among FILE... (the upstream tarballs in
  shared/upstream, Debian's orig tarballs scripts/build-static fetched) and checked;
- `debian-source` lines: a Debian source package and version, every file of it (the .dsc, the
  orig and debian tarballs) as the mirror's source index lists it, fetched into CACHE once and
  checked against the index's sha256.
The archive (an uncompressed tar of compressed files) holds `sources/<file>`, `recipe/` (the
scripts that build the binaries) and `SOURCES.txt`: each binary of each machine, its sources
and their sha256.

Runs in the Debian sid root (scripts/release): MIRROR is read from its apt sources at run time.
A file the mirror does not serve stops it, unless --allow-missing: then it is listed under
"missing" in SOURCES.txt (a mirror that holds only part of the pool, as a dated snapshot may;
never for a published release).
"""

from __future__ import annotations

import hashlib
import http.client
import io
import lzma
from pathlib import Path
import re
import shutil
import sys
import tarfile
import urllib.request

#: A file name taken from SOURCES.txt or the source index (never a path).
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+~_-]*")
RECIPE = ("scripts/build-static", "scripts/release", "scripts/release_sources.py", "scripts/lib.sh")


def sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def read_sources(static: Path) -> list[tuple[str, str, str, str, str, str]]:
    """(machine, binary, kind, name, reference, licence) of every SOURCES.txt line."""
    lines = []
    for machine in sorted(p.name for p in static.iterdir() if (p / "licenses").is_dir()):
        text = (static / machine / "licenses" / "SOURCES.txt").read_text()
        for line in text.splitlines():
            if line and not line.startswith("#"):
                binary, kind, name, reference, licence = line.split("\t")
                lines.append((machine, binary, kind, name, reference, licence))
    return lines


def source_index(mirror: str, cache: Path) -> str:
    """The mirror's source index (sid main), fetched once per snapshot."""
    index = cache / "Sources.xz"
    if not index.exists():
        fetch(f"{mirror}/dists/sid/main/source/Sources.xz", index)
    return lzma.decompress(index.read_bytes()).decode("utf-8", "replace")


def package_files(index: str, name: str, version: str) -> tuple[str, list[tuple[str, str]]]:
    """The pool directory and (file, sha256) of a source package version."""
    for paragraph in index.split("\n\n"):
        if paragraph.startswith(f"Package: {name}\n") and re.search(
            rf"^Version: {re.escape(version)}$", paragraph, re.MULTILINE
        ):
            directory = re.search(r"^Directory: (.*)$", paragraph, re.MULTILINE)
            sums = re.search(r"^Checksums-Sha256:\n((?: .*\n?)*)", paragraph, re.MULTILINE)
            if directory and sums:
                files = [
                    (parts[2], parts[0])
                    for parts in (line.split() for line in sums[1].strip().splitlines())
                ]
                unsafe = [f for f, _ in files if not _SAFE_NAME.fullmatch(f)]
                if unsafe or not re.fullmatch(r"pool/[a-z0-9/+.-]+", directory[1]):
                    raise SystemExit(f"{name} {version}: unsafe names in the index: {unsafe}")
                return directory[1], files
    raise SystemExit(f"{name} {version}: not in the mirror's source index")


class Missing(Exception):
    """The mirror does not serve a file."""


def fetch(url: str, out: Path) -> None:
    part = out.with_name(out.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=300) as response, part.open("wb") as file:
            shutil.copyfileobj(response, file, 1 << 20)
    except (OSError, http.client.HTTPException) as err:  # (urllib's HTTPError is an OSError)
        part.unlink(missing_ok=True)
        raise Missing(f"{url.split('/', 3)[-1]}: {err}") from err
    part.replace(out)


def write_archive(
    archive: Path,
    entries: list[tuple[str, str, str, str, str, str]],
    wanted: dict[str, tuple[Path, str]],
    missing: list[str],
) -> None:
    """SOURCES.txt, the sources and the recipe, as one tar (written aside, then moved in)."""
    listing = io.StringIO()
    listing.write(
        "# The corresponding source of the release's binaries (bin/<machine>/ of the zip).\n"
        "# machine\tbinary\tkind\tsource\tsha256 or version\tlicence\n"
    )
    for entry in entries:
        listing.write("\t".join(entry) + "\n")
    listing.write("\n# sources/ (sha256)\n")
    for name, (_path, digest) in sorted(wanted.items()):
        listing.write(f"{digest}  sources/{name}\n")
    if missing:
        listing.write("\n# missing: not served by the mirror this archive was made from\n")
        listing.writelines(f"# {line}\n" for line in missing)
    part = archive.with_name(archive.name + ".part")
    # (dereference: a linked upstream tarball goes in as the file it leads to)
    with tarfile.open(part, "w", format=tarfile.PAX_FORMAT, dereference=True) as tar:
        data = listing.getvalue().encode()
        info = tarfile.TarInfo("SOURCES.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for name, (path, _digest) in sorted(wanted.items()):
            tar.add(path, f"sources/{name}")
        repo = Path(__file__).resolve().parent.parent
        for recipe in RECIPE:
            tar.add(repo / recipe, f"recipe/{recipe}")
    part.replace(archive)


def main(  # noqa: PLR0912  (one pass over the listing, in order)
    static: Path,
    archive: Path,
    mirror: str,
    cache: Path,
    given: list[Path],
    *,
    allow_missing: bool,
) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    by_name: dict[str, list[Path]] = {}
    for path in given:
        if path.is_file():
            by_name.setdefault(path.name, []).append(path)
    entries = read_sources(static)
    wanted: dict[str, tuple[Path, str]] = {}  # archive name -> (file, sha256)
    index = None
    missing: list[str] = []
    for _machine, _binary, kind, name, reference, _licence in entries:
        if not _SAFE_NAME.fullmatch(name):
            raise SystemExit(f"SOURCES.txt: {name!r} is not a file name")
        if kind == "file":
            # (the same name may be given twice: shared/upstream's, a download's)
            path = next((p for p in by_name.get(name, []) if sha256(p) == reference), None)
            if path is None:
                raise SystemExit(f"{name}: not given, or not the file SOURCES.txt names")
            if name in wanted and wanted[name][1] != reference:
                raise SystemExit(f"{name}: two sources of that name differ")
            wanted[name] = (path, reference)
            continue
        index = index or source_index(mirror, cache)
        directory, files = package_files(index, name, reference)
        for file, digest in files:
            local = cache / file
            if file in wanted:
                if wanted[file][1] != digest:
                    raise SystemExit(f"{file}: two sources of that name differ")
                continue
            if f"{file}  {digest}" in missing:
                continue
            if not local.exists() or sha256(local) != digest:
                try:
                    fetch(f"{mirror}/{directory}/{file}", local)
                except Missing as err:
                    if not allow_missing:
                        raise SystemExit(f"the mirror does not serve {err}") from err
                    missing.append(f"{file}  {digest}")
                    continue
                if sha256(local) != digest:
                    raise SystemExit(f"{file}: its sha256 is not the source index's")
            wanted[file] = (local, digest)
    write_archive(archive, entries, wanted, missing)
    print(archive)


if __name__ == "__main__":
    args = sys.argv[1:]
    partial = args[:1] == ["--allow-missing"]
    args = args[1:] if partial else args
    main(
        Path(args[0]),
        Path(args[1]),
        args[2].rstrip("/"),
        Path(args[3]),
        [Path(arg) for arg in args[4:]],
        allow_missing=partial,
    )
    if partial:
        print("(partial: SOURCES.txt lists what the mirror did not serve)")
