"""The loader's pure helpers, in process: its PEP 440 versions and specifiers checked against
the `packaging` library, its reading of command lines and of distribution directory names.

The module is imported by its package name, so its start-up code (which runs only under the
name `sitecustomize`) does nothing here.
"""

from __future__ import annotations

import itertools
import platform
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from libinject.bundle import sitecustomize as loader

VALID = (
    "0", "0.0", "0.0.1", "1", "1.0", "1.0.0", "1.0.0.0", "01.02", "1.2", "1.2.3", "1.9", "1.10",
    "2", "2.0", "2.2", "2.2.0", "2.9999", "3.0", "10.0", "0.6.0", "0.6.1", "0.6.9", "0.7.0",
    "0.13.9", "0.14.0", "1.13.99", "1.14",
    "1.0a1", "1.0a2", "1.0b1", "1.0rc1", "1.0c1", "1.0a", "1.0.alpha1", "1.0beta2", "1.0pre1",
    "1.0preview1", "1.0-RC1", "1.0_a_1", "1.0.0a1", "2.2.0rc1", "3.0a1", "1.0a1-1",
    "1.0.dev0", "1.0.dev1", "1.0DEV2", "1.0-dev", "1.0-dev-1", "1.0a1.dev1", "3.0.dev0",
    "1.0.post1", "1.0.post2", "1.0-1", "1.0-0", "1.0.post", "1.0-rev3", "1.0r4", "1.0.0.post0",
    "1.0.post1.dev1", "1.0rc1.post1", "1.0a1.post1.dev1", "2.2.0.post1", "0.6.1.post1",
    "1.0+local", "1.0+1", "1.0+abc.5", "1.0+5.abc", "1.0+UBUNTU-1", "1.0+local_version",
    "1.0.post1+x", "1.0a1+7", "0.9+x",
    "1!1.0", "1!0.1", "0!1.0", "v1.0", "V2.0", "v1!1.0", " 1.0 ",
)  # fmt: skip
INVALID = (
    "", "abc", "a1", "1.0-", "1..0", "1.0+", "1.0++x", "1.0.x", "1.0-r1-2", "1.0abc", "1!",
    "!1", "1.0 beta", "2004d", "1.0-_1", "1.0+a..b", "1.0.post.post", "1.0a1a2",
    "1.0dev1.post1", "1.0.post1-1", "1.0+a b", "1.0_1", "-1.0", "1.0.", "1.0+-x",
)  # fmt: skip
SPECIFIERS = (
    "", ">=1.0", ">1.0", "<1.0", "<=1.0", "==1.0", "!=1.0", "~=1.0", "~=1.0.0", "==1.*",
    "==1.0.*", "!=1.0.*", "!=1.*", "==0.*", "==2.2.*", "===1.0", ">=1.0a1", ">1.0a1", "<1.0a1",
    "<1.0.dev0", "<1.0.post1", ">1.0.post1", ">1.0.dev0", ">=1.0.post1", "<=1.0.post1",
    "==1.0+local", "!=1.0+local", "==1.0.0", "~=1.0a1", "~=2.2.0rc1", "~=0.6.1", ">=0.14.0,<1",
    "!=2.2.0,<3,>=1", ">=1.14,<3", ">=1!1.0", "==1!1.*", "~=1!1.0", ">1!0.1", ">= 1.0",
    "<2.2", ">2.2", ">2.2.0", "<2.2.0rc1", ">0", "<0", ">=0", "!=1.0.post1", "==1.0.post1",
    "==1.0.dev0", "~=1.0.post1", "<3.0", ">3.0.dev0", "<3.0a1", ">=0.6.1,<0.7", "<=1.0a1",
    ">=1.0,!=1.0.post1,<2",
)  # fmt: skip
BAD_SPECIFIERS = ("~=1", "<1.0+local", "==1.0a1.*", ">=1.*", "=>1.0", "1.0", "==", ">=abc")


def _sign(number: int) -> int:
    return (number > 0) - (number < 0)


def test_version_parsing_agrees_with_packaging() -> None:
    """Every spelling packaging accepts, the loader accepts, and every one it rejects, the
    loader rejects (an unreadable version of an app's package must refuse, not crash)."""
    for text in VALID:
        Version(text)  # the table itself is right
        assert loader._parse_version(text) is not None, text
    for text in INVALID:
        with pytest.raises(InvalidVersion):
            Version(text)
        assert loader._parse_version(text) is None, text


def test_version_order_agrees_with_packaging() -> None:
    """Every pair of versions sorts as packaging sorts it: release padding, epochs, dev <
    a < b < rc < final < post, local versions above their public one."""
    for left, right in itertools.product(VALID, repeat=2):
        ours_left, ours_right = loader._parse_version(left), loader._parse_version(right)
        assert ours_left is not None
        assert ours_right is not None
        ours = (ours_left.key() > ours_right.key()) - (ours_left.key() < ours_right.key())
        theirs = (Version(left) > Version(right)) - (Version(left) < Version(right))
        assert ours == theirs, (left, right)


def test_specifiers_agree_with_packaging() -> None:
    """Each specifier on each version answers as packaging's SpecifierSet.contains does for an
    installed version (pre-releases count): ==, !=, <, <=, >, >=, ~=, ===, X.* and sets."""
    for spec, text in itertools.product(SPECIFIERS, VALID):
        expected = SpecifierSet(spec).contains(text, prereleases=True)
        assert loader._satisfies(text, spec) == expected, (spec, text)


def test_unreadable_specifiers_and_versions_raise() -> None:
    """What packaging cannot read, the loader refuses to judge (ValueError becomes a refusal
    with the package's name) rather than guessing."""
    for spec in BAD_SPECIFIERS:
        with pytest.raises(InvalidSpecifier):
            SpecifierSet(spec)
        with pytest.raises(ValueError, match=r"unreadable|two release"):
            loader._satisfies("1.0", spec)
    with pytest.raises(ValueError, match="unreadable version"):
        loader._satisfies("2004d", ">=1.0")


_LABELS = st.sampled_from(["a", "alpha", "b", "beta", "c", "rc", "pre", "preview"])
_SEPARATORS = st.sampled_from(["", ".", "-", "_"])


@st.composite
def _versions(draw: st.DrawFn, local: bool = True) -> str:
    """Versions in PEP 440's permissive spellings, from components that collide often."""
    text = ""
    if draw(st.booleans()) and draw(st.booleans()):
        text += f"{draw(st.integers(0, 2))}!"
    text += ".".join(str(n) for n in draw(st.lists(st.integers(0, 3), min_size=1, max_size=4)))
    if draw(st.booleans()):
        text += f"{draw(_SEPARATORS)}{draw(_LABELS)}{draw(st.integers(0, 2))}"
    if draw(st.booleans()):
        text += f".post{draw(st.integers(0, 2))}"
    if draw(st.booleans()):
        text += f"{draw(_SEPARATORS)}dev{draw(st.integers(0, 2))}"
    if local and draw(st.booleans()):
        text += "+" + draw(st.sampled_from(["1", "abc", "abc.2", "2.abc", "ubuntu-1"]))
    return text


@settings(max_examples=400, deadline=None)
@given(_versions(), _versions())
def test_generated_versions_order_as_packaging(left: str, right: str) -> None:
    """Random versions (epochs, releases of any length, every pre-release spelling, post, dev,
    local) compare as packaging compares them."""
    ours_left, ours_right = loader._parse_version(left), loader._parse_version(right)
    assert ours_left is not None
    assert ours_right is not None
    ours = (ours_left.key() > ours_right.key()) - (ours_left.key() < ours_right.key())
    assert ours == (Version(left) > Version(right)) - (Version(left) < Version(right))


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "~=", "==*", "!=*"]),
    _versions(local=False),
    _versions(),
)
def test_generated_specifiers_match_as_packaging(operator: str, target: str, text: str) -> None:
    """Random specifiers on random versions: the loader and packaging agree, including the
    exclusive-ordering rules (<1.0 refuses 1.0rc1, >1.0 refuses 1.0.post1 and 1.0+local)."""
    if operator.endswith("*"):
        release = target.rsplit("!", maxsplit=1)[-1].split("+", maxsplit=1)[0]
        digits = "".join(c if c.isdigit() or c == "." else " " for c in release).split()[0]
        spec = f"{operator[:2]}{digits.strip('.') or '0'}.*"
    else:
        spec = operator + target
    try:
        expected = SpecifierSet(spec).contains(text, prereleases=True)
    except InvalidSpecifier:
        with pytest.raises(ValueError, match="two release numbers"):  # ~=1
            loader._satisfies(text, spec)
        return
    assert loader._satisfies(text, spec) == expected


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["python", "app.py", "-m", "pip"], ("script", "app.py")),
        (["python", "-m", "pip", "install", "x"], ("module", "pip")),
        (["python", "-mpip"], ("module", "pip")),
        (["python", "-Im", "pip"], ("module", "pip")),
        (["python", "-X", "importtime", "-m", "venv", "env"], ("module", "venv")),
        (["python", "-Ximporttime", "-W", "error", "-m", "ensurepip"], ("module", "ensurepip")),
        (["python", "-bb", "-m", "http.server"], ("module", "http.server")),
        (["python", "--check-hash-based-pycs", "always", "-m", "pip"], ("module", "pip")),
        (["python", "-c", "import pip", "-m", "pip"], ("code", "import pip")),
        (["python", "-Ec", "pass"], ("code", "pass")),
        (["python", "-B", "-c", "import x; x.main(5)"], ("code", "import x; x.main(5)")),
        (["python", "-Wignore", "/usr/bin/pip3.11", "install"], ("script", "/usr/bin/pip3.11")),
        (
            ["/usr/bin/python3", "-E", "-s", "/usr/local/bin/poetry", "lock"],
            ("script", "/usr/local/bin/poetry"),
        ),
        (["python", "-OO", "manage.py", "runserver"], ("script", "manage.py")),
        (["python"], ("", "")),
        (["python", "-"], ("", "")),
        (["python", "-u", "-i"], ("", "")),
    ],
)
def test_the_program_is_read_from_the_command_line(
    argv: list[str], expected: tuple[str, str]
) -> None:
    """The interpreter's options are skipped (also clustered, and with their values) to find
    what it runs: `-m module`, a script, or code with -c."""
    assert loader._program(argv) == expected


def test_multiprocessing_helpers_are_told_apart_by_their_code() -> None:
    """The code multiprocessing runs its helpers with (the same from 3.9 to 3.13): the resource
    tracker is refused, the fork server is named (its children start the tracer), and any
    other -c program, multiprocessing's spawned children included, is an application."""
    tracker = "from multiprocessing.resource_tracker import main;main(5)"
    with pytest.raises(loader._RefusedError, match="resource tracker runs no application code"):
        loader._multiprocessing_helper(tracker)
    server = "from multiprocessing.forkserver import main; main(4, 7, ['__main__'], **{})"
    assert loader._multiprocessing_helper(server) is True
    spawned = (
        "from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle=7)"
    )
    assert loader._multiprocessing_helper(spawned) is False
    assert loader._multiprocessing_helper("import app; app.main()") is False


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/usr/bin/pip", "pip"),
        ("pip3", "pip"),
        ("/venv/bin/pip3.11", "pip"),
        ("easy_install-3.8", "easy_install"),
        ("ddtrace-run", "ddtrace-run"),
        ("opentelemetry-instrument", "opentelemetry-instrument"),
        ("/srv/pip.py", "pip"),
        ("gunicorn", "gunicorn"),
        ("/srv/app/manage.py", "manage"),
    ],
)
def test_script_names_drop_version_suffixes(path: str, name: str) -> None:
    """pip3.11 is pip: denied scripts match whatever version suffix pip or setuptools gave
    them; other names stay what they are."""
    assert loader._script_name(path) == name


def test_denied_lists_are_normalized_names() -> None:
    """Every denied script name is what _script_name yields (a suffix would never match)."""
    for name in loader._DENIED_SCRIPTS:
        assert loader._script_name(name) == name


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("wrapt-1.16.0.dist-info", ("wrapt", "1.16.0")),
        ("Typing_Extensions-4.12.2.dist-info", ("typing-extensions", "4.12.2")),
        ("zope.interface-6.0.dist-info", ("zope-interface", "6.0")),
        ("foo-1.0-py3.11.egg-info", ("foo", "1.0")),
        ("foo.egg-info", ("foo", "")),
        ("foo.py", None),
        ("foo-1.0.data", None),
    ],
)
def test_distributions_are_read_from_directory_names(
    entry: str, expected: tuple[str, str] | None
) -> None:
    """Names are normalized per PEP 503 and versions come from the name when it has one."""
    found = loader._distribution("/site", entry)
    assert (found[:2] if found else None) == expected


def test_names_normalize_as_pep_503() -> None:
    """Runs of -, _ and . become one -, all lowercase: how libinject-requires.txt names them."""
    assert loader._normalize("Typing_Extensions") == "typing-extensions"
    assert loader._normalize("a__b--c..d-_.e") == "a-b-c-d-e"
    assert loader._normalize("PyYAML") == "pyyaml"


def test_versions_without_a_name_come_from_the_metadata(tmp_path: Path) -> None:
    """A develop install (`foo.egg-info` directory) or a distutils egg-info file keeps its
    version in PKG-INFO: the loader reads just the Version header."""
    (tmp_path / "foo.egg-info").mkdir()
    (tmp_path / "foo.egg-info" / "PKG-INFO").write_text(
        "Metadata-Version: 1.0\nName: foo\nVersion: 1.10.0\n\nVersion: 9\n"
    )
    (tmp_path / "bar.egg-info").write_text("Metadata-Version: 1.0\nName: bar\nVersion: 2.0\n")
    assert loader._version_of(("", str(tmp_path / "foo.egg-info"))) == "1.10.0"
    assert loader._version_of(("", str(tmp_path / "bar.egg-info"))) == "2.0"
    assert loader._version_of(("", str(tmp_path / "missing.egg-info"))) == ""


def test_this_host_reads_as_glibc() -> None:
    """The libc test (confstr, no file read) says what the C library says."""
    expected = "manylinux" if platform.libc_ver()[0] == "glibc" else "musllinux"
    assert loader._libc() == expected
