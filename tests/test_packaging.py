"""Packaging: `cli/` installs as `pose_tl.cli`, never as a top-level `cli` module; recipes ship with the wheel."""

import subprocess
import sys
import zipfile

from conftest import REPO


def test_no_top_level_cli_module_after_install(tmp_path):
    code = ("import importlib.util, pose_tl.cli.main as m; "
            "assert importlib.util.find_spec('cli') is None, 'top-level cli importable'; print(m.__file__)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("main.py")


def test_wheel_contents(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(REPO)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("pose_tl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "pose_tl/cli/main.py" in names
    assert not [n for n in names if n.startswith("cli/")]
    assert any(n.endswith("data/share/pose_tl/recipes/classify_vgg16_depth.yaml") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "pose-tl = pose_tl.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_every_package_is_listed_in_setup_cfg():
    import configparser

    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "pose_tl").rglob("__init__.py")}
    found = {name for name in found if "__pycache__" not in name}
    assert found | {"pose_tl.cli"} == listed
