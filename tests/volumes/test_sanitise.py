"""The archive sanitiser as a pure function over member lists (no engine, no database).

Besides the named attacks, a property test generates thousands of small archives from a hostile
alphabet of names and link targets, extracts every archive `plan()` accepts into a model of a
filesystem that follows symlinks as the kernel does (in archive order, as the engine extracts,
and with links deferred to the end, as busybox `tar` does), and checks that nothing is written,
chmodded or linked outside the target directory.
"""

from __future__ import annotations

import io
import random
import tarfile
from dataclasses import dataclass

import pytest

from apps.operations.registry import OperationFailed
from apps.volumes.archive import _check_written, plan, sanitise


def member(name: str, kind: str = "file", target: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    """kind: file, dir, sym, lnk, fifo, chr, blk."""
    info = tarfile.TarInfo(name)
    info.type = {
        "file": tarfile.REGTYPE,
        "dir": tarfile.DIRTYPE,
        "sym": tarfile.SYMTYPE,
        "lnk": tarfile.LNKTYPE,
        "fifo": tarfile.FIFOTYPE,
        "chr": tarfile.CHRTYPE,
        "blk": tarfile.BLKTYPE,
    }[kind]
    info.linkname = target
    info.mode = mode
    return info


def refused(members: list[tarfile.TarInfo], strip: int = 0, existing=None) -> str:
    with pytest.raises(OperationFailed) as caught:
        plan(members, strip, existing)
    assert caught.value.error_code == "UNSAFE_ARCHIVE"
    assert "nothing was written" in caught.value.error
    return caught.value.error


def names(members: list[tarfile.TarInfo]) -> list[str]:
    return [m.name for m in members]


def test_it_refuses_the_reported_dot_dot_chain():
    error = refused([member("y", "sym", "."), member("x", "sym", "y/.."), member("x/escaped.txt")])
    assert "through the archive's symlink 'x'" in error
    # The link alone is refused too: it passes through `y` before climbing.
    assert "passes through the symlink 'y'" in refused(
        [member("y", "sym", "."), member("x", "sym", "y/..")]
    )


@pytest.mark.parametrize(
    "members",
    [
        # passing through a symlink the archive made earlier, even one that stays inside
        [member("l", "sym", "."), member("l/f")],
        [member("d", "dir"), member("d/l", "sym", "sub"), member("d/l/f")],
        # a symlink made later over a path already used as a directory
        [member("d/f"), member("d", "sym", "..")],
        [member("d/f"), member("d", "sym", "other")],
        # a directory (whose mode extractors set through links) over an archive symlink
        [member("l", "sym", "a"), member("l", "dir")],
        # a file and a symlink at one path
        [member("l"), member("l", "sym", "a")],
        # chains through other links
        [member("y", "sym", "."), member("x", "sym", "y/../..")],
        [member("a", "dir"), member("a/b", "sym", ".."), member("c", "sym", "a/b/..")],
        [member("x", "sym", "y/.."), member("y", "sym", ".")],  # order does not matter
        # link targets that leave
        [member("l", "sym", "..")],
        [member("l", "sym", "/etc")],
        [member("d/l", "sym", "../..")],
        [member("d/l", "sym", "./../.././x")],
        [member("l", "sym", "a/../../x")],
        # hard links: outside, to a symlink, through a symlink, stripped away
        [member("h", "lnk", "../etc/passwd")],
        [member("h", "lnk", "/etc/passwd")],
        [member("d/s", "sym", "../x"), member("h", "lnk", "d/s")],
        [member("s", "sym", "."), member("h", "lnk", "s/f")],
        [member("h", "lnk", "s"), member("s", "sym", "..")],  # to a symlink made later
        # names
        [member("/etc/passwd")],
        [member("../x")],
        [member("a/../../x")],
        [member("a/../b")],
        [member("a\x00b")],
        # special files
        [member("p", "fifo")],
        [member("dev/null", "chr")],
        [member("dev/sda", "blk")],
    ],
)
def test_it_refuses_unsafe_member_lists(members):
    refused(members)


def test_it_normalises_names_before_stripping_and_checks_after():
    out = plan(
        [
            member("./pkg/", "dir"),
            member("pkg//a.txt"),
            member("./pkg/./sub/b.txt"),
            member("pkg/link", "sym", "a.txt"),
            member("pkg/hard", "lnk", "./pkg/a.txt"),
        ],
        strip=1,
    )
    assert names(out) == ["a.txt", "sub/b.txt", "link", "hard"]
    assert out[3].linkname == "a.txt"
    # A symlink that stays inside before stripping may leave after it.
    refused([member("a/b/l", "sym", "../../x")], strip=1)
    # Two top-level folders that strip onto one path meet in one tree.
    refused([member("a/l", "sym", "."), member("b/l/f")], strip=1)
    refused([member("d/h", "lnk", "top")], strip=1)  # its target is stripped away


def test_it_keeps_safe_links_and_chains_inside_the_target():
    out = plan(
        [
            member("y", "sym", "."),
            member("x", "sym", "y"),
            member("d/up", "sym", ".."),
            member("d/f"),
            member("d/again", "sym", "../d/./f"),
            member("h", "lnk", "d/f"),
        ]
    )
    assert names(out) == ["y", "x", "d/up", "d/f", "d/again", "h"]


def test_it_strips_setuid_and_setgid_bits_and_keeps_the_sticky_bit():
    out = plan(
        [member("bin/su", mode=0o4755), member("g", mode=0o2755), member("tmp", "dir", mode=0o1777)]
    )
    assert [oct(m.mode) for m in out] == ["0o755", "0o755", "0o1777"]


def test_it_checks_members_against_existing_symlinks():
    existing = {"inside": True, "out": False}
    refused([member("out/f")], existing=existing)
    refused([member("inside/f")], existing=existing)  # its own target is not re-checked
    refused([member("out", "dir")], existing=existing)
    refused([member("l", "sym", "out")], existing=existing)
    refused([member("l", "sym", "inside/..")], existing=existing)
    refused([member("h", "lnk", "inside")], existing=existing)
    # Replacing a link by a file or another link unlinks it first: allowed.
    assert names(plan([member("out"), member("l", "sym", "inside")], existing=existing)) == [
        "out",
        "l",
    ]


# -- PAX records and long names: the clean tar holds the names plan() checked -------------


def pax_tar(*members: tarfile.TarInfo, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for info in members:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return buffer.getvalue()


def with_pax(info: tarfile.TarInfo, **records: str) -> tarfile.TarInfo:
    """`info` carrying explicit PAX records (path/linkpath by default: its own name and link)."""
    info.pax_headers = {"path": info.name, **({"linkpath": info.linkname} if info.linkname else {})}
    info.pax_headers.update(records)
    if info.isfile():
        info.size = 3
    return info


def read_back(clean: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(clean), mode="r:") as tar:
        return tar.getmembers()


def test_it_writes_the_stripped_names_over_the_archives_pax_records():
    # The reviewer's repro: `top/link` is an existing symlink that leaves the target. With
    # strip=1 the member is checked as `link/escaped.txt`; the clean tar used to keep the PAX
    # path `top/link/escaped.txt`, which the extractor wrote through that link.
    long = "top/" + "L" * 120 + "/file.txt"  # an ordinary long name gets a PAX path too
    raw = pax_tar(
        with_pax(member("top/link/escaped.txt")),
        member(long, mode=0o644),
        with_pax(member("top/hard", "lnk", "top/link/escaped.txt")),
        with_pax(member("top/sym", "sym", "link/escaped.txt")),
        with_pax(member("top/\u00e9t\u00e9.txt")),  # non-ASCII: a PAX path by necessity
    )
    clean, count = sanitise(raw, 1, {"top/link": False})
    written = read_back(clean)
    assert count == 5
    assert [(m.name, m.linkname) for m in written] == [
        ("link/escaped.txt", ""),
        ("L" * 120 + "/file.txt", ""),
        ("hard", "link/escaped.txt"),
        ("sym", "link/escaped.txt"),
        ("\u00e9t\u00e9.txt", ""),
    ]
    for info in written:
        assert info.pax_headers.get("path", info.name) == info.name
        assert info.pax_headers.get("linkpath", info.linkname) == info.linkname
    # The stripped names are the ones checked against the target's links.
    error = refused_archive(raw, 1, {"link": False})
    assert "through the existing symlink 'link'" in error


def refused_archive(raw: bytes, strip: int, existing=None) -> str:
    with pytest.raises(OperationFailed) as caught:
        sanitise(raw, strip, existing)
    assert caught.value.error_code == "UNSAFE_ARCHIVE"
    return caught.value.error


def test_it_checks_an_in_archive_chain_at_the_paths_it_writes():
    # Checked at `a/y`, `x` and `escaped.txt`, the old clean tar wrote `c/a/y -> ..`,
    # `x -> c/a/y/../..` and `x/escaped.txt`: the target's parent.
    raw = pax_tar(
        with_pax(member("c/a/y", "sym", "..")),
        member("q/x", "sym", "c/a/y/../.."),
        with_pax(member("x/escaped.txt")),
    )
    written = read_back(sanitise(raw, 1)[0])
    assert [m.name for m in written] == ["a/y", "x", "escaped.txt"]
    assert not extract_all(written, {}, deferred=False)


def test_it_writes_gnu_long_names_and_long_links_stripped():
    # GNU ././@LongLink members: tarfile reads them into the name; the clean tar is PAX.
    long = "top/" + "d" * 150 + "/f"
    raw = pax_tar(
        member(long, mode=0o644),
        member("top/" + "h" * 120, "lnk", long),
        member("top/s", "sym", "x" * 150),
        fmt=tarfile.GNU_FORMAT,
    )
    written = read_back(sanitise(raw, 1)[0])
    assert [(m.name, m.linkname) for m in written] == [
        ("d" * 150 + "/f", ""),
        ("h" * 120, "d" * 150 + "/f"),
        ("s", "x" * 150),
    ]


def test_it_drops_xattr_and_owner_records_with_the_setuid_bit():
    tool = member("bin/tool", mode=0o4755)
    tool.size = 2
    tool.pax_headers = {
        "SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x80\x00\x00\x00",
        "LIBARCHIVE.xattr.user.note": "aGk=",
        "SCHILY.acl.access": "user::rwx",
        "uname": "root",
        "gname": "root",
        "uid": "0",
        "mtime": "1700000000.5",
    }
    (written,) = read_back(sanitise(pax_tar(tool), 0)[0])
    assert oct(written.mode) == "0o755"
    assert not [key for key in written.pax_headers if "xattr" in key or "acl" in key]
    assert written.uname == written.gname == ""
    assert written.uid == 0  # owners are kept by number
    assert written.mtime == 1700000000.5  # what tarfile read from the record is kept


@pytest.mark.parametrize("mtime", ["inf", "-inf", "nan"])
def test_it_writes_members_whose_pax_mtime_is_not_a_number(mtime):
    info = member("f")
    info.size = 1
    info.pax_headers = {"mtime": mtime}
    (written,) = read_back(sanitise(pax_tar(info), 0)[0])
    assert written.mtime == 0


def test_it_refuses_a_clean_tar_that_reads_back_under_other_names():
    bad = pax_tar(with_pax(member("f", mode=0o644), path="top/link/f"))
    checked = member("f")
    checked.size = 3
    with pytest.raises(OperationFailed) as caught:
        _check_written(bad, [checked])
    assert caught.value.error_code == "UNSAFE_ARCHIVE"
    assert "written as 'top/link/f'" in caught.value.error


# -- property: a model filesystem ---------------------------------------------------------

TARGET = ("t",)


@dataclass
class Sym:
    text: str


class World:
    """Paths are tuples from '/'; values 'dir', 'file' or Sym. The target directory is /t."""

    def __init__(self, existing: dict[str, str]) -> None:
        self.nodes: dict[tuple[str, ...], object] = {(): "dir", ("etc",): "dir", TARGET: "dir"}
        self.nodes[(*TARGET, "sub")] = "dir"
        for path, text in existing.items():
            self.nodes[TARGET + tuple(path.split("/"))] = Sym(text)
        self.violations: list[str] = []

    def resolve(self, path: tuple[str, ...], follow_last: bool) -> tuple[str, ...] | None:
        """The real path as the kernel walks it (None on a loop or a missing parent)."""
        cur: list[str] = []
        todo = list(path)
        hops = 0
        while todo:
            step = todo.pop(0)
            if step in ("", "."):
                continue
            if step == "..":
                if cur:
                    cur.pop()
                continue
            here = (*cur, step)
            node = self.nodes.get(here)
            if isinstance(node, Sym) and (todo or follow_last):
                hops += 1
                if hops > 40:
                    return None
                if node.text.startswith("/"):
                    cur = []
                todo = node.text.split("/") + todo
                continue
            if node is None and todo and todo != [""]:
                return None  # ENOENT below a missing parent (we create parents first)
            cur = list(here)
        return tuple(cur)

    def inside(self, real: tuple[str, ...] | None) -> bool:
        return real is None or real[: len(TARGET)] == TARGET

    def check(self, real: tuple[str, ...] | None, what: str) -> None:
        if not self.inside(real):
            self.violations.append(f"{what} -> /{'/'.join(real or ())}")

    def parent_dir(self, parts: tuple[str, ...]) -> tuple[str, ...] | None:
        """mkdir -p of the parents, following links as extractors do; the real parent."""
        for depth in range(1, len(parts)):
            real = self.resolve(TARGET + parts[:depth], follow_last=True)
            self.check(real, "/".join(parts[:depth]))
            if real is None:
                return None
            if real not in self.nodes:
                self.nodes[real] = "dir"
            elif self.nodes[real] != "dir":
                return None
        return self.resolve(TARGET + parts[:-1], follow_last=True)

    def extract(self, info: tarfile.TarInfo) -> tuple[str, ...] | None:
        """Extract one member; the real path of the node it made, if it made one."""
        parts = tuple(info.name.split("/"))
        parent = self.parent_dir(parts)
        if parent is None:
            return None
        self.check(parent, info.name)
        dest = (*parent, parts[-1])
        node = self.nodes.get(dest)
        if info.isdir():
            if isinstance(node, Sym):  # mkdir fails; chmod follows the link
                self.check(self.resolve(dest, follow_last=True), f"chmod {info.name}")
            elif node is None:
                self.nodes[dest] = "dir"
        elif info.issym():
            self.nodes[dest] = Sym(info.linkname)
        elif info.islnk():
            source = self.resolve(TARGET + tuple(info.linkname.split("/")), follow_last=False)
            self.check(source, f"link source of {info.name}")
            if source is None or source not in self.nodes:
                return None  # link() fails: nothing made
            self.nodes[dest] = self.nodes[source]  # a hard link to a symlink copies it
        else:
            self.nodes[dest] = "file"
        return dest

    def final_check(self, made: set[tuple[str, ...]]) -> None:
        for path, node in list(self.nodes.items()):
            if isinstance(node, Sym) and path in made:
                self.check(self.resolve(path, follow_last=True), f"symlink /{'/'.join(path)}")


# Names mostly from a few components (including the existing links' names), so members meet;
# link targets also climb.
NAME_PARTS = ["a", "b", "a", "b", "sub", "out", "up", "in", "loop", ".", ""]
TARGET_PARTS = ["a", "b", "sub", "out", "in", ".", "..", ".."]
EXISTING = [
    {},
    {"sub/in": ".."},  # resolves to /t: inside
    {"out": "/etc", "up": ".."},  # /etc and /: outside
    {"in": "sub", "loop": "loop", "sub/deep": "../../etc"},
]


def random_path(rng: random.Random, parts: list[str]) -> str:
    path = "/".join(rng.choice(parts) for _ in range(rng.randint(1, 3)))
    return ("/" if rng.random() < 0.03 else "") + path


def random_members(rng: random.Random) -> list[tarfile.TarInfo]:
    out = []
    for _ in range(rng.randint(1, 5)):
        kind = rng.choice(["file", "file", "dir", "sym", "sym", "sym", "lnk"])
        name = random_path(rng, NAME_PARTS + ([".."] if rng.random() < 0.05 else []))
        target = random_path(rng, TARGET_PARTS) if kind == "sym" else ""
        if kind == "lnk":
            target = random_path(rng, NAME_PARTS)
        out.append(member(name, kind, target))
    return out


def extract_all(
    accepted: list[tarfile.TarInfo], existing: dict[str, str], deferred: bool
) -> list[str]:
    world = World(existing)
    order = accepted
    if deferred:  # busybox: hard links and symlinks with '..' or a leading '/' come last
        late = [
            m
            for m in accepted
            if m.islnk() or (m.issym() and (".." in m.linkname or m.linkname.startswith("/")))
        ]
        order = [m for m in accepted if m not in late] + late
    made: set[tuple[str, ...]] = set()
    for info in order:
        if (dest := world.extract(info)) is not None:
            made.add(dest)
    world.final_check(made)
    return world.violations


def test_the_model_catches_the_reported_bypass():
    # Without the sanitiser, the reported archive writes outside /t in the model.
    raw = [member("y", "sym", "."), member("x", "sym", "y/.."), member("x/escaped.txt")]
    assert extract_all(raw, {}, deferred=False)


@pytest.mark.parametrize("seed", range(6))
def test_it_never_lets_an_accepted_archive_leave_the_target(seed):
    rng = random.Random(seed)
    accepted = 0
    for _ in range(2000):
        existing = rng.choice(EXISTING)
        strip = rng.choice([0, 0, 0, 1])
        members = random_members(rng)
        world = World(existing)
        inside = {
            path: world.inside(world.resolve(TARGET + tuple(path.split("/")), follow_last=True))
            for path in existing
        }
        try:
            safe = plan(members, strip, inside)
        except OperationFailed as exc:
            assert exc.error_code == "UNSAFE_ARCHIVE", exc.error
            continue
        accepted += 1
        for deferred in (False, True):
            violations = extract_all(safe, existing, deferred)
            assert not violations, (
                [(m.name, m.type, m.linkname) for m in safe],
                strip,
                existing,
                violations,
            )
    assert accepted > 150  # the generator still produces archives worth extracting


@pytest.mark.parametrize("seed", range(2))
def test_it_never_lets_an_accepted_pax_archive_leave_the_target(seed):
    # The same property through real tar bytes whose members carry explicit PAX path and
    # linkpath records: what is extracted is the clean tar as an extractor reads it back.
    rng = random.Random(1000 + seed)
    accepted = 0
    for _ in range(800):
        existing = rng.choice(EXISTING)
        strip = rng.choice([0, 1, 1])
        members = [with_pax(m) for m in random_members(rng)]
        world = World(existing)
        inside = {
            path: world.inside(world.resolve(TARGET + tuple(path.split("/")), follow_last=True))
            for path in existing
        }
        try:
            clean, _count = sanitise(pax_tar(*members), strip, inside)
        except OperationFailed as exc:
            assert exc.error_code == "UNSAFE_ARCHIVE", exc.error
            continue
        accepted += 1
        written = read_back(clean)
        for deferred in (False, True):
            violations = extract_all(written, existing, deferred)
            assert not violations, (
                [(m.name, m.type, m.linkname) for m in written],
                strip,
                existing,
                violations,
            )
    assert accepted > 50
