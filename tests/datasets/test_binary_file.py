import base64
import inspect

import numpy as np
import pytest
from kedro.io.core import Version
from kedro_datasets._typing import ImagePreview

from hindsight_rl.core.watch import gif_bytes
from hindsight_rl.datasets import ArtefactError, GifDataset


def test_a_gif_round_trips_and_previews_as_an_image(tmp_path):
    gif = gif_bytes([np.full((4, 6, 3), shade, np.uint8) for shade in (0, 255)], fps=10)
    dataset = GifDataset(filepath=str(tmp_path / "episode.gif"), version=Version(None, None))
    dataset.save(gif)
    assert dataset.load() == gif
    preview = dataset.preview()
    # kedro-viz picks its image renderer by this return type
    assert inspect.signature(dataset.preview).return_annotation in (ImagePreview, "ImagePreview")
    assert base64.b64decode(preview) == gif


def test_bytes_that_are_not_a_gif_are_never_written(tmp_path):
    dataset = GifDataset(filepath=str(tmp_path / "episode.gif"), version=Version(None, None))
    with pytest.raises(ArtefactError, match="not a GIF"):
        dataset.save(b"\x89PNG\r\n")
    assert not list(tmp_path.rglob("*"))
