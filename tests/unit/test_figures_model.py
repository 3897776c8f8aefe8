from __future__ import annotations

import io

import matplotlib
from PIL import Image

from mlgate.figures.model import confusion_matrix

CONFUSION = [[50, 2, 0], [3, 40, 7], [0, 0, 61]]


def decode(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG"
    return image


def test_confusion_matrix__renders_deterministic_600x520_png_without_software_metadata():
    png = confusion_matrix(CONFUSION, ["cat", "dog", "bird"])

    image = decode(png)
    assert image.size == (600, 520)
    assert "Software" not in image.info
    assert png == confusion_matrix(CONFUSION, ["cat", "dog", "bird"])


def test_confusion_matrix__ignores_the_callers_rcparams_like_every_figure():
    reference = confusion_matrix(CONFUSION)

    with matplotlib.rc_context({"font.size": 30, "axes.facecolor": "red", "image.cmap": "magma"}):
        styled = confusion_matrix(CONFUSION)

    assert styled == reference


def test_confusion_matrix__draws_dollar_signs_in_names_as_text_not_mathtext():
    assert decode(confusion_matrix(CONFUSION, [r"$\notacommand$", "$5", "b"])).size == (600, 520)
