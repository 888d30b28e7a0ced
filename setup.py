"""The `merit` package: joint speech enhancement and emotion recognition (Sparse MERIT).

Dependencies come from tools/requirements.txt, the only place where pins live.
"""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
TEST_ONLY = {"pytest"}


def read_requirements():
    lines = (HERE / "tools" / "requirements.txt").read_text().splitlines()
    reqs = [line.split("#")[0].strip() for line in lines]
    return [r for r in reqs if r]


def package_name(requirement):
    for sep in "=<>!~[ ;":
        requirement = requirement.split(sep)[0]
    return requirement.lower()


requirements = read_requirements()

setup(
    name="merit",
    version="0.1.0",
    description="Sparse MERIT: joint speech enhancement and emotion recognition with "
    "a shared mixture of experts over self-supervised speech features",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["merit", "merit.*"]),
    install_requires=[r for r in requirements if package_name(r) not in TEST_ONLY],
    extras_require={"test": [r for r in requirements if package_name(r) in TEST_ONLY]},
    # One line per tool, added by the issue that builds it.
    entry_points={"console_scripts": [
        "merit-prep-msp-podcast = merit.bin.prep_msp_podcast:main",
        "merit-simulate-noise = merit.bin.simulate_noise:main",
        "merit-dump-ssl = merit.bin.dump_ssl:main",
        "merit-train = merit.bin.merit_train:main",
        "merit-inference = merit.bin.merit_inference:main",
        "merit-infer = merit.bin.merit_infer:main",
        "merit-score = merit.bin.score:main",
        "merit-make-tables = merit.bin.make_tables:main",
        "merit-bench-moe = merit.bin.bench_moe:main",
        "merit-pack = merit.bin.merit_pack:main",
    ]},
)
