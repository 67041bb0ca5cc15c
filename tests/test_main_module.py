import subprocess
import sys

import pdekit


def test_python_dash_m_pdekit_is_the_cli():
    out = subprocess.run([sys.executable, "-m", "pdekit", "--version"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"pdekit {pdekit.__version__}"


def test_python_dash_m_pdekit_user_error_is_one_line_exit_2():
    out = subprocess.run([sys.executable, "-m", "pdekit", "generate", "no-such-pde", "--n-samples",
                          "2", "--out", "unused"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr
