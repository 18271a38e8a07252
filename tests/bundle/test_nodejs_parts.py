"""The Node.js bundle's parts on small trees: what pruning removes and keeps, and how the native
addons' platforms are read from the two layouts packages ship them in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from libinject.bundle.nodejs.platforms import Platform, of_cpu
from libinject.bundle.nodejs.prebuilds import coverage
from libinject.bundle.nodejs.prune import prune

ALL = ["linux-x64-glibc", "linux-x64-musl", "linux-arm64-glibc", "linux-arm64-musl"]


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


KEPT = [
    "node_modules/a/package.json",
    "node_modules/a/index.js",
    "node_modules/a/lib/x.cjs",
    "node_modules/a/lib/y.mjs",
    "node_modules/a/data.json",
    "node_modules/a/rules.yml",
    "node_modules/a/LICENSE.md",  # licences travel with the code, whatever their format
    "node_modules/a/NOTICE",
    "node_modules/a/lib/test/helpers.js",  # a `test` directory inside a package's code
    "node_modules/yaml/package.json",
    "node_modules/yaml/dist/doc/Document.js",  # yaml's own code lives in a doc/ directory
    "node_modules/@s/b/package.json",
    "node_modules/@s/b/prebuilds/linuxglibc-x64/node-napi.node",
    "node_modules/@s/b/prebuilds/linux-arm64/b.musl.node",
    "node_modules/@s/b/prebuilds/library_config/library_config.js",  # not a platform
    "node_modules/@s/b/prebuilds/library_config/library_config_bg.wasm",
    "node_modules/a/node_modules/c/package.json",
    "node_modules/a/node_modules/c/main.js",
]
PRUNED = {
    "node_modules/a/README.md": "documentation",
    "node_modules/a/CHANGELOG.markdown": "documentation",
    "node_modules/a/index.d.ts": "type declarations",
    "node_modules/a/lib/x.d.cts": "type declarations",
    "node_modules/a/lib/x.cjs.map": "source maps",
    "node_modules/a/src/x.ts": "TypeScript sources",
    "node_modules/a/src/y.mts": "TypeScript sources",
    "node_modules/a/test/a.test.js": "tests, examples and benchmarks",
    "node_modules/a/examples/demo.js": "tests, examples and benchmarks",
    "node_modules/a/src/addon.cc": "native sources",
    "node_modules/@s/b/prebuilds/darwin-arm64/node-napi.node": "addons for other operating systems",
    "node_modules/@s/b/prebuilds/win32-x64/node-napi.node": "addons for other operating systems",
    "node_modules/.package-lock.json": "npm's bookkeeping",
    "node_modules/a/node_modules/c/README.md": "documentation",
}


def test_pruning_removes_only_what_the_runtime_never_reads(tmp_path: Path) -> None:
    """Each rule removes its kind of file; code, data, addons for Linux, licences and every
    package.json stay, and a directory named like a rule's is removed only at the top of a
    package (yaml keeps its dist/doc/). The count is what was removed."""
    _tree(tmp_path, dict.fromkeys([*KEPT, *PRUNED], "x" * 10))
    (tmp_path / "node_modules/.bin").mkdir()
    (tmp_path / "node_modules/.bin/a").symlink_to("../a/index.js")
    pruned = prune(tmp_path / "node_modules", cpus={"x64", "arm64"})
    left = sorted(
        str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file() or p.is_symlink()
    )
    assert left == sorted(KEPT)
    assert pruned.files == len(PRUNED)
    assert pruned.bytes == 10 * len(PRUNED)
    expected: dict[str, int] = {}
    for rule in PRUNED.values():
        expected[rule] = expected.get(rule, 0) + 10
    assert dict(pruned.by_rule) == expected


def _packages(**entries: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {"": {}, **{f"node_modules/{name}": entry for name, entry in entries.items()}}


def test_addons_in_a_packages_own_prebuilds_cover_the_platforms_their_directories_name(
    tmp_path: Path,
) -> None:
    """node-gyp-build 3's layout (`linux<libc>-<arch>/`) and 4's (`linux-<arch>/`, musl as a
    tag in the file name, glibc without): each platform a build is there for counts, and the
    Node ABIs are read from the names."""
    _tree(
        tmp_path,
        {
            "node_modules/old/package.json": "{}",
            "node_modules/old/prebuilds/linuxglibc-x64/node-127.node": "",
            "node_modules/old/prebuilds/linuxmusl-x64/node-127.node": "",
            "node_modules/old/prebuilds/linuxglibc-arm64/node-137.node": "",
            "node_modules/new/package.json": "{}",
            "node_modules/new/prebuilds/linux-x64+arm64/n.napi.node": "",
            "node_modules/new/prebuilds/linux-x64+arm64/n.napi.musl.node": "",
            "node_modules/plain/package.json": "{}",
            "node_modules/plain/index.js": "",
        },
    )
    found = coverage(tmp_path / "node_modules", _packages(old={}, new={}, plain={}))
    assert sorted(found) == ["new", "old"]
    assert found["old"].missing == ["linux-arm64-musl"]
    assert found["old"].abi == ("127", "137")
    assert found["new"].missing == []
    assert found["new"].abi == ("napi",)


def test_per_platform_packages_count_for_the_package_that_loads_them(tmp_path: Path) -> None:
    """A package whose addon comes in per-platform optional dependencies covers the platforms
    of those installed (their os/cpu/libc fields say which), found where Node would find them;
    one of another operating system covers nothing of ours."""
    _tree(
        tmp_path,
        {
            "node_modules/p/package.json": "{}",
            "node_modules/p-linux-x64-gnu/package.json": "{}",
            "node_modules/p-linux-x64-gnu/p.node": "",
            "node_modules/p-linux-x64-musl/package.json": "{}",
            "node_modules/p-linux-x64-musl/p.node": "",
            "node_modules/p-darwin-arm64/package.json": "{}",
        },
    )
    linux = {"os": ["linux"], "cpu": ["x64"]}
    packages = _packages(
        p={"optionalDependencies": dict.fromkeys(
            ("p-linux-x64-gnu", "p-linux-x64-musl", "p-darwin-arm64", "p-linux-arm64-gnu"), "1")},
        **{"p-linux-x64-gnu": {**linux, "libc": ["glibc"]},
           "p-linux-x64-musl": {**linux, "libc": ["musl"]},
           "p-darwin-arm64": {"os": ["darwin"], "cpu": ["arm64"]},
           "p-linux-arm64-gnu": {"os": ["linux"], "cpu": ["arm64"], "libc": ["glibc"]}},
    )  # fmt: skip
    found = coverage(tmp_path / "node_modules", packages)
    assert list(found) == ["p"]
    assert found["p"].missing == ["linux-arm64-glibc", "linux-arm64-musl"]
    assert found["p"].via == ("p-darwin-arm64", "p-linux-x64-gnu", "p-linux-x64-musl")
    assert found["p"].as_dict(needed=False)["covers"] == ["linux-x64-glibc", "linux-x64-musl"]


@pytest.mark.parametrize("where", ["node_modules/q/node_modules/b", "node_modules/b"])
def test_a_per_platform_package_is_found_where_node_looks(tmp_path: Path, where: str) -> None:
    """Nested under the package that needs it, or hoisted to the top: either place counts."""
    _tree(tmp_path, {"node_modules/q/package.json": "{}", f"{where}/b.node": ""})
    fields: dict[str, Any] = {"os": ["linux"], "cpu": ["x64", "arm64"]}
    packages = {"": {}, "node_modules/q": {"optionalDependencies": {"b": "1"}}, where: fields}
    found = coverage(tmp_path / "node_modules", packages)
    assert found["q"].missing == []
    assert found["q"].as_dict(needed=True)["covers"] == ALL


def test_a_one_machine_bundle_leaves_out_the_other_machines_addons(tmp_path: Path) -> None:
    """A bundle for arm64 nodes keeps each package's arm64 builds (glibc and musl, and a
    directory shared by both machines) and removes the x64 and 32-bit ones, under a rule of
    its own; a `prebuilds` directory that is not a package's is no addon directory."""
    kept = [
        "node_modules/b/prebuilds/linux-arm64/b.musl.node",
        "node_modules/b/prebuilds/linuxglibc-arm64/b.node",
        "node_modules/b/prebuilds/linux-x64+arm64/n.napi.node",
        "node_modules/b/lib/prebuilds/linux-x64/data.js",
    ]
    removed = [
        "node_modules/b/prebuilds/linux-x64/b.node",
        "node_modules/b/prebuilds/linuxmusl-x64/b.node",
        "node_modules/b/prebuilds/linux-ia32/b.node",
        "node_modules/b/prebuilds/linux-arm/b.node",
    ]
    _tree(tmp_path, dict.fromkeys([*kept, *removed, "node_modules/b/package.json"], "x"))
    pruned = prune(tmp_path / "node_modules", cpus={"arm64"})
    assert pruned.by_rule == {"addons for other machines": len(removed)}
    assert all((tmp_path / path).is_file() for path in kept)
    assert not any((tmp_path / path).exists() for path in removed)


def test_a_one_machine_bundle_needs_its_own_platforms_only(tmp_path: Path) -> None:
    """Coverage is judged against the platforms the bundle serves: an addon built for arm64
    alone covers an arm64 bundle (glibc and musl), and misses both x64 platforms in a bundle for
    every machine."""
    _tree(
        tmp_path,
        {
            "node_modules/a/package.json": "{}",
            "node_modules/a/prebuilds/linux-arm64/a.napi.node": "",
            "node_modules/a/prebuilds/linux-arm64/a.napi.musl.node": "",
        },
    )
    packages = _packages(a={})
    arm64 = of_cpu("arm64")
    assert arm64 == (Platform("arm64", "glibc"), Platform("arm64", "musl"))
    found = coverage(tmp_path / "node_modules", packages, served=arm64)
    assert found["a"].missing == []
    assert found["a"].as_dict(needed=True)["covers"] == ["linux-arm64-glibc", "linux-arm64-musl"]
    everywhere = coverage(tmp_path / "node_modules", packages, served=of_cpu(None))
    assert everywhere["a"].missing == ["linux-x64-glibc", "linux-x64-musl"]
    with pytest.raises(ValueError, match=r"no Node\.js bundle is built for cpu 'ia32'"):
        of_cpu("ia32")
