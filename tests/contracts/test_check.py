"""`flaglens contracts check` against git bases: real repositories, shallow clones, first commits,
and the exit codes and output formats CI reads."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from contracts import check_directory
from contracts.errors import ContractSourceError
from flaglens.cli.main import main
from tests.contracts.copies import copy_contracts, edit_json

PRIVACY = "feature_flag.evaluation.privacy"


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose one commit holds a copy of the shipped contracts."""
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    copy_contracts(root)
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "contracts")
    return root


def _commit(repo: Path, message: str) -> None:
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", message)


def _ids(report) -> set[str]:
    return {f.id for f in report.findings if f.level != "info"}


def test_a_breaking_commit_fails_against_the_previous_one(repo):
    edit_json(repo / "contracts/schemas" / f"{PRIVACY}-1.1.0.json",
              lambda s: s["required"].append("privacy.legal_basis"))  # fmt: skip
    _commit(repo, "break privacy in place")
    report = check_directory(repo / "contracts", base="HEAD~1")
    # the diff sees the change; lint sees the examples it broke
    assert _ids(report) == {"diff.changed-in-place", "lint.example-valid", "lint.example-invalid"}
    assert report.exit_code("error") == 1
    against_head = check_directory(repo / "contracts", base="HEAD")
    assert {i for i in _ids(against_head) if i.startswith("diff.")} == set()


def test_a_first_commit_lints_only_and_says_so(repo):
    report = check_directory(repo / "contracts", base="HEAD~1")
    (base,) = [f for f in report.findings if f.id == "check.base"]
    assert "no diff against HEAD~1" in base.message and "first commit" in base.message
    assert report.exit_code("error") == 0


def test_a_shallow_clone_lints_only_and_says_so(repo, tmp_path):
    edit_json(repo / "contracts/schemas" / f"{PRIVACY}-1.1.0.json",
              lambda s: s.update(title="changed"))  # fmt: skip
    _commit(repo, "second")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(clone)],
                   check=True)  # fmt: skip
    report = check_directory(clone / "contracts", base="HEAD~1")
    (base,) = [f for f in report.findings if f.id == "check.base"]
    assert "shallow" in base.message
    assert report.exit_code("error") == 0


def test_a_base_that_does_not_exist_is_a_usage_error(repo, capsys):
    with pytest.raises(ContractSourceError, match="no such commit"):
        check_directory(repo / "contracts", base="origin/mian")
    assert main(["contracts", "check", str(repo / "contracts"), "--base", "nope"]) == 2
    assert "no such commit" in capsys.readouterr().err


def test_contracts_new_since_the_base_are_new(repo):
    """A base where the directory did not exist yet: every contract counts as added."""
    (repo / "other").mkdir()
    copy_contracts(repo / "other")
    report = check_directory(repo / "other" / "contracts", base="HEAD")
    assert _ids(report) == set()
    assert any("every contract counts as new" in f.message for f in report.findings)
    names = {p.name.rsplit("-", 1)[0] for p in (repo / "other/contracts/schemas").glob("*.json")}
    assert sum(f.id == "diff.contract-added" for f in report.findings) == len(names)


def test_diff_takes_a_revision_for_either_side(repo, capsys):
    edit_json(repo / "contracts/schemas" / f"{PRIVACY}-1.1.0.json",
              lambda s: s["properties"].pop("privacy.legal_basis"))  # fmt: skip
    code = main(["contracts", "diff", "HEAD", str(repo / "contracts"), "--format", "json"])
    body = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [f["id"] for f in body["findings"]] == ["diff.changed-in-place"]
    assert main(["contracts", "diff", "--base", "HEAD", str(repo / "contracts")]) == 1


def test_exit_codes_and_fail_on(repo, capsys):
    contracts = repo / "contracts"
    assert main(["contracts", "lint", str(contracts)]) == 0
    (contracts / "examples" / "user.engagement" / "1.0.0" / "invalid" / "no-cohort.json").unlink()
    assert main(["contracts", "lint", str(contracts)]) == 0  # a warning only
    assert main(["contracts", "lint", str(contracts), "--fail-on", "warning"]) == 1
    assert main(["contracts", "lint", str(repo / "missing")]) == 2
    out = capsys.readouterr().out
    assert "lint.examples-missing" in out


def test_junit_and_github_outputs(repo, capsys, tmp_path):
    contracts = repo / "contracts"
    edit_json(contracts / "schemas" / f"{PRIVACY}-1.1.0.json", lambda s: s.update({"$id": "x"}))
    junit = tmp_path / "out" / "contracts.xml"
    code = main(["contracts", "check", str(contracts), "--base", "HEAD",
                 "--format", "junit", "-o", str(junit)])  # fmt: skip
    assert code == 1
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and int(suite.get("tests", 0)) > 30
    failures = suite.findall("testcase/failure")
    assert {f.get("type") for f in failures} == {"lint.id", "diff.changed-in-place"}
    capsys.readouterr()
    main(["contracts", "lint", str(contracts), "--format", "github"])
    (annotation,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("::")]
    assert annotation.startswith("::error file=")
    assert f"schemas/{PRIVACY}-1.1.0.json,line=3,title=lint.id::/$id: $id is 'x'" in annotation


def test_the_projects_own_contracts_pass_against_its_previous_commit():
    """What make test runs; in a shallow clone it says it compared nothing and still passes."""
    assert main(["contracts", "check", "--base", "HEAD~1"]) == 0
