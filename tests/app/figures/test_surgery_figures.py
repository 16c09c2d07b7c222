"""app.figures.surgery: the input panel draws greyscale images, colour images and curves."""

from __future__ import annotations

import numpy as np

from app.figures.surgery import input_figure


def test_a_three_channel_input_in_the_unit_range_is_drawn_as_rgb():
    rng = np.random.default_rng(0)
    x = rng.random((3, 5, 7), dtype=np.float32)
    fig = input_figure(x, title="Input")
    (trace,) = fig.data
    assert trace.type == "image"
    z = np.asarray(trace.z)
    assert z.shape == (5, 7, 3) and z.dtype == np.uint8
    np.testing.assert_array_equal(z[2, 4], np.round(x[:, 2, 4] * 255).astype(np.uint8))
    assert fig.layout.title.text == "Input"


def test_other_colour_ranges_are_stretched_and_say_so():
    x = np.stack([np.full((2, 2), -1.0), np.zeros((2, 2)), np.full((2, 2), 3.0)])
    fig = input_figure(x, title="Input")
    z = np.asarray(fig.data[0].z)
    assert z[0, 0].tolist() == [0, 64, 255]  # (-1, 0, 3) mapped onto [0, 1]
    assert "RGB scaled from [-1, 3]" in fig.layout.title.text


def test_greyscale_images_and_curves_keep_their_traces():
    assert input_figure(np.zeros((4, 4))).data[0].type == "heatmap"
    curve = input_figure(np.arange(6.0), axis_label="time")
    assert curve.data[0].type == "scatter" and curve.layout.xaxis.title.text == "time"
