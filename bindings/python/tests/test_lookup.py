"""Where the package finds libquartz (QUARTZ_LIBRARY, then next to the
package, then the installed libquartz.so.1), and that it installs with pip
offline. Each case runs a fresh interpreter, since the library is loaded
once per process.
"""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import PKG_ROOT

PROBE = ("import quartz, numpy as np\n"
         "db = quartz.open(dim=3); db.add(1, np.ones(3)); assert db.search(np.ones(3), k=1).ids[0] == 1\n"
         "print(quartz.library_path())\n")


def run(code, env_extra, cwd, drop=("QUARTZ_LIBRARY",), path=PKG_ROOT):
    env = {k: v for k, v in os.environ.items() if k not in drop and k != "LD_LIBRARY_PATH"}
    env.update(env_extra)
    env["PYTHONPATH"] = path
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_quartz_library_is_used_first(library, tmp_path):
    r = run(PROBE, {"QUARTZ_LIBRARY": library}, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == library


def test_a_quartz_library_that_cannot_load_is_an_error_not_a_fallback(library, tmp_path):
    bad = str(tmp_path / "nope" / "libquartz.so.1")
    code = ("import quartz\n"
            "try:\n    quartz.open(dim=3)\n"
            "except quartz.LibraryNotFoundError as e:\n    print('refused:', e)\n")
    r = run(code, {"QUARTZ_LIBRARY": bad, "LD_LIBRARY_PATH": os.path.dirname(library)}, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("refused:") and bad in r.stdout


def test_a_library_next_to_the_package_is_found(library, tmp_path):
    dest = tmp_path / "site"
    shutil.copytree(os.path.join(PKG_ROOT, "quartz"), dest / "quartz",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(library, dest / "quartz" / "libquartz.so.1")
    r = run(PROBE, {}, tmp_path, path=str(dest))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(dest / "quartz" / "libquartz.so.1")


def test_the_installed_soname_is_found_by_the_loader(library, tmp_path):
    r = run(PROBE, {"LD_LIBRARY_PATH": os.path.dirname(library)}, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "libquartz.so.1"


def test_no_library_anywhere_gives_a_message_that_says_what_to_do(tmp_path):
    probe = ("import ctypes.util, quartz\n"
             "if ctypes.util.find_library('quartz'):\n    print('installed system-wide')\n"
             "else:\n"
             "    try:\n        quartz.open(dim=3)\n"
             "    except quartz.LibraryNotFoundError as e:\n        print('refused:', e)\n")
    r = run(probe, {}, tmp_path)
    assert r.returncode == 0, r.stderr
    if r.stdout.startswith("installed"):
        pytest.skip("a libquartz is installed system-wide here")
    assert "QUARTZ_LIBRARY" in r.stdout and "Traceback" not in r.stderr


def test_pip_installs_the_package_offline(library, tmp_path):
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0:
        pytest.skip("pip is not installed for %s" % sys.executable)
    src = tmp_path / "src"
    shutil.copytree(PKG_ROOT, src, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info", ".pytest_cache"))
    target = tmp_path / "target"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--no-cache-dir",
                        "--target", str(target), str(src)], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert (target / "quartz" / "__init__.py").exists()
    assert any(n.startswith("quartzdb-") and n.endswith(".dist-info") for n in os.listdir(target))
    r = run(PROBE, {"QUARTZ_LIBRARY": library}, tmp_path, path=str(target))
    assert r.returncode == 0, r.stderr
