"""The action's image: how big it is, what it is made of, and how fast it starts. Prints figures only.

Prints, for a built image (``MLGATE_IMAGE``, else built with ``.ci/docker-build.sh``):
  - the image size, its largest layers (``docker history``) and each installed Python distribution's
    size inside it (the files each one's RECORD lists, ``.pyc`` included);
  - an estimate of the image GitHub builds from PyTorch's CPU index (not reachable here): this image
    minus what the CUDA build adds (``nvidia-*``/``cuda-*``/``triton`` and the CUDA torch wheel's
    surplus over the CPU wheel), worked out from the figures above and a published CPU wheel size;
  - the time from ``docker run`` to the container's first log line and to a finished data-stats
    report on the bundled example (``examples/data``), run as the runner runs a container action
    (workspace mount, file commands, ``INPUT_*``), median of ``--repeats`` runs, every run shown;
    and, as the floor under both, the time to start a container that only prints one line.

    python bench/container.py [--repeats 3] [--skip-timing]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MB = 1_000_000

# torch 2.14.1+cpu, cp311, manylinux_2_28_x86_64 from https://download.pytorch.org/whl/cpu: 196.2 MB
# compressed, as pip printed it in a GitHub Actions log (quoted in BrooklynD23/HealthCentral's CI
# notes, PR #25). Its installed size is estimated with the compression ratio of the CUDA torch wheel
# installed here (same code, the same kind of shared libraries), and cross-checked against this
# image's torch minus its CUDA-only libraries.
CPU_TORCH_WHEEL_MB = 196.2
# torchvision's CPU wheel is a few MB smaller than the CUDA one (no CUDA kernels in _C.so); the
# difference is counted from the installed files below, not assumed.

_PACKAGE_SIZES = r"""
import importlib.metadata as md, json, os, sys, sysconfig
seen, rows = set(), []
for dist in md.distributions():
    name = dist.metadata["Name"]
    if name is None or name.lower() in seen:
        continue
    seen.add(name.lower())
    total = 0
    for f in dist.files or []:
        try:
            total += os.lstat(dist.locate_file(f)).st_size
        except OSError:
            pass
    rows.append([name, dist.version, total])
site = sysconfig.get_paths()["purelib"]
on_disk = sum(os.lstat(os.path.join(d, f)).st_size for d, _, fs in os.walk(site) for f in fs)
torch_lib = os.path.join(site, "torch", "lib")
libs = {}
if os.path.isdir(torch_lib):
    libs = {f: os.lstat(os.path.join(torch_lib, f)).st_size for f in os.listdir(torch_lib)}
print(json.dumps({"site": site, "site_bytes": on_disk, "packages": rows, "torch_lib": libs}))
"""


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True)


def image_tag() -> str:
    if os.environ.get("MLGATE_IMAGE"):
        return os.environ["MLGATE_IMAGE"]
    print("building the image with .ci/docker-build.sh ...", file=sys.stderr)
    done = subprocess.run(["bash", str(ROOT / ".ci" / "docker-build.sh")], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"building the image failed:\n{done.stderr[-3000:]}")
    for line in done.stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        os.environ[name] = value
    return os.environ["MLGATE_IMAGE"]


def mb(n: float) -> str:
    return f"{n / MB:,.1f} MB"


def is_cuda_only(name: str) -> bool:
    return bool(re.match(r"^(nvidia[-_]|cuda[-_]|triton$)", name.lower()))


def sizes(tag: str) -> None:
    size = int(docker("image", "inspect", "-f", "{{.Size}}", tag).stdout)
    print(f"image {tag}: {mb(size)} uncompressed ({size / 2**30:.2f} GiB)")

    history = docker("history", "--no-trunc", "-H=false", "--format", "{{.Size}}\t{{.CreatedBy}}", tag).stdout
    layers = sorted(((int(s), cmd) for s, _, cmd in (ln.partition("\t") for ln in history.splitlines())),
                    reverse=True)
    print("\nlargest layers:")
    for layer_size, cmd in layers[:6]:
        cmd = re.sub(r"\s+", " ", cmd.replace("/bin/sh -c #(nop) ", "").replace("/bin/sh -c ", "RUN "))
        print(f"  {mb(layer_size):>12}  {cmd[:110]}")

    info = json.loads(docker("run", "--rm", "--entrypoint", "python", tag, "-c", _PACKAGE_SIZES).stdout)
    packages = sorted(info["packages"], key=lambda row: -row[2])
    listed = sum(row[2] for row in packages)
    print(f"\nPython distributions: {len(packages)}, {mb(listed)} by their RECORDs; "
          f"{info['site']} holds {mb(info['site_bytes'])}")
    print("largest 15:")
    for name, version, total in packages[:15]:
        print(f"  {mb(total):>12}  {name} {version}")

    by_name = {row[0].lower(): row for row in packages}
    cuda_rows = [row for row in packages if is_cuda_only(row[0])]
    cuda_total = sum(row[2] for row in cuda_rows)
    print(f"\nCUDA-only distributions ({len(cuda_rows)}): {mb(cuda_total)}")
    for name, version, total in cuda_rows:
        print(f"  {mb(total):>12}  {name} {version}")

    torch_row = by_name.get("torch")
    if torch_row is None:
        print("\nno torch in the image: nothing to estimate")
        return
    torch_installed = torch_row[2]
    local_wheel = _local_torch_wheel(torch_row[1])
    libs: dict[str, int] = info["torch_lib"]
    cuda_libs = {f: s for f, s in libs.items() if re.search(r"cuda|nvrtc|cudnn|cublas|nccl|cufft|cusparse", f)}
    cpu_torch_by_files = torch_installed - sum(cuda_libs.values())
    biggest = sorted(cuda_libs.items(), key=lambda item: -item[1])[:5]
    print(f"\ntorch {torch_row[1]} installed here: {mb(torch_installed)}; its CUDA-only libraries in torch/lib: "
          f"{mb(sum(cuda_libs.values()))} ({', '.join(f'{f} {mb(s)}' for f, s in biggest)})")
    estimates = {"torch minus its CUDA-only libraries": cpu_torch_by_files}
    if local_wheel is not None:
        ratio = torch_installed / local_wheel.stat().st_size
        estimates[f"{CPU_TORCH_WHEEL_MB} MB CPU wheel x {ratio:.2f} (this wheel's installed/compressed)"] = \
            round(CPU_TORCH_WHEEL_MB * MB * ratio)
        print(f"the CUDA wheel here: {local_wheel.name}, {mb(local_wheel.stat().st_size)} compressed")
    cpu_torch = max(estimates.values())  # the larger estimate: err on the heavy side
    for how, value in estimates.items():
        print(f"  CPU torch installed, {how}: {mb(value)}")
    cpu_image = size - cuda_total - (torch_installed - cpu_torch)
    print(f"\nCPU image estimate = {mb(size)} (this image) - {mb(cuda_total)} (CUDA-only distributions) "
          f"- ({mb(torch_installed)} - {mb(cpu_torch)}) (CUDA torch's surplus) = {mb(cpu_image)} "
          f"({cpu_image / 2**30:.2f} GiB); target < 1,500 MB: {'met' if cpu_image < 1500 * MB else 'NOT met'}")


def _local_torch_wheel(version: str) -> Path | None:
    for folder in (Path("/opt/pypi-more/files"), Path("/opt/pypi/files")):
        found = sorted(folder.glob(f"torch-{version}-cp311-*.whl")) if folder.is_dir() else []
        if found:
            return found[0]
    return None


def one_run(tag: str) -> tuple[float | None, float, str]:
    """(seconds to the first log line or None, seconds to the exit with report.json written, that line)."""
    with tempfile.TemporaryDirectory(prefix="mlgate-bench-") as tmp:
        workspace, file_commands, workflow = Path(tmp, "workspace"), Path(tmp, "file_commands"), Path(tmp, "workflow")
        shutil.copytree(ROOT / "examples" / "data", workspace / "examples" / "data")
        file_commands.mkdir()
        workflow.mkdir()
        (file_commands / "set_output").touch()
        (file_commands / "step_summary").touch()
        (workflow / "event.json").write_text("{}")
        env = {
            "GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_EVENT_NAME": "workflow_dispatch",
            "GITHUB_EVENT_PATH": "/github/workflow/event.json", "GITHUB_WORKSPACE": "/github/workspace",
            "GITHUB_OUTPUT": "/github/file_commands/set_output",
            "GITHUB_STEP_SUMMARY": "/github/file_commands/step_summary", "HOME": "/github/home",
            "INPUT_MODE": "data-stats", "INPUT_DATA": "examples/data", "INPUT_DVC-PULL": "false",
        }
        command = ["docker", "run", "--rm", "--workdir", "/github/workspace",
                   "-v", f"{workspace}:/github/workspace", "-v", f"{file_commands}:/github/file_commands",
                   "-v", f"{workflow}:/github/workflow"]
        for name in env:
            command += ["-e", name]
        start = time.perf_counter()
        process = subprocess.Popen([*command, tag], env={**os.environ, **env}, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        first_line = process.stdout.readline()  # stdout and stderr, as the runner's log shows them
        first = time.perf_counter() - start if first_line else None
        rest = process.stdout.read()
        code = process.wait()
        done = time.perf_counter() - start
        if code != 0 or not (workspace / "mlgate-report" / "report.json").exists():
            sys.exit(f"the container failed (exit {code}):\n{first_line}{rest[-3000:]}")
        return first, done, first_line.rstrip("\n")


def container_start(tag: str) -> float:
    """Seconds from `docker run` to the exit of a container that only prints: the floor under any log line."""
    start = time.perf_counter()
    docker("run", "--rm", "--entrypoint", "python", tag, "-c", "print('up')")
    return time.perf_counter() - start


def timing(tag: str, repeats: int) -> None:
    floor = [container_start(tag) for _ in range(repeats)]
    print(f"\ndocker run -> a container that only prints a line and exits: median {statistics.median(floor):.2f} s "
          f"(runs: {', '.join(f'{t:.2f}' for t in floor)})")
    runs = [one_run(tag) for _ in range(repeats)]
    firsts = [r[0] for r in runs if r[0] is not None]
    dones = [r[1] for r in runs]
    if len(firsts) == len(runs):
        print(f"docker run -> first log line: median {statistics.median(firsts):.2f} s "
              f"(runs: {', '.join(f'{t:.2f}' for t in firsts)}); first line: {runs[0][2]!r}")
    else:
        print(f"docker run -> first log line: the container printed nothing in {len(runs) - len(firsts)} "
              f"of {len(runs)} runs (the log stays empty until the step ends)")
    print(f"docker run -> finished data-stats report on examples/data: median {statistics.median(dones):.2f} s "
          f"(runs: {', '.join(f'{t:.2f}' for t in dones)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--skip-sizes", action="store_true")
    args = parser.parse_args()
    tag = image_tag()
    if not args.skip_sizes:
        sizes(tag)
    if not args.skip_timing:
        timing(tag, args.repeats)


if __name__ == "__main__":
    main()
